"""Precise BatchNorm statistics: moving mean and variance recomputed on clean training batches.

During training every BatchNorm layer keeps an exponential moving average of the batch
statistics it sees. After a short or fast-moving run that average still remembers early
weights, and under mixup it describes mixed clips, not the clips the model will classify.
`recalibrate(model, batches, num_batches)` replaces, for every BatchNorm layer, the moving mean
and variance by the plain average over `num_batches` batches of the per-batch mean and variance
of that layer's input, each batch passed through the network in training mode (so every layer
sees the input that batch statistics upstream give it, as during training).

Input: a functional `keras.Model` and an iterator of feature dicts `{rep: [B, T, F]}` (clean,
normalized, un-mixed). Output: the model's BatchNorm moving statistics, set in place.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np


def batchnorm_layers(model: keras.Model) -> list:
    """Every `BatchNormalization` layer of `model`, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate(model: keras.Model, batches: Iterable, num_batches: int) -> int:
    """Set every BatchNorm layer's moving statistics to their average over clean batches.

    Args:
        model: A functional model whose BatchNorm layers each act on a 4-D tensor
            `[batch, time, freq, channels]` (or any rank, normalized over the last axis).
        batches: Yields feature dicts `{rep: float32 [B, T, F]}`, or `(features, anything)`.
        num_batches: How many batches to average over (> 0).

    Returns:
        The number of batches averaged (fewer than `num_batches` when `batches` ran out).

    Raises:
        ValueError: `num_batches` < 1, or `batches` yielded nothing.
    """
    import tensorflow as tf

    if num_batches < 1:
        raise ValueError(f"num_batches must be positive, got {num_batches}")
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    probe = keras.Model(model.inputs, {layer.name: layer.input for layer in layers})

    @tf.function(reduce_retracing=True)
    def moments(features):
        inputs = probe(features, training=True)  # {name: every BatchNorm layer's input}
        out = []
        for layer in layers:
            x = tf.cast(inputs[layer.name], tf.float32)
            axes = list(range(len(x.shape) - 1))
            mean, variance = tf.nn.moments(x, axes=axes)  # [channels] each
            out.append((mean, variance))
        return out

    sums = [
        [
            np.zeros(layer.moving_mean.shape, np.float64),
            np.zeros(layer.moving_variance.shape, np.float64),
        ]
        for layer in layers
    ]
    seen = 0
    for batch in batches:
        if seen == num_batches:
            break
        features = batch[0] if isinstance(batch, tuple) else batch
        for acc, (mean, variance) in zip(sums, moments(features), strict=True):
            acc[0] += mean.numpy()
            acc[1] += variance.numpy()
        seen += 1
    if not seen:
        raise ValueError("no batches to recalibrate BatchNorm statistics on")
    for layer, (mean_sum, var_sum) in zip(layers, sums, strict=True):
        layer.moving_mean.assign((mean_sum / seen).astype(layer.moving_mean.dtype))
        layer.moving_variance.assign((var_sum / seen).astype(layer.moving_variance.dtype))
    return seen
