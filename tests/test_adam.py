"""Adam exactly as the authors ran it: PyTorch's update, checked against a NumPy transcription.

`torch.optim.Adam` (single-tensor path, float32 parameters) at step t, transcribed:

    m = m + (1 - beta1) * (g - m)                        exp_avg.lerp_(grad, 1 - beta1)
    v = v * beta2 + (1 - beta2) * g * g                  exp_avg_sq.mul_(beta2).addcmul_(...)
    step_size = lr / (1 - beta1 ** t)                    Python floats (double)
    denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps         (AMSGrad: sqrt(max(v)))
    p = p - step_size * (m / denom)                      param.addcdiv_(exp_avg, denom, ...)

with the learning rate of the paper's staircase schedule (`1e-3 * 0.91 ** (k // decay)` at the
k-th update, 0-based). Gradients span 1e-9 to 1: where they are near epsilon Keras's own Adam
moves a parameter a fraction of PyTorch's distance, so the comparison can tell the two apart.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from asc_keras.config import TrainConfig
from asc_keras.training import optimizer as optimizer_lib

STEPS = 200
SHAPE = (64, 32)
CFG = TrainConfig(lr_decay_steps=50)  # the staircase decays 3 times in 200 steps


def _gradients(seed: int = 0) -> np.ndarray:
    """[STEPS, *SHAPE] float32: random signs, magnitudes log-uniform over 1e-9 .. 1 per element
    (fixed per element, so some parameters only ever see epsilon-sized gradients)."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-9, 0, size=SHAPE)
    return (rng.standard_normal((STEPS, *SHAPE)) * scale).astype(np.float32)


def _initial() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.choice([-1, 1], SHAPE) * rng.uniform(0.5, 1.5, SHAPE)).astype(np.float32)


def torch_adam_reference(p, grads, cfg: TrainConfig, *, amsgrad: bool = False) -> np.ndarray:
    """PyTorch's Adam in NumPy, float32 state like PyTorch's (see the module docstring)."""
    b1, b2, eps = 0.9, 0.999, cfg.adam_epsilon
    f32 = np.float32
    p = p.copy()
    m, v, v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for k, g in enumerate(grads):
        t = k + 1
        lr = cfg.learning_rate * cfg.lr_decay_rate ** (k // cfg.lr_decay_steps)
        m = m + f32(1 - b1) * (g - m)
        v = v * f32(b2) + f32(1 - b2) * (g * g)
        step_size = lr / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
        denom = np.sqrt(v_max if amsgrad else v) / f32((1 - b2**t) ** 0.5) + f32(eps)
        p = p - f32(step_size) * (m / denom)
    return p


def _run_keras(optimizer, grads, var=None, *, loss_scaled=False) -> tuple[np.ndarray, object]:
    """Apply `grads` one step at a time (in a `tf.function`, as training does) to `var` (a new
    variable at `_initial()` when None); returns its final value and the variable."""
    if var is None:
        var = keras.Variable(_initial(), dtype="float32")
        optimizer.build([var])

    @tf.function
    def apply(g):
        # Loss-scaled training hands the optimizer gradients multiplied by the loss scale.
        optimizer.apply([g * optimizer.dynamic_scale if loss_scaled else g], [var])

    for g in grads:
        apply(tf.constant(g))
    return var.numpy(), var


def _max_relative_difference(a, b) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.mark.parametrize("amsgrad", [False, True])
def test_pytorch_adam_matches_the_torch_formula_for_200_steps(amsgrad):
    grads = _gradients()
    expected = torch_adam_reference(_initial(), grads, CFG, amsgrad=amsgrad)
    optimizer = optimizer_lib.make_optimizer(CFG)
    if amsgrad:
        optimizer = optimizer_lib.PyTorchAdam.from_config(
            {**optimizer.get_config(), "amsgrad": True}
        )
    assert isinstance(optimizer, optimizer_lib.PyTorchAdam)
    got, _ = _run_keras(optimizer, grads)
    assert _max_relative_difference(got, expected) <= 1e-6
    assert optimizer_lib.current_learning_rate(optimizer) == pytest.approx(1e-3 * 0.91**4)
    # The gradients do tell the updates apart: Keras's own Adam is far off on the same data.
    keras_adam = keras.optimizers.Adam.from_config(optimizer.get_config())
    assert _max_relative_difference(_run_keras(keras_adam, grads)[0], expected) > 1e-3


def test_keras_update_stays_available_for_runs_recorded_with_it():
    cfg = dataclasses.replace(CFG, adam_update="keras")
    optimizer = optimizer_lib.make_optimizer(cfg)
    assert type(optimizer) is keras.optimizers.Adam and optimizer.epsilon == 1e-8
    assert optimizer_lib.describe(cfg)["class"] == "Adam"
    assert optimizer_lib.describe(CFG)["class"] == "asc_keras>PyTorchAdam"
    with pytest.raises(ValueError, match="adam_update must be one of"):
        TrainConfig(adam_update="sgd")


def test_resume_from_a_checkpoint_is_bitwise_exact(tmp_path):
    grads = _gradients(seed=2)
    whole, _ = _run_keras(optimizer_lib.make_optimizer(CFG), grads)
    first = optimizer_lib.make_optimizer(CFG)
    _, var = _run_keras(first, grads[: STEPS // 2])
    path = tf.train.Checkpoint(optimizer=first, var=var).save(str(tmp_path / "ckpt"))
    second = optimizer_lib.make_optimizer(CFG)
    var2 = keras.Variable(np.zeros(SHAPE, np.float32), dtype="float32")
    second.build([var2])
    tf.train.Checkpoint(optimizer=second, var=var2).restore(path).assert_consumed()
    assert int(second.iterations.numpy()) == STEPS // 2
    resumed, _ = _run_keras(second, grads[STEPS // 2 :], var2)
    np.testing.assert_array_equal(resumed, whole)


def test_serializes_and_works_under_loss_scaling_and_mixed_precision():
    cfg = dataclasses.replace(CFG, precision="mixed_float16")
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(cfg.precision)
    try:
        optimizer = optimizer_lib.make_optimizer(cfg)
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(optimizer.inner_optimizer, optimizer_lib.PyTorchAdam)
        restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
        assert isinstance(restored.inner_optimizer, optimizer_lib.PyTorchAdam)
        assert restored.inner_optimizer.epsilon == 1e-8
        grads = _gradients(seed=3)[:50]
        got, _ = _run_keras(optimizer, grads, loss_scaled=True)
    finally:
        keras.config.set_dtype_policy(policy)
    expected = torch_adam_reference(_initial(), grads, cfg)
    assert _max_relative_difference(got, expected) <= 1e-6


def test_a_run_recorded_before_the_choice_resumes_only_with_keras_adam(tmp_path):
    """config.json of a run trained with Keras's Adam has no `adam_update`: it reads as "keras",
    so today's default refuses to resume it (one line naming the field) and
    `--adam_update=keras` resumes it exactly as it was trained."""
    import json

    from asc_keras.training import checkpoints

    def record(cfg):
        return {
            "task": "1b",
            "classes": ["indoor", "outdoor", "transportation"],
            "train_config": cfg.to_dict(),
        }

    old = record(TrainConfig())
    del old["train_config"]["adam_update"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(
        checkpoints.IncompatibleModelDirError, match="adam_update: 'keras' -> 'pytorch'"
    ):
        checkpoints.check_resumable(str(tmp_path), record(TrainConfig()))
    assert checkpoints.check_resumable(str(tmp_path), record(TrainConfig(adam_update="keras")))
