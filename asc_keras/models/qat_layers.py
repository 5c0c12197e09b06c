"""Fake-quantized layers for quantization-aware training (QAT), as TFLite's int8 converter
quantizes: registered and serializable, so a QAT run's `model.keras` loads in safe mode.

- `weight_fake_quant(kernel)`: per-output-channel symmetric int8 of a kernel whose LAST axis is
  the output channel (Conv2D `[kh, kw, cin, cout]`, Dense `[in, out]`): scale
  `s = max|w| / 127` per channel, values `s * q`, `q = round(w / s)` in `[-127, 127]` (TF's
  `FakeQuantWithMinMaxVarsPerChannel` with `narrow_range`: the range `[-127 s, 127 s]` on the
  grid `[1, 255]`, zero point 128; it rounds half up, `floor(x + 0.5)`). The scale is the
  kernel's own maximum, with no gradient through it; the kernel gets the straight-through
  gradient.
- `QATConv2D`: `Conv2D` (with bias: the folded BatchNorm's) whose kernel is fake-quantized.
- `QATDense`: `Dense` on the last axis (also `[batch, frames, units]`, SPSMT's frame head) with
  a fake-quantized kernel.
- `ActivationQuantizer`: per-tensor asymmetric int8 of an activation, `[...] -> [...]`: in
  training the range is an exponential moving average of the batch minimum and maximum
  (`ema_decay`; the first training batch sets it), at inference the stored range, frozen.
  The range always includes 0 (as TFLite's quantizer makes it). Until a first training batch
  has set the range, the layer passes its input through unchanged. `fixed_range` fixes it
  (the softmax output: TFLite's int8 softmax has scale 1/256, zero point -128, i.e. the
  range `[0, 255/256]`).

Biases stay float: TFLite stores them as int32 at scale `input scale * weight scale`, whose
rounding is far below the int8 steps.
"""

from __future__ import annotations

import keras
from keras import ops

from asc_keras.models.layers import PACKAGE

WEIGHT_LEVELS = 127  # symmetric int8: q in [-127, 127]
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)  # TFLite's int8 softmax output: scale 1/256, zp -128
MIN_RANGE = 1e-6  # smallest range width (a constant activation, an all-zero channel)


def weight_fake_quant(kernel):
    """Per-output-channel (last axis) symmetric int8 fake quantization (module docstring)."""
    axes = tuple(range(len(kernel.shape) - 1))
    bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=axes), MIN_RANGE))
    return keras.quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class QATConv2D(keras.layers.Conv2D):
    """`Conv2D` whose kernel is fake-quantized per output channel (`weight_fake_quant`)."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, weight_fake_quant(kernel))


@keras.saving.register_keras_serializable(package=PACKAGE)
class QATDense(keras.layers.Dense):
    """`Dense` on the last axis whose kernel is fake-quantized per output unit."""

    def call(self, inputs, mask=None, training=None):
        x = ops.matmul(inputs, weight_fake_quant(self.kernel))
        if self.use_bias:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


@keras.saving.register_keras_serializable(package=PACKAGE)
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor asymmetric int8 fake quantization with a tracked range (module docstring).

    Args:
        ema_decay: Weight of the old range in the moving average.
        fixed_range: `(min, max)` that never changes (None: tracked).
    """

    def __init__(self, ema_decay: float = 0.99, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        self.ema_decay = float(ema_decay)
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)

    def build(self, input_shape):
        lo, hi = self.fixed_range or (0.0, 0.0)
        self.range_min = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(lo), trainable=False, name="min"
        )
        self.range_max = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(hi), trainable=False, name="max"
        )
        self.initialized = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(1.0 if self.fixed_range else 0.0),
            trainable=False,
            name="initialized",
        )

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        lo, hi = self.range_min, self.range_max
        if training and self.fixed_range is None:
            seen = ops.greater(self.initialized, 0.0)
            batch_lo = ops.stop_gradient(ops.min(x))
            batch_hi = ops.stop_gradient(ops.max(x))
            d = self.ema_decay
            lo = ops.where(seen, d * self.range_min + (1.0 - d) * batch_lo, batch_lo)
            hi = ops.where(seen, d * self.range_max + (1.0 - d) * batch_hi, batch_hi)
            self.range_min.assign(lo)
            self.range_max.assign(hi)
            self.initialized.assign(1.0)
        lo, hi = quantization_range(lo, hi)
        y = keras.quantizers.fake_quant_with_min_max_vars(x, lo, hi, num_bits=8)
        if not (training and self.fixed_range is None):
            y = ops.where(ops.greater(self.initialized, 0.0), y, x)
        return ops.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "ema_decay": self.ema_decay,
            "fixed_range": None if self.fixed_range is None else list(self.fixed_range),
        }


def quantization_range(lo, hi):
    """`(min(lo, 0), max(hi, 0, min + MIN_RANGE))`: the range TFLite quantizes with."""
    lo = ops.minimum(lo, 0.0)
    hi = ops.maximum(ops.maximum(hi, 0.0), lo + MIN_RANGE)
    return lo, hi
