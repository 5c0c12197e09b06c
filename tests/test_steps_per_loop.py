"""K training steps per tf.function call: loop ends, equality with K=1, NaN step, data end."""

from __future__ import annotations

import numpy as np
import pytest

from asc_keras.config import ModelConfig, TrainConfig
from asc_keras.training import callbacks, loop, trainer


def _quiet(*_):
    pass


def _model_cfg(feature_cfg, **kw):
    kw.setdefault("inputs", ("logmel",))
    return ModelConfig(
        backbone="1b",
        input_bins={r: feature_cfg.bins(r) for r in kw["inputs"]},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=0.125,
        **kw,
    )


def _train_cfg(model_dir, **kw):
    defaults = dict(
        model_dir=str(model_dir),
        batch_size=4,
        eval_every=0,
        eval_batch_size=16,
        lr_decay_steps=3,
        deterministic=True,
    )
    defaults.update(kw)
    return TrainConfig(**defaults)


def _run(features, model_dir, *, model_kw=None, **kw):
    _, feature_cfg, data_cfg = features
    return trainer.run(
        feature_cfg,
        data_cfg,
        _model_cfg(feature_cfg, **(model_kw or {})),
        _train_cfg(model_dir, **kw),
        progress=False,
        log=_quiet,
    )


def _weights(model_dir):
    from asc_keras.models import load_model

    return load_model(str(model_dir / "model.keras"), compile=False).get_weights()


def test_next_loop_end_stops_at_every_cadence_and_the_end():
    ends, step = [], 0
    while step < 23:
        step = loop.next_loop_end(step, 23, 4, (5, 10, 0))
        ends.append(step)
    assert ends == [4, 5, 9, 10, 14, 15, 19, 20, 23]
    assert loop.next_loop_end(7, 100, 50, (50, 200, 1000)) == 50  # a resumed run re-aligns
    assert loop.next_loop_end(0, 3, 0, ()) == 1


def test_auto_steps_per_loop():
    assert TrainConfig().auto_steps_per_loop == 50  # gcd(log 50, checkpoint 200, eval 1000)
    assert (
        TrainConfig(log_every=1000, checkpoint_every=1000, eval_every=0).auto_steps_per_loop
        == TrainConfig.MAX_AUTO_STEPS_PER_LOOP
    )
    assert TrainConfig(log_every=6, checkpoint_every=4).auto_steps_per_loop == 2
    assert TrainConfig(steps_per_loop=7).auto_steps_per_loop == 7


def test_loop_length_and_resume_do_not_change_the_weights(tiny_1b_features, tmp_path):
    """K=1, K=4, and K=4 stopped at step 3 (inside a loop) then resumed: the same weights and
    logged losses after 7 steps (a checkpoint, logs and decay steps inside a K=4 loop's span,
    the last loop cut short by train_steps)."""
    kw = dict(log_every=3, checkpoint_every=5)
    outs = {
        k: _run(tiny_1b_features, tmp_path / f"k{k}", train_steps=7, steps_per_loop=k, **kw)
        for k in (1, 4)
    }
    _run(tiny_1b_features, tmp_path / "resumed", train_steps=3, steps_per_loop=4, **kw)
    resumed = _run(tiny_1b_features, tmp_path / "resumed", train_steps=7, steps_per_loop=4, **kw)
    assert resumed["resumed_from"] == 3 and resumed["step"] == 7
    reference = _weights(tmp_path / "k1")
    for other in ("k4", "resumed"):
        for a, b in zip(reference, _weights(tmp_path / other), strict=True):
            np.testing.assert_array_equal(a, b)
    assert outs[1]["train_loss"] == pytest.approx(outs[4]["train_loss"], rel=1e-6)
    for k in (1, 4):
        assert sorted(p.name for p in (tmp_path / f"k{k}" / "checkpoints").glob("*.index")) == [
            "ckpt-5.index",
            "ckpt-7.index",
        ]


@pytest.mark.slow
def test_multi_output_model_resumes_exactly(tiny_1b_features, tmp_path):
    """SPSMR + SPSMT (two independent parts, one frame-wise loss each) stopped at step 3 and
    resumed: the weights of an uninterrupted 6-step run."""
    kw = dict(log_every=3, checkpoint_every=3, steps_per_loop=2)
    model_kw = dict(inputs=("logmel", "cqt"), fusion="spsmr", strategies=("spsmt",))
    _run(tiny_1b_features, tmp_path / "whole", train_steps=6, model_kw=model_kw, **kw)
    _run(tiny_1b_features, tmp_path / "resumed", train_steps=3, model_kw=model_kw, **kw)
    resumed = _run(tiny_1b_features, tmp_path / "resumed", train_steps=6, model_kw=model_kw, **kw)
    assert resumed["resumed_from"] == 3
    assert set(resumed["train_loss"]) >= {"logmel_frames", "cqt_frames", "total"}
    for a, b in zip(_weights(tmp_path / "whole"), _weights(tmp_path / "resumed"), strict=True):
        np.testing.assert_array_equal(a, b)


def _batches(feature_cfg, *, nan_batch=None, count=None):
    import tensorflow as tf

    n = count or 8
    shape = (4, feature_cfg.num_frames, feature_cfg.bins("logmel"))
    x = np.zeros((n,) + shape, np.float32)
    labels = np.tile(np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], (n, 1, 1))
    if nan_batch is not None:
        labels[nan_batch, 1] = np.nan
    data = tf.data.Dataset.from_tensor_slices(({"logmel": x}, labels))
    return data if count else data.repeat()


@pytest.mark.parametrize("k", [8, 1])  # 1: the single-step function without a loop
def test_nan_inside_a_loop_names_its_step(tiny_1b_features, tmp_path, k):
    _, feature_cfg, data_cfg = tiny_1b_features
    with pytest.raises(
        callbacks.NonFiniteLossError, match="^training step 3: non-finite loss"
    ) as e:
        trainer.run(
            feature_cfg,
            data_cfg,
            _model_cfg(feature_cfg),
            _train_cfg(
                tmp_path / "run",
                train_steps=8,
                steps_per_loop=k,
                log_every=8,
                checkpoint_every=8,
                deterministic=False,
            ),
            datasets={"train": _batches(feature_cfg, nan_batch=2)},
            log=_quiet,
        )
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run" / "checkpoints" / "checkpoint").exists()


@pytest.mark.parametrize("k", [4, 1])
def test_training_data_that_ends_inside_a_loop(tiny_1b_features, tmp_path, k):
    _, feature_cfg, data_cfg = tiny_1b_features
    with pytest.raises(ValueError, match="the training data ended at step 3 of 8"):
        trainer.run(
            feature_cfg,
            data_cfg,
            _model_cfg(feature_cfg),
            _train_cfg(
                tmp_path / "run",
                train_steps=8,
                steps_per_loop=k,
                log_every=8,
                checkpoint_every=8,
                deterministic=False,
            ),
            datasets={"train": _batches(feature_cfg, count=3)},
            log=_quiet,
        )
