"""Multiply-accumulates per clip, counted layer by layer from a built Keras model.

Counted like the DCASE complexity tools (NeSsi, torchinfo): from the model input (the
spectrogram), every multiply-accumulate of a weight layer, per example:

- `Conv2D`: `out_time * out_freq * kernel_h * kernel_w * in_channels / groups * filters`;
- `DepthwiseConv2D`: `out_time * out_freq * kernel_h * kernel_w * in_channels * multiplier`;
- `Dense` (also inside `TimeDistributed`, and on a `[batch, t, units]` input): `in_units *
  units` for every position it is applied at;
- BatchNorm, pooling, activations and the fusion means add no multiply-accumulate of a weight
  (BatchNorm folds into the preceding convolution at inference) and are not counted.

Parameter memory is counted the same way, with the switches a rule needs (`parameter_memory`:
bytes of one dtype or of each variable's own, BatchNorm and zero-valued weights in or out).

Input: a built `keras.Model`; output: `{layer name: MACs}` and their total, parameters and
bytes. Training costs about three forward passes: `training_flops(model) = 6 * macs(model)`
per example.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def _positions(shape) -> int:
    """Positions a per-position layer is applied at: the product of the non-batch, non-channel
    dimensions of its output `shape` `[batch, ..., channels]`."""
    return math.prod(int(d) for d in shape[1:-1])


def _layer_macs(layer, in_shape, out_shape) -> int:
    if isinstance(layer, keras.layers.TimeDistributed):
        inner = layer.layer
        return _layer_macs(inner, in_shape, out_shape)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _positions(out_shape) * kh * kw * int(in_shape[-1]) * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        groups = getattr(layer, "groups", 1) or 1
        return _positions(out_shape) * kh * kw * (int(in_shape[-1]) // groups) * layer.filters
    if isinstance(layer, keras.layers.Dense):
        return _positions(out_shape) * int(in_shape[-1]) * layer.units
    return 0


def layer_macs(model: keras.Model) -> dict[str, int]:
    """`{layer name: multiply-accumulates per example}` for every layer that has any."""
    out = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        node_shapes = [
            (node.input_tensors[0].shape, node.outputs[0].shape)
            for node in layer._inbound_nodes
            if node.input_tensors
        ]
        total = sum(_layer_macs(layer, i, o) for i, o in node_shapes)
        if total:
            out[layer.name] = total
    return out


def macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one example (one clip)."""
    return sum(layer_macs(model).values())


def training_flops(model: keras.Model) -> int:
    """FLOPs of one training example: forward plus backward, about 3 x 2 x MACs."""
    return 6 * macs(model)


DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def _batchnorm_variable_ids(layer) -> set[int]:
    """ids of the variables of every BatchNormalization layer in `layer`, nested ones included."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return {id(v) for v in layer.weights}
    ids = set()
    children = list(getattr(layer, "layers", []))
    if getattr(layer, "layer", None) is not None:  # wrappers such as TimeDistributed
        children.append(layer.layer)
    for child in children:
        ids |= _batchnorm_variable_ids(child)
    return ids


def parameter_memory(
    model: keras.Model,
    dtype: str | None = "int8",
    *,
    count_batchnorm: bool = True,
    count_zeros: bool = True,
) -> dict[str, int]:
    """Parameters and their bytes, counted the way a challenge's rule counts them.

    Args:
        model: A built model.
        dtype: Every counted parameter takes this dtype's bytes (the DCASE 2022-2025 rule:
            int8); None: each variable's own dtype (the DCASE 2020 1B rule).
        count_batchnorm: Count BatchNorm layers' weights, moving statistics included (they fold
            into the convolutions in an exported model, so counting them is an upper bound).
        count_zeros: Count parameters whose value is zero (the 2020 1B rule does not).

    Returns:
        `{'params': int, 'bytes': int}`, exact (no unit conversion).
    """
    if dtype is not None and dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_BYTES)}, got {dtype!r}")
    skipped = set() if count_batchnorm else _batchnorm_variable_ids(model)
    params = size = 0
    for v in model.weights:
        if id(v) in skipped:
            continue
        if count_zeros:
            n = math.prod(int(d) for d in v.shape)
        else:
            n = int(np.count_nonzero(keras.ops.convert_to_numpy(v.value)))
        params += n
        size += n * (DTYPE_BYTES[dtype] if dtype else np.dtype(v.dtype).itemsize)
    return {"params": params, "bytes": size}
