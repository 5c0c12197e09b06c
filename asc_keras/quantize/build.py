"""The QAT model of a trained float model, and its deployment form for the TFLite converter.

Input: a trained functional `keras.Model` of `asc_keras.strategies.build_model` (normalized
features in, `[batch, T, F]` per input). Output of `qat_model`: a model with the same inputs,
outputs and output names that computes what the int8 TFLite file computes:

- every `Conv2D` followed by its `BatchNormalization` becomes one `QATConv2D` (same name) with
  the BatchNorm folded in with its frozen moving statistics (`fold_batchnorm`: per output
  channel `w' = w * gamma / sqrt(var + eps)`, `b' = beta - mean * gamma / sqrt(var + eps)`)
  and the folded kernel fake-quantized per output channel; the BatchNorm layer is gone;
- every `Dense` (and SPSMT's `TimeDistributed(Dense)`, as one `Dense` over the frame axis,
  named as the `TimeDistributed` layer) becomes a `QATDense`;
- an `ActivationQuantizer` `<layer>_aq` follows every layer whose output TFLite quantizes with
  its own range (`QUANTIZED_OUTPUTS`: ReLU, i.e. the fused conv + ReLU, average pools, the
  frequency mean, Dense layers, concatenations, frame means and fusion averages; the softmax
  with TFLite's fixed range), and `<input>_input_aq` follows every model input (TFLite quantizes
  the normalized features). Reshapes, max pooling, slices, dropout and resizing keep their
  input's scale in TFLite and get none. A model output's quantizer takes the output's name (its
  layer becomes `<name>_float`), so the QAT model has the float model's output names.

The training loop trains the QAT model unchanged: the straight-through gradients of the fake
quantization pass to the kernels and biases, and the activation ranges follow their moving
averages in training mode.

`deploy_model(qat)` is the QAT model as plain float layers for the converter: `Conv2D` and
`Dense` with the fake-quantized (on-grid) kernels, so the converter's own per-channel
quantization gives back exactly the QAT integers, and no activation quantizers;
`activation_ranges(qat)` gives the tracked ranges by the name of the layer whose output they
quantize in that model (`<input>_normalization` for the inputs: the serving model's
normalization layer), which `asc_keras.export.tflite.convert_int8(..., ranges=...)` writes into
the calibrated graph in place of the calibrated ones.
"""

from __future__ import annotations

import keras
import numpy as np

from asc_keras.models import layers as layers_lib
from asc_keras.models.qat_layers import (
    SOFTMAX_RANGE,
    ActivationQuantizer,
    QATConv2D,
    QATDense,
    quantization_range,
    weight_fake_quant,
)

AQ_SUFFIX = "_aq"
FLOAT_SUFFIX = "_float"  # a model output's layer, whose name its quantizer takes
INPUT_AQ_SUFFIX = "_input_aq"
NORMALIZATION_SUFFIX = "_normalization"  # asc_keras.export.serving's normalization layers
QUANTIZED_OUTPUTS = (
    keras.layers.ReLU,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.Average,
    keras.layers.Concatenate,
    keras.layers.Dense,
    keras.layers.TimeDistributed,
    layers_lib.FrequencyMean,
)


def fold_batchnorm(kernel, bias, gamma, beta, mean, variance, epsilon: float):
    """`(kernel', bias')` of a convolution followed by BatchNorm in inference mode.

    Args:
        kernel: `[..., cout]` (output channel last); bias: `[cout]` or None.
        gamma, beta, mean, variance: `[cout]` (gamma None: 1; beta None: 0).
        epsilon: BatchNorm's epsilon.

    Returns:
        float32 `kernel * s` and `beta + (bias - mean) * s`, `s = gamma / sqrt(variance + eps)`.
    """
    kernel = np.asarray(kernel, np.float64)
    cout = kernel.shape[-1]
    gamma = np.ones(cout) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(cout) if beta is None else np.asarray(beta, np.float64)
    bias = np.zeros(cout) if bias is None else np.asarray(bias, np.float64)
    scale = gamma / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    folded_bias = beta + (bias - np.asarray(mean, np.float64)) * scale
    return (kernel * scale).astype(np.float32), folded_bias.astype(np.float32)


def _producer(tensor):
    return tensor._keras_history[0]  # noqa: SLF001 (Keras's link from a tensor to its layer)


def _batchnorm_weights(bn) -> tuple:
    """`(gamma, beta, mean, variance)` of a BatchNormalization layer (None where absent)."""
    return (
        bn.gamma.numpy() if bn.scale else None,
        bn.beta.numpy() if bn.center else None,
        bn.moving_mean.numpy(),
        bn.moving_variance.numpy(),
    )


