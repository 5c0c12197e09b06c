"""Small registered layers and `Lambda` functions the networks are built from.

Everything here is registered with `keras.saving.register_keras_serializable(package="asc_keras")`
so that a saved `.keras` model reloads with `keras.saving.load_model(path, safe_mode=True)` once
`asc_keras.models` has been imported.

Axis convention: `[batch, time, freq, channels]`.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "asc_keras"


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrequencyMean(keras.layers.Layer):
    """Mean over the frequency axis: `[batch, time, freq, channels] -> [batch, time, channels]`.

    The first half of the paper's global pooling (mean over frequency, then max over time) and
    the frame features of SPSMT.
    """

    def call(self, inputs):
        return ops.mean(inputs, axis=2)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[3])


@keras.saving.register_keras_serializable(package=PACKAGE)
def frequency_band(x, start: int, stop: int):
    """Bins `[start, stop)` of the frequency axis (for `keras.layers.Lambda`, SPSMF bands).

    Args:
        x: `[batch, time, freq, channels]`.
        start: First bin of the band.
        stop: One past the last bin.

    Returns:
        `[batch, time, stop - start, channels]`.
    """
    return x[:, :, start:stop, :]


def band_layer(start: int, stop: int, *, name: str) -> keras.layers.Lambda:
    """A `Lambda` cutting frequency bins `[start, stop)` out of `[batch, time, freq, channels]`."""
    return keras.layers.Lambda(
        frequency_band, arguments={"start": int(start), "stop": int(stop)}, name=name
    )


def frequency_resize(x, bins: int, *, name: str):
    """Bilinear resize of the frequency axis to `bins`; the time axis is kept.

    Args:
        x: `[batch, time, freq, channels]` with a static time size.
        bins: Target frequency size.
        name: Layer name.

    Returns:
        `[batch, time, bins, channels]` (`x` itself when it already has `bins` bins).
    """
    if x.shape[2] == bins:
        return x
    return keras.layers.Resizing(x.shape[1], bins, interpolation="bilinear", name=name)(x)
