"""Export-time rewrites: the trained network as layers that TFLite's XNNPACK kernels run fast.

Input: a trained `keras.Model` (normalized features in). Output: a new model that computes the
same function from the same weights (float differences are summation-order round-off, about
1e-7), with the same input and output names. Nothing here changes training or the saved
`model.keras`; `serving.py` applies `for_tflite` to the network it wraps for the TFLite
converter.

The result is a graph for the TFLite converter, not a model for TensorFlow to run: the 1B
network's 4 x 2 pools become depthwise convolutions of strides (4, 2), which TFLite and oneDNN
run but TensorFlow's own depthwise kernel (CPUs without oneDNN, GPUs) refuses ("only supports
equal length strides"). `export.artifacts.write_artifacts` therefore writes the SavedModels from the
network as trained and converts TFLite files from a temporary SavedModel of this graph. (A
strides-equal form, frames folded into groups of 4 around a (2, 2)-strided convolution, ran
everywhere but added a SLICE and two RESHAPEs per pool and 1.7 KB to the int8 1B EF file.)

- `flatten_time_distributed`: SPSMT's `TimeDistributed(Dense)` as one `Dense` (`FrameDense`)
  over the frame axis. The SavedModels' serving models get this rewrite alone, which TensorFlow
  runs everywhere.
- `AveragePooling2D(pool)` with stride = pool and valid padding -> `DepthwiseConv2D(pool,
  strides=pool)` whose weights are all `1 / (pool_t * pool_f)` (`<name>_dw`). Same numbers;
  XNNPACK has no int8 average pooling, so in an int8 file every pool ran in TFLite's own
  kernel and cut the delegated graph in pieces (1B EF: 1.0 ms of the first pool alone against
  0.16 ms as a depthwise convolution).
- `Concatenate` on the channel axis of one-channel inputs (EF's `ef_stack` of Log-Mel, CQT and
  Gamma) -> `ChannelStack` (`<name>`): the inputs concatenated as rows `[b, t, C, f]` and one
  transpose to `[b, t, f, C]`. Same numbers; XNNPACK concatenates channels one element at a
  time, so the three-channel stack took 0.50 ms in an int8 file, against 0.09 ms this way.
- A `Conv2D(k_t x k_f)`, stride 1, 'same', on an input of few channels (`cin < 8`, `k_f >= 5`:
  the 1B network's first 7x7 convolution on 1 or 3 channels) -> `FrequencyNeighbours`
  (`<name>_shift`, no weights: the 'same'-padded input sliced at the `k_f` frequency offsets,
  stacked, and transposed so that channel `c * k_f + i` = channel `c` shifted by tap `i`) and
  the trained kernel rearranged to `Conv2D(k_t x 1)` over those `cin * k_f` channels (`<name>`,
  same bias and activation). XNNPACK's int8 convolution pads the channels of every kernel tap
  to a multiple of 8, so three channels per tap did 2.7x the useful work (1B EF: 3.6 ms as one
  7x7 convolution; 0.7 + 1.5 ms with the neighbours stacked by a fixed one-hot 1 x 7
  convolution; 0.3 + 1.5 ms with slices and one transpose). The int8 weights are the same: the
  per-output-channel scale covers the same 147 numbers. `FrequencyNeighbours` works on rows
  `[b, t, C, f]` too, so after a `ChannelStack` the converter folds the transpose pair between
  them and the file keeps one TRANSPOSE.

The stacks reshape to static shapes, so they replace layers only on inputs whose non-batch
dimensions are all known (every exported model here: fixed clip length).
"""

from __future__ import annotations

import keras
import numpy as np

MAX_SHIFT_CHANNELS = 8  # split only convolutions reading fewer input channels than this
MIN_SHIFT_WIDTH = 5  # ... with a kernel at least this wide in frequency


@keras.saving.register_keras_serializable(package="asc_keras")
class FrameDense(keras.layers.Dense):
    """`Dense` on the last axis of `[batch, frames, units]`: what `TimeDistributed(Dense)`
    computes, as one matrix product (it ignores the mask argument Keras passes on)."""

    def call(self, inputs, mask=None, training=None):
        return super().call(inputs)


def flatten_time_distributed(model):
    """`model` with every `TimeDistributed(Dense)` replaced by one `Dense` over the frame axis.

    Keras 3 unrolls `TimeDistributed` over a static time axis into one slice and one matrix
    product per frame (26 for the 1B SPSMT head), which TFLite keeps: about 30 KB more per file
    and slower. A `Dense` on `[batch, frames, units]` computes the same numbers from the same
    weights in one op. The layer names and weights are kept; a model without `TimeDistributed`
    is returned as is.
    """
    if not any(isinstance(layer, keras.layers.TimeDistributed) for layer in model.layers):
        return model

    def clone(layer):
        if isinstance(layer, keras.layers.TimeDistributed) and isinstance(
            layer.layer, keras.layers.Dense
        ):
            config = dict(layer.layer.get_config(), name=layer.name)
            return FrameDense.from_config(config)
        return layer.__class__.from_config(layer.get_config())

    flat = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            flat.get_layer(layer.name).set_weights(layer.get_weights())
    return flat


def _pool_as_depthwise(src, x):
    """`AveragePooling2D` as a depthwise convolution of constant weights, or None."""
    if (
        src.padding != "valid"
        or tuple(src.strides) != tuple(src.pool_size)
        or src.data_format != "channels_last"
    ):
        return None
    pt, pf = src.pool_size
    layer = keras.layers.DepthwiseConv2D(
        (pt, pf), strides=(pt, pf), padding="valid", use_bias=False, name=f"{src.name}_dw"
    )
    y = layer(x)  # [b, t / pt, f / pf, c]
    layer.set_weights([np.full((pt, pf, x.shape[-1], 1), 1.0 / (pt * pf), np.float32)])
    return y


