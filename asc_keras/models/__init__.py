"""Backbone CNNs (paper Table 1), heads, registered layers, the SPSMT loss and size accounting.

Importing this package registers every custom object the networks use, so that saved models
load with `keras.saving.load_model(path, safe_mode=True)` (or `asc_keras.models.load_model`).
Networks are composed into fusions and strategies by `asc_keras.strategies`.
"""

from asc_keras.models import initializers, layers, losses
from asc_keras.models.backbones import (
    BACKBONES,
    Backbone,
    ConvBlock,
    Norm,
    conv_block,
    conv_stack,
)
from asc_keras.models.heads import clip_head, frame_head
from asc_keras.models.losses import (
    FramewiseCategoricalCrossentropy,
    framewise_categorical_crossentropy,
)
from asc_keras.models.saving import load_model
from asc_keras.models.size import DCASE_1B_LIMIT_KB, SizeReport, model_size

__all__ = [
    "BACKBONES",
    "DCASE_1B_LIMIT_KB",
    "Backbone",
    "ConvBlock",
    "FramewiseCategoricalCrossentropy",
    "Norm",
    "SizeReport",
    "clip_head",
    "conv_block",
    "conv_stack",
    "frame_head",
    "framewise_categorical_crossentropy",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "model_size",
]
