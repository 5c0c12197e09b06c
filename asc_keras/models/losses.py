"""Frame-wise categorical cross-entropy for SPSMT outputs (paper section 2.4).

`y_true` holds one (possibly mixup-mixed) label vector per clip, `[batch, classes]`; `y_pred` holds
the probabilities of every frame, `[batch, frames, classes]`. The loss of a clip is the mean over
its frames of the categorical cross-entropy, `[batch]`.
"""

from __future__ import annotations

import keras
from keras import ops

from asc_keras.models.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
def framewise_categorical_crossentropy(y_true, y_pred):
    """Mean over frames of the categorical cross-entropy.

    Args:
        y_true: Clip labels `[batch, classes]` (one-hot or mixed).
        y_pred: Frame probabilities `[batch, frames, classes]`.

    Returns:
        Per-clip loss `[batch]`.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    y_true = ops.broadcast_to(ops.expand_dims(y_true, 1), ops.shape(y_pred))  # [b, t, classes]
    per_frame = keras.losses.categorical_crossentropy(y_true, y_pred)  # [b, t]
    return ops.mean(per_frame, axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FramewiseCategoricalCrossentropy(keras.losses.Loss):
    """`framewise_categorical_crossentropy` as a `keras.losses.Loss` (batch mean by default)."""

    def __init__(self, name: str = "framewise_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return framewise_categorical_crossentropy(y_true, y_pred)
