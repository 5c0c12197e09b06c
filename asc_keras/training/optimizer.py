"""Adam with the paper's staircase learning rate (section 4.2).

`learning_rate_schedule(cfg)`: `lr(step) = cfg.learning_rate * cfg.lr_decay_rate **
floor(step / cfg.lr_decay_steps)` (1e-3 * 0.91^floor(step / 200) by default), where `step` is the
optimizer's update count. `make_optimizer(cfg)`: `keras.optimizers.Adam` with the paper's
"default parameters" as PyTorch has them (betas 0.9 / 0.999, epsilon `cfg.adam_epsilon` = 1e-8)
on that schedule, wrapped in a dynamic `LossScaleOptimizer` under `mixed_float16` (bfloat16 has
float32's exponent range and needs no loss scaling).
"""

from __future__ import annotations

import keras

from asc_keras.config import TrainConfig


def learning_rate_schedule(cfg: TrainConfig) -> keras.optimizers.schedules.ExponentialDecay:
    """The staircase exponential decay of `cfg` (a serializable Keras schedule)."""
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=cfg.learning_rate,
        decay_steps=cfg.lr_decay_steps,
        decay_rate=cfg.lr_decay_rate,
        staircase=True,
    )


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam (PyTorch's defaults) on the schedule; loss-scaled when `cfg.loss_scaling`."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate_schedule(cfg),
                                      beta_1=0.9, beta_2=0.999, epsilon=cfg.adam_epsilon)
    if cfg.loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the next update will use."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
