"""Fusions (single, EF, MF, LF, SPSMR) and strategies (SPSMF, SPSMT) composed from the backbones.

`build_model(cfg)` is the one entry every script uses; see `asc_keras.strategies.build` for the
input and output names and `loss_outputs` for which outputs are trained.
"""

from asc_keras.strategies.build import assemble_model, build_model, loss_outputs, model_name
from asc_keras.strategies.spsmf import band_bounds

__all__ = ["assemble_model", "band_bounds", "build_model", "loss_outputs", "model_name"]
