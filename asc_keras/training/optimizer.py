"""Adam as the authors ran it (PyTorch's update), on the paper's staircase learning rate.

`learning_rate_schedule(cfg)`: `lr(step) = cfg.learning_rate * cfg.lr_decay_rate **
floor(step / cfg.lr_decay_steps)` (1e-3 * 0.91^floor(step / 200) by default), where `step` is the
optimizer's update count. With `cfg.warmup_steps` = W > 0 it is wrapped in `LinearWarmup`: update
`step` uses `min(1, (step + 1) / W)` times that rate (a linear ramp from lr / W to lr over the
first W updates; the staircase keeps counting from step 0), as the DCASE 2024 baseline warms up
before its schedule.

`PyTorchAdam`: PyTorch's `torch.optim.Adam` update, for every variable at step t (1, 2, ...):

    m = beta_1 * m + (1 - beta_1) * g                 v = beta_2 * v + (1 - beta_2) * g^2
    p -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)

(AMSGrad: `sqrt(max(v))` in place of `sqrt(v)`.) `keras.optimizers.Adam` folds both bias
corrections into the learning rate and adds epsilon to the raw `sqrt(v)`, so its epsilon acts as
`epsilon / sqrt(1 - beta_2^t)`: 31.6x PyTorch's at step 1, and a parameter whose gradients are
near epsilon moves less than in the authors' runs. The bias corrections are computed as
`-expm1(t * log(beta))`, exact to float32 rounding at every step (`1 - beta_2^t` from a float32
`beta_2` is off by 1.3e-5 at step 1).

`make_optimizer(cfg)`: `PyTorchAdam` (or, with `cfg.adam_update == "keras"`, Keras's own Adam,
which runs recorded before this choice existed used) with the paper's "default parameters" as
PyTorch has them (betas 0.9 / 0.999, epsilon `cfg.adam_epsilon` = 1e-8) on that schedule,
wrapped in a dynamic `LossScaleOptimizer` under `mixed_float16` (bfloat16 has float32's exponent
range and needs no loss scaling). `describe(cfg)` names it for the run record.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from asc_keras.config import TrainConfig

BETA_1 = 0.9
BETA_2 = 0.999


@keras.saving.register_keras_serializable(package="asc_keras")
class PyTorchAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` with PyTorch's update `m_hat / (sqrt(v_hat) + epsilon)`.

    Same arguments, variables (hence checkpoints) and config as Keras's Adam; only
    `update_step` differs (see the module docstring). `beta_1` and `beta_2` must be floats.
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        bias_correction_1 = -ops.expm1(step * math.log(self.beta_1))  # 1 - beta_1^t
        bias_correction_2 = -ops.expm1(step * math.log(self.beta_2))  # 1 - beta_2^t
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign(
            v,
            ops.add(
                ops.multiply(v, self.beta_2), ops.multiply(ops.square(gradient), 1 - self.beta_2)
            ),
        )
        if self.amsgrad:
            v_max = self._velocity_hats[index]
            self.assign(v_max, ops.maximum(v_max, v))
            v = v_max
        denominator = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(bias_correction_2)), self.epsilon)
        step_size = ops.divide(lr, bias_correction_1)
        self.assign_sub(variable, ops.multiply(step_size, ops.divide(m, denominator)))


ADAM_CLASSES = {"pytorch": PyTorchAdam, "keras": keras.optimizers.Adam}  # config.ADAM_UPDATES


@keras.saving.register_keras_serializable(package="asc_keras")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule(step) * min(1, (step + 1) / warmup_steps)`: a linear warm-up of a schedule."""

    def __init__(self, schedule, warmup_steps: int):
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be positive, got {warmup_steps}")
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        rate = self.schedule(step)
        t = ops.cast(step, rate.dtype)
        return rate * ops.minimum(1.0, (t + 1.0) / float(self.warmup_steps))

    def get_config(self) -> dict:
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def learning_rate_schedule(cfg: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """The staircase exponential decay of `cfg`, warmed up over `cfg.warmup_steps` updates when
    that is positive (a serializable Keras schedule)."""
    decay = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=cfg.learning_rate,
        decay_steps=cfg.lr_decay_steps,
        decay_rate=cfg.lr_decay_rate,
        staircase=True,
    )
    return LinearWarmup(decay, cfg.warmup_steps) if cfg.warmup_steps else decay


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam (PyTorch's update and defaults) on the schedule; loss-scaled when
    `cfg.loss_scaling`."""
    optimizer = ADAM_CLASSES[cfg.adam_update](
        learning_rate=learning_rate_schedule(cfg),
        beta_1=BETA_1,
        beta_2=BETA_2,
        epsilon=cfg.adam_epsilon,
    )
    if cfg.loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def describe(cfg: TrainConfig) -> dict:
    """What `make_optimizer(cfg)` builds, for the run record (config.json)."""
    cls = ADAM_CLASSES[cfg.adam_update]
    return {
        "class": keras.saving.get_registered_name(cls),
        "update": (
            "m_hat / (sqrt(v_hat) + epsilon) (PyTorch)"
            if cls is PyTorchAdam
            else "m * lr_t / (sqrt(v) + epsilon) (Keras)"
        ),
        "beta_1": BETA_1,
        "beta_2": BETA_2,
        "epsilon": cfg.adam_epsilon,
        "loss_scale": "dynamic" if cfg.loss_scaling else None,
    }


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the next update will use."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