def foldable_pairs(model) -> dict[str, str]:
    """`{batchnorm name: conv name}` of every BatchNorm on the last axis whose input is a
    `Conv2D` that feeds nothing else."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or layer.axis not in (
            -1,
            len(layer.input.shape) - 1,
        ):
            continue
        src = _producer(layer.input)
        if type(src) is keras.layers.Conv2D and len(src._outbound_nodes) == 1:  # noqa: SLF001
            pairs[layer.name] = src.name
    return pairs


def _qat_clone(layer, conv_with_bn: set[str], outputs: set[str]):
    config = layer.get_config()
    if layer.name in outputs:
        config["name"] = f"{layer.name}{FLOAT_SUFFIX}"
    if type(layer) is keras.layers.Conv2D:
        if layer.name in conv_with_bn:
            config["use_bias"] = True
        return QATConv2D.from_config(config)
    if type(layer) is keras.layers.Dense:
        return QATDense.from_config(config)
    if isinstance(layer, keras.layers.TimeDistributed) and type(layer.layer) is keras.layers.Dense:
        return QATDense.from_config(dict(layer.layer.get_config(), name=layer.name))
    return layer.__class__.from_config(config)


def _source_weights(src, pairs_by_conv: dict, model) -> list:
    """The weights of the QAT layer that replaces `src` (folded for a conv before BatchNorm)."""
    if isinstance(src, keras.layers.TimeDistributed):
        return src.layer.get_weights()
    if src.name in pairs_by_conv:
        bn = model.get_layer(pairs_by_conv[src.name])
        bias = src.bias.numpy() if src.use_bias else None
        return list(fold_batchnorm(src.kernel.numpy(), bias, *_batchnorm_weights(bn), bn.epsilon))
    return src.get_weights()


def qat_model(model, *, ema_decay: float = 0.99):
    """The QAT model of a trained float `model` (module docstring), same weight values."""
    pairs = foldable_pairs(model)
    pairs_by_conv = {conv: bn for bn, conv in pairs.items()}
    input_quantizers: dict[int, object] = {}

    def quantized_input(t):
        if not isinstance(_producer(t), keras.layers.InputLayer):
            return t
        if id(t) not in input_quantizers:
            name = f"{_producer(t).name}{INPUT_AQ_SUFFIX}"
            input_quantizers[id(t)] = ActivationQuantizer(ema_decay=ema_decay, name=name)(t)
        return input_quantizers[id(t)]

    outputs = set(model.output_names)

    def call(layer, *args, **kwargs):
        name = layer.name
        if name.endswith(FLOAT_SUFFIX) and name[: -len(FLOAT_SUFFIX)] in outputs:
            name = name[: -len(FLOAT_SUFFIX)]
        src = model.get_layer(name)
        if src.name in pairs:
            return args[0]  # folded into the preceding QATConv2D
        first = args[0]
        if isinstance(first, (list, tuple)):
            first = type(first)(quantized_input(t) for t in first)
        else:
            first = quantized_input(first)
        y = layer(first, *args[1:], **kwargs)
        if src.weights:
            layer.set_weights(_source_weights(src, pairs_by_conv, model))
        aq_name = src.name if src.name in outputs else f"{src.name}{AQ_SUFFIX}"
        if isinstance(src, keras.layers.Softmax):
            return ActivationQuantizer(fixed_range=SOFTMAX_RANGE, name=aq_name)(y)
        if isinstance(src, QUANTIZED_OUTPUTS):
            return ActivationQuantizer(ema_decay=ema_decay, name=aq_name)(y)
        if src.name in outputs:
            return keras.layers.Identity(name=aq_name)(y)
        return y

    return keras.models.clone_model(
        model,
        clone_function=lambda layer: _qat_clone(layer, set(pairs_by_conv), outputs),
        call_function=call,
    )


def is_qat_model(model) -> bool:
    """Whether `model` holds fake-quantized layers (a QAT run's `model.keras`)."""
    return any(isinstance(layer, (QATConv2D, QATDense)) for layer in model.layers)


def deploy_model(qat):
    """The QAT model as float layers with on-grid kernels and no quantizers (module doc)."""

    outputs = set(qat.output_names)
    sources: dict[int, object] = {}  # id(clone) -> the QAT layer it clones

    def clone(layer):
        config = layer.get_config()
        if layer.name.endswith(FLOAT_SUFFIX) and layer.name[: -len(FLOAT_SUFFIX)] in outputs:
            config["name"] = layer.name[: -len(FLOAT_SUFFIX)]
        if isinstance(layer, QATConv2D):
            new = keras.layers.Conv2D.from_config(config)
        elif isinstance(layer, QATDense):
            new = keras.layers.Dense.from_config(config)
        else:
            new = layer.__class__.from_config(config)
        sources[id(new)] = layer
        return new

    def call(layer, *args, **kwargs):
        src = sources[id(layer)]
        if isinstance(src, (ActivationQuantizer, keras.layers.Identity)):
            return args[0]
        if isinstance(src, QATDense):
            kwargs.pop("mask", None)  # a Dense on frames, where a TimeDistributed was
        y = layer(*args, **kwargs)
        if isinstance(src, (QATConv2D, QATDense)):
            kernel, *rest = src.get_weights()
            layer.set_weights([np.asarray(weight_fake_quant(kernel)), *rest])
        elif src.weights:
            layer.set_weights(src.get_weights())
        return y

    return keras.models.clone_model(qat, clone_function=clone, call_function=call)


def activation_ranges(qat) -> dict[str, tuple[float, float]]:
    """`{layer name in deploy_model(qat): (min, max)}` of every tracked activation quantizer
    whose range is set (module docstring); the inputs are named `<input>_normalization`."""
    ranges = {}
    for layer in qat.layers:
        if not isinstance(layer, ActivationQuantizer) or layer.fixed_range is not None:
            continue
        if float(layer.initialized.numpy()) <= 0:
            continue
        lo, hi = quantization_range(layer.range_min.numpy(), layer.range_max.numpy())
        if layer.name.endswith(INPUT_AQ_SUFFIX):
            name = layer.name[: -len(INPUT_AQ_SUFFIX)] + NORMALIZATION_SUFFIX
        elif layer.name.endswith(AQ_SUFFIX):
            name = layer.name[: -len(AQ_SUFFIX)]
        else:  # a model output: the deploy model's output layer of that name
            name = layer.name
        ranges[name] = (float(lo), float(hi))
    return ranges
