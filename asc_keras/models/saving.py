"""Loading saved `.keras` models in safe mode.

Every custom object of asc-keras is registered when `asc_keras.models` is imported; `load_model`
makes sure of that and never turns safe mode off.
"""

from __future__ import annotations

import keras

from asc_keras.models import layers as _layers  # noqa: F401  (registers custom objects)
from asc_keras.models import losses as _losses  # noqa: F401
from asc_keras.models import qat_layers as _qat_layers  # noqa: F401


def load_model(path: str, *, compile: bool = True) -> keras.Model:
    """`keras.saving.load_model(path, safe_mode=True)` with asc-keras objects registered."""
    return keras.saving.load_model(path, compile=compile, safe_mode=True)
