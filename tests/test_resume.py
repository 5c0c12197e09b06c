"""Kill `train.py` with SIGKILL mid-run, rerun the same command: it finishes as if never killed."""

from __future__ import annotations

import glob
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import feature_flags

REPO = pathlib.Path(__file__).resolve().parent.parent
STEPS = 100


def _command(features, model_dir):
    return [
        sys.executable,
        str(REPO / "train.py"),
        "--flagfile=configs/1b_logmel.flags",
        *feature_flags(features),
        f"--model_dir={model_dir}",
        "--width=0.125",
        "--batch_size=4",
        f"--train_steps={STEPS}",
        "--lr_decay_steps=10",  # the learning rate changes across the kill
        "--checkpoint_every=5",
        "--eval_every=0",
        "--log_every=5",
        "--steps_per_loop=5",  # loops of 5 steps: the kill lands between or inside loops
        "--deterministic",
    ]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _finish(cmd):
    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _checkpoint_steps(model_dir):
    return sorted(
        int(p.rsplit("-", 1)[1].split(".")[0])
        for p in glob.glob(str(model_dir / "checkpoints" / "ckpt-*.index"))
    )


def _latest_step(state_file):
    first = state_file.read_text().splitlines()[0]  # model_checkpoint_path: "ckpt-N"
    return int(first.rsplit("-", 1)[1].rstrip('"'))


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_exactly(tiny_1b_features, tmp_path):
    from asc_keras.models import load_model

    model_dir = tmp_path / "killed"
    cmd = _command(tiny_1b_features, model_dir)
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    state_file = model_dir / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while not state_file.exists():
        if proc.poll() is not None:
            output = proc.stdout.read()[-3000:]
            pytest.fail(f"train.py ended before its first checkpoint:\n{output}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within 240 s")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (model_dir / "model.keras").exists(), "the run finished before it was killed"
    killed_at = _latest_step(state_file)  # the state file names the last complete checkpoint
    assert 0 < killed_at < STEPS

    out = _finish(cmd)  # the same command again
    assert f"resuming {model_dir} at step {killed_at}" in out
    assert _checkpoint_steps(model_dir)[-1] == STEPS
    assert f"step {STEPS}/{STEPS}" in out

    reference = tmp_path / "uninterrupted"
    _finish(_command(tiny_1b_features, reference))
    resumed = load_model(str(model_dir / "model.keras")).get_weights()
    uninterrupted = load_model(str(reference / "model.keras")).get_weights()
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (model_dir / "flags.txt").read_text() == (reference / "flags.txt").read_text().replace(
        str(reference), str(model_dir)
    )
