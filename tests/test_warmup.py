"""The linear learning-rate warm-up (`--warmup_steps`) against a NumPy transcription."""

import dataclasses

import keras
import numpy as np
import pytest

from asc_keras.config import TrainConfig
from asc_keras.config.train import LEGACY_TRAIN_FIELDS
from asc_keras.training import optimizer as optimizer_lib


def _numpy_rate(step, *, lr, decay_rate, decay_steps, warmup):
    """Staircase decay times a linear ramp: update `step` (from 0) of the schedule."""
    rate = lr * decay_rate ** np.floor(step / decay_steps)
    return rate * (np.minimum(1.0, (step + 1.0) / warmup) if warmup else 1.0)


@pytest.mark.parametrize("warmup", [0, 1, 7, 250])
def test_schedule_matches_numpy(warmup):
    cfg = TrainConfig(learning_rate=5e-3, lr_decay_steps=20, lr_decay_rate=0.9, warmup_steps=warmup)
    schedule = optimizer_lib.learning_rate_schedule(cfg)
    steps = np.array([0, 1, 2, 5, 6, 7, 19, 20, 21, 100, 249, 250, 1000])
    ours = np.array([float(schedule(int(s))) for s in steps])
    want = _numpy_rate(steps, lr=5e-3, decay_rate=0.9, decay_steps=20, warmup=warmup)
    np.testing.assert_allclose(ours, want, rtol=1e-5)  # float32
    np.testing.assert_allclose([cfg.learning_rate_at(int(s)) for s in steps], want, rtol=1e-12)
    if warmup:
        assert ours[0] == pytest.approx(5e-3 / warmup, rel=1e-6)  # the first update is not lost


def test_warmup_survives_serialization():
    cfg = TrainConfig(warmup_steps=10)
    schedule = optimizer_lib.learning_rate_schedule(cfg)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(again) is optimizer_lib.LinearWarmup
    assert [float(again(s)) for s in (0, 4, 9, 400)] == [float(schedule(s)) for s in (0, 4, 9, 400)]


def test_optimizer_updates_with_the_warmed_up_rate():
    """Five PyTorch-Adam updates of one weight against NumPy, rate from the transcription."""
    cfg = TrainConfig(learning_rate=0.1, lr_decay_steps=2, lr_decay_rate=0.5, warmup_steps=4)
    opt = optimizer_lib.make_optimizer(cfg)
    var = keras.Variable(np.float32(1.0))
    grads = [0.5, -1.0, 2.0, 0.25, -0.75]
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate(grads):
        opt.apply_gradients([(keras.ops.convert_to_tensor(np.float32(g)), var)])
        rate = _numpy_rate(t, lr=0.1, decay_rate=0.5, decay_steps=2, warmup=4)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= rate / (1 - 0.9 ** (t + 1)) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** (t + 1)) + 1e-8)
        assert float(var.numpy()) == pytest.approx(w, rel=1e-5)


def test_warmup_is_off_for_old_runs_and_validated():
    assert LEGACY_TRAIN_FIELDS["warmup_steps"] == 0
    assert TrainConfig().warmup_steps == 0
    assert "warmup_steps" not in TrainConfig.RESUMABLE_CHANGES
    with pytest.raises(ValueError, match="warmup_steps"):
        dataclasses.replace(TrainConfig(), warmup_steps=-1)