class ChannelStack(keras.layers.Layer):
    """`[b, t, f, 1]` tensors -> `[b, t, f, C]`, as a channel `Concatenate` of them would.

    Concatenated as rows `[b, t, C, f]` (contiguous copies of `f` values), then one transpose.
    """

    def call(self, inputs):
        _, t, f, _ = inputs[0].shape
        rows = keras.ops.concatenate([keras.ops.reshape(x, (-1, t, 1, f)) for x in inputs], axis=2)
        return keras.ops.transpose(rows, (0, 1, 3, 2))

    def compute_output_shape(self, input_shape):
        b, t, f, _ = input_shape[0]
        return b, t, f, len(input_shape)


class FrequencyNeighbours(keras.layers.Layer):
    """`[b, t, f, C]` -> `[b, t, f, C * width]`: channel `c * width + i` is channel `c` at bin
    `f + i - (width - 1) // 2` (zero outside), the frequency taps a 'same' convolution of that
    width reads (`keras.layers.Conv2D` pads `(width - 1) // 2` bins in front).

    Works on rows: the input is transposed to `[b, t, C, f]` (a transpose the converter folds
    into a `ChannelStack`'s before it), padded in frequency, sliced at the `width` offsets
    (contiguous copies of `f` values), the slices stacked as `[b, t, C, width, f]` and
    transposed once to `[b, t, f, C, width]`.
    """

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def call(self, x):
        _, t, f, c = x.shape
        before = (self.width - 1) // 2
        rows = keras.ops.transpose(x, (0, 1, 3, 2))  # [b, t, c, f]
        padded = keras.ops.pad(rows, [(0, 0), (0, 0), (0, 0), (before, self.width - 1 - before)])
        rows_shape = (-1, t, c, f)  # SLICE ops sharing one size constant: a smaller file
        taps = keras.ops.stack(
            [keras.ops.slice(padded, (0, 0, 0, i), rows_shape) for i in range(self.width)], axis=3
        )
        return keras.ops.reshape(
            keras.ops.transpose(taps, (0, 1, 4, 2, 3)),  # [b, t, f, c, w]
            (-1, t, f, c * self.width),
        )

    def compute_output_shape(self, input_shape):
        b, t, f, c = input_shape
        return b, t, f, c * self.width

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def stacks_channels(src, inputs) -> bool:
    """Whether `ChannelStack` replaces a `Concatenate` of these input tensors."""
    return (
        type(src) is keras.layers.Concatenate
        and src.axis in (-1, 3)
        and isinstance(inputs, (list, tuple))
        and len(inputs) > 1
        and all(len(x.shape) == 4 and x.shape[-1] == 1 and None not in x.shape[1:] for x in inputs)
    )


def splits_conv(src, x) -> bool:
    """Whether `_conv_as_shift` rewrites a `Conv2D` called on `x` (static `[b, t, f, c]`)."""
    channels = x.shape[-1]
    return (
        type(src) is keras.layers.Conv2D
        and src.padding == "same"
        and len(x.shape) == 4
        and None not in x.shape[1:]
        and src.data_format == "channels_last"
        and tuple(src.strides) == (1, 1)
        and tuple(src.dilation_rate) == (1, 1)
        and src.groups == 1
        and channels < MAX_SHIFT_CHANNELS
        and src.kernel_size[1] >= MIN_SHIFT_WIDTH
    )


def _conv_as_shift(src, x):
    """A `k_t x k_f` convolution as stacked frequency neighbours and a `k_t x 1` convolution."""
    kt, kf = src.kernel_size
    cin = x.shape[-1]
    stacked = FrequencyNeighbours(kf, name=f"{src.name}_shift")(x)  # [b, t, f, cin * kf]
    conv = keras.layers.Conv2D(
        src.filters,
        (kt, 1),
        padding="same",
        use_bias=src.use_bias,
        activation=src.activation,
        name=src.name,
    )
    y = conv(stacked)  # [b, t, f, filters]
    kernel, *rest = src.get_weights()  # kernel [kt, kf, cin, filters]
    kernel = np.transpose(kernel, (0, 2, 1, 3)).reshape(kt, 1, cin * kf, src.filters)
    conv.set_weights([kernel, *rest])
    return y


def for_tflite(model):
    """`model` with the rewrites of the module docstring (see there); same names and numbers.

    Args:
        model: A functional `keras.Model` (its nested models are left alone).

    Returns:
        A new `keras.Model`, or `model` itself when nothing applies (a `Sequential` model is
        returned as `flatten_time_distributed` returns it).
    """
    model = flatten_time_distributed(model)
    if isinstance(model, keras.Sequential):
        return model
    if not any(
        isinstance(
            layer, (keras.layers.AveragePooling2D, keras.layers.Conv2D, keras.layers.Concatenate)
        )
        for layer in model.layers
    ):
        return model

    def clone(layer):
        return layer.__class__.from_config(layer.get_config())

    def call(layer, *args, **kwargs):
        src = model.get_layer(layer.name)
        x = args[0] if args else None
        y = None
        if isinstance(src, keras.layers.AveragePooling2D):
            y = _pool_as_depthwise(src, x)
        elif stacks_channels(src, x):
            y = ChannelStack(name=src.name)(x)
        elif isinstance(src, keras.layers.Conv2D) and splits_conv(src, x):
            y = _conv_as_shift(src, x)
        if y is not None:
            return y
        y = layer(*args, **kwargs)
        if src.weights:
            layer.set_weights(src.get_weights())
        return y

    return keras.models.clone_model(model, clone_function=clone, call_function=call)
