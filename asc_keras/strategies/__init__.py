"""Fusions (single, EF, MF, LF, SPSMR) and strategies (SPSMF, SPSMT) composed from the backbones.

`build_model(cfg)` is the one entry every script uses; see `asc_keras.strategies.build` for the
input and output names and `loss_outputs` for which outputs are trained. Part planning
(`model_parts`, `model_part`, `fusion_weights_of_parts`, `asc_keras.strategies.parts`) is plain
Python: importing this package loads Keras only when a builder is first used.
"""

from asc_keras.strategies.parts import (
    ModelPart,
    fusion_weights_of_parts,
    model_part,
    model_parts,
)

_LAZY = {
    "assemble_model": "build",
    "build_model": "build",
    "loss_outputs": "build",
    "model_name": "build",
    "band_bounds": "spsmf",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = [
    "ModelPart",
    "assemble_model",
    "band_bounds",
    "build_model",
    "fusion_weights_of_parts",
    "loss_outputs",
    "model_name",
    "model_part",
    "model_parts",
]
