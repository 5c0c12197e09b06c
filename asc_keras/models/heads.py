"""Classifier heads on a final conv feature map: clip-level (paper eq. 2) and SPSMT (eq. 5).

Both start with the mean over frequency, `[batch, t, f, c] -> [batch, t, c]`, and use the same
layers `<prefix>_fc1` (Dense hidden + ReLU), `<prefix>_dropout`, `<prefix>_fc2` (Dense classes,
logits), so SPSMT adds no parameters:

- `clip_head`: max over time `[batch, c]` -> fc1 -> dropout -> fc2 -> softmax `[batch, classes]`.
- `frame_head`: fc1 -> dropout -> fc2 on every frame (`TimeDistributed`) -> softmax
  `[batch, t, classes]`, then the mean over frames `[batch, classes]`.

The weightless output layers (softmax, frame mean) carry the output names given by the caller,
so every layer holding weights is named after the part (`<prefix>_...`) and a part built alone
has the same weight names as inside a fused model. Output layers compute in float32, so that
probabilities stay float32 under a mixed-precision dtype policy. Dense kernels and dropout
masks are seeded from the run's `seed` and the layer name (`initializers`).
"""

from __future__ import annotations

import keras

from asc_keras.models import initializers
from asc_keras.models import layers as layers_lib
from asc_keras.models.backbones import Backbone, scaled


def clip_head(
    x,
    backbone: Backbone,
    *,
    num_classes: int,
    width: float,
    dropout: float,
    prefix: str,
    seed: int,
    probs_name: str,
):
    """Global pooling (mean over frequency, max over time) and the fully connected classifier.

    Args:
        x: Final feature map `[batch, t, f, c]`.
        backbone: Gives the hidden units (512 for 1A, 200 for 1B; scaled by `width`).
        num_classes: Output classes.
        width: Hidden-unit multiplier.
        dropout: Dropout rate between the two Dense layers.
        prefix: Layer-name prefix.
        seed: The run's seed; kernels and dropout are seeded from it and the layer names.
        probs_name: Name of the softmax layer (the model output).

    Returns:
        Probabilities `[batch, classes]`.
    """
    x = layers_lib.FrequencyMean(name=f"{prefix}_freq_mean")(x)  # [b, t, c]
    x = keras.layers.GlobalMaxPooling1D(name=f"{prefix}_time_max")(x)  # [b, c]
    x = _dense(
        scaled(backbone.hidden_units, width), activation="relu", seed=seed, name=f"{prefix}_fc1"
    )(x)  # [b, hidden]
    x = initializers.dropout(dropout, seed=seed, name=f"{prefix}_dropout")(x)
    x = _dense(num_classes, seed=seed, name=f"{prefix}_fc2")(x)  # [b, classes] logits
    return keras.layers.Softmax(name=probs_name, dtype="float32")(x)


def frame_head(
    x,
    backbone: Backbone,
    *,
    num_classes: int,
    width: float,
    dropout: float,
    prefix: str,
    seed: int,
    frames_name: str,
    probs_name: str,
):
    """SPSMT: the classifier on every frame after the mean over frequency; frame probs averaged.

    Args:
        x: Final feature map `[batch, t, f, c]`.
        backbone: Gives the hidden units.
        num_classes: Output classes.
        width: Hidden-unit multiplier.
        dropout: Dropout rate between the two Dense layers.
        prefix: Layer-name prefix.
        seed: The run's seed; kernels and dropout are seeded from it and the layer names.
        frames_name: Name of the frame softmax layer.
        probs_name: Name of the frame-mean layer.

    Returns:
        `(frames, probs)`: `[batch, t, classes]` and `[batch, classes]`.
    """
    x = layers_lib.FrequencyMean(name=f"{prefix}_freq_mean")(x)  # [b, t, c]
    hidden = _dense(
        scaled(backbone.hidden_units, width),
        activation="relu",
        seed=seed,
        name=f"{prefix}_fc1_dense",
    )
    x = keras.layers.TimeDistributed(hidden, name=f"{prefix}_fc1")(x)  # [b, t, hidden]
    x = initializers.dropout(dropout, seed=seed, name=f"{prefix}_dropout")(x)
    logits = _dense(num_classes, seed=seed, name=f"{prefix}_fc2_dense")
    x = keras.layers.TimeDistributed(logits, name=f"{prefix}_fc2")(x)  # [b, t, classes]
    frames = keras.layers.Softmax(name=frames_name, dtype="float32")(x)
    probs = keras.layers.GlobalAveragePooling1D(name=probs_name, dtype="float32")(frames)
    return frames, probs


def _dense(units: int, *, seed: int, name: str, activation=None) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=initializers.kernel_initializer(seed, name),
        name=name,
    )
