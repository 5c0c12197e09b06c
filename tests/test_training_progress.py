"""The training progress bar: once per loop call, to train_steps, on stderr only when asked."""

from __future__ import annotations

import io

import pytest
import tqdm

from asc_keras.config import ModelConfig, TrainConfig
from asc_keras.training import loop, progress_bar, trainer

TRAIN_STEPS, STEPS_PER_LOOP, LOG_EVERY = 6, 2, 3


class _CountingBar(tqdm.tqdm):
    """tqdm that records every `update` call."""

    made: list[_CountingBar] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates: list[int] = []
        _CountingBar.made.append(self)

    def update(self, n=1):
        self.updates.append(n)
        return super().update(n)


def _loop_calls() -> int:
    calls, step = 0, 0
    while step < TRAIN_STEPS:
        step = loop.next_loop_end(step, TRAIN_STEPS, STEPS_PER_LOOP, (LOG_EVERY, TRAIN_STEPS, 0))
        calls += 1
    return calls


def _run(features, model_dir, *, train_progress):
    _, feature_cfg, data_cfg = features
    model_cfg = ModelConfig(
        backbone="1b",
        inputs=("logmel",),
        input_bins={"logmel": feature_cfg.bins("logmel")},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=1 / 16,
    )
    train_cfg = TrainConfig(
        model_dir=str(model_dir),
        train_steps=TRAIN_STEPS,
        steps_per_loop=STEPS_PER_LOOP,
        log_every=LOG_EVERY,
        checkpoint_every=TRAIN_STEPS,
        eval_every=0,
        batch_size=4,
        eval_batch_size=16,
    )
    lines: list[str] = []
    trainer.run(
        feature_cfg,
        data_cfg,
        model_cfg,
        train_cfg,
        progress=False,
        train_progress=train_progress,
        log=lines.append,
    )
    return lines


@pytest.fixture
def counting_bar(monkeypatch):
    _CountingBar.made = []
    monkeypatch.setattr(tqdm, "tqdm", _CountingBar)
    return _CountingBar


def test_bar_counts_to_train_steps_once_per_loop_call(
    tiny_1b_features, tmp_path, capsys, counting_bar
):
    lines = _run(tiny_1b_features, tmp_path / "on", train_progress=True)
    (bar,) = counting_bar.made
    assert bar.n == bar.total == TRAIN_STEPS
    assert sum(bar.updates) == TRAIN_STEPS
    assert 0 < len(bar.updates) <= _loop_calls() < TRAIN_STEPS
    err = capsys.readouterr().err
    assert f"{TRAIN_STEPS}/{TRAIN_STEPS}" in err and "step/s" in err
    train_lines = [line for line in lines if line.startswith("step")]
    assert len(train_lines) == TRAIN_STEPS // LOG_EVERY  # log lines still all there, whole
    assert not any("\r" in line or "step/s]" in line for line in lines)


def test_no_bar_when_off_or_stderr_is_not_a_terminal(
    tiny_1b_features, tmp_path, capsys, counting_bar
):
    lines = _run(tiny_1b_features, tmp_path / "off", train_progress=False)
    assert counting_bar.made == []
    captured = capsys.readouterr()
    assert "step/s" not in captured.err and "\r" not in captured.err and captured.out == ""
    assert len([line for line in lines if line.startswith("step")]) == TRAIN_STEPS // LOG_EVERY
    # None (the default): only when stderr is a terminal; pytest's captured stderr is not one.
    assert not progress_bar.wanted(None)


def test_auto_follows_the_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress_bar.wanted(None) and not progress_bar.wanted(False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress_bar.wanted(None) and progress_bar.wanted(True)
