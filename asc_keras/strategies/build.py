"""`build_model(cfg)`: every network, fusion and strategy of the paper as one functional model.

Inputs: one per representation in `cfg.inputs`, named after it, `[batch, num_frames, bins]`.
Outputs (a dict):
- `probs` `[batch, classes]`: the final (fused) probabilities, always.
- A model of one part (single / EF / MF / LF CNN, one SPSMF band) with SPSMT also has `frames`
  `[batch, t, classes]`, the frame probabilities whose mean is `probs`.
- A model of several independent parts (`model_parts(cfg)`: SPSMR members, SPSMF bands, ...) also
  has one output per part: `<part>_probs` `[batch, classes]`, or `<part>_frames`
  `[batch, t, classes]` for an SPSMT part. `probs` is then the mean over the parts (paper eqs.
  3, 4); with SPSMF and SPSMT together, the mean of the SPSMF system (`spsmf_mean`) and the SPSMT
  system (`spsmt_mean`).

`loss_outputs(model)` names the outputs that get a loss. A part built alone
(`model_part(cfg, name)`, `asc_keras.strategies.parts`) has the same weight-layer names as inside
the full model, so separately trained parts are fused into one model by `assemble_model`.
Initial weights are seeded per layer from `seed` and the layer name
(`asc_keras.models.initializers`): every part starts from its own weights, the same whether it
is built alone or inside the full model.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras

from asc_keras.config import ModelConfig
from asc_keras.models.backbones import BACKBONES, conv_stack
from asc_keras.models.heads import clip_head, frame_head
from asc_keras.strategies.fusion import (
    SharedInputs,
    late_fusion,
    middle_fusion,
    norm,
    spectrogram,
)
from asc_keras.strategies.parts import ModelPart, model_parts
from asc_keras.strategies.spsmf import cut_band


def _feature_map(cfg: ModelConfig, shared: SharedInputs, *, seed: int):
    """Final conv feature map `[batch, t, f, c]` of a single-part config."""
    if cfg.fusion == "mf":
        return middle_fusion(cfg, shared, seed=seed)
    if cfg.fusion == "lf":
        return late_fusion(cfg, shared, seed=seed)
    x = spectrogram(cfg, shared)  # [b, T, F, c]
    if cfg.band is not None:
        x = cut_band(
            x,
            band=cfg.band,
            num_bands=cfg.num_bands,
            width=cfg.band_width,
            name=f"{cfg.prefix}_cut",
        )  # [b, T, band_width, c]
    return conv_stack(
        x, BACKBONES[cfg.backbone], width=cfg.width, prefix=cfg.prefix, seed=seed, norm=norm(cfg)
    )


def _part_outputs(part: ModelPart, shared: SharedInputs, *, alone: bool, seed: int):
    """`(probs, frames or None)` of one part; output layers named for a full or lone model."""
    cfg = part.config
    x = _feature_map(cfg, shared, seed=seed)
    head_args = dict(
        num_classes=cfg.num_classes,
        width=cfg.width,
        dropout=cfg.dropout,
        prefix=cfg.prefix,
        seed=seed,
    )
    backbone = BACKBONES[cfg.backbone]
    if part.kind == "frames":
        frames_name = "frames" if alone else part.output
        probs_name = "probs" if alone else f"{part.name}_frame_mean"
        frames, probs = frame_head(
            x, backbone, frames_name=frames_name, probs_name=probs_name, **head_args
        )
        return probs, frames
    probs_name = "probs" if alone else part.output
    return clip_head(x, backbone, probs_name=probs_name, **head_args), None


def _system(part: ModelPart) -> str:
    """Which averaged system a part belongs to: 'spsmf' (a band), 'spsmt' or 'plain'."""
    if part.config.band is not None:
        return "spsmf"
    return "spsmt" if part.kind == "frames" else "plain"


def _mean(tensors: list, *, name: str):
    if len(tensors) == 1:
        return tensors[0]
    return keras.layers.Average(name=name, dtype="float32")(tensors)


def model_name(cfg: ModelConfig) -> str:
    """E.g. `asc_1a_spsmr_spsmf_spsmt`, `asc_1b_ef_spsmt`, `asc_1a_logmel_band2_spsmf`."""
    return "_".join(["asc", cfg.backbone, cfg.prefix, *cfg.strategies])


def build_model(cfg: ModelConfig, *, seed: int = 0) -> keras.Model:
    """The functional model of `cfg` (see the module docstring for inputs and outputs).

    Args:
        cfg: Backbone, inputs and their bins, fusion, strategies and sizes.
        seed: The run's seed. A layer's initial weights (and dropout masks) depend on this seed
            and the layer's name only, never on global random state.

    Returns:
        A freshly initialised, uncompiled `keras.Model`.

    Raises:
        ValueError: For combinations the paper does not define (checked by `ModelConfig`) and
            SPSMF bands that cannot cover the spectrogram.
    """
    inputs = {
        n: keras.Input(shape=cfg.input_shapes[n], name=n, dtype="float32") for n in cfg.inputs
    }
    shared = SharedInputs(cfg, inputs)
    parts = model_parts(cfg)
    if len(parts) == 1:
        probs, frames = _part_outputs(parts[0], shared, alone=True, seed=seed)
        outputs = {"probs": probs} if frames is None else {"probs": probs, "frames": frames}
        return keras.Model(inputs=inputs, outputs=outputs, name=model_name(cfg))

    part_outputs, systems = {}, {}
    for part in parts:
        probs, frames = _part_outputs(part, shared, alone=False, seed=seed)
        part_outputs[part.output] = probs if frames is None else frames
        systems.setdefault(_system(part), []).append(probs)
    if len(systems) == 1:
        fused = _mean(next(iter(systems.values())), name="probs")
    else:
        means = [_mean(ps, name=f"{system}_mean") for system, ps in systems.items()]
        fused = keras.layers.Average(name="probs", dtype="float32")(means)
    return keras.Model(
        inputs=inputs, outputs={"probs": fused, **part_outputs}, name=model_name(cfg)
    )


def loss_outputs(model: keras.Model) -> dict[str, str]:
    """Which outputs of `model` get a loss, and which kind: `{output_name: 'clip' | 'frames'}`.

    Every part output if the model has any (`<part>_probs` -> 'clip', `<part>_frames` and a lone
    SPSMT model's `frames` -> 'frames'), otherwise `{'probs': 'clip'}`. 'clip' outputs take the
    categorical cross-entropy against the clip labels `[batch, classes]`; 'frames' outputs take
    `framewise_categorical_crossentropy` against the same labels.
    """
    names = [n for n in model.output_names if n != "probs"]
    if not names:
        return {"probs": "clip"}
    return {n: "frames" if n == "frames" or n.endswith("_frames") else "clip" for n in names}


def assemble_model(cfg: ModelConfig, part_models: Mapping[str, keras.Model]) -> keras.Model:
    """The full model of `cfg` with the weights of separately trained parts.

    Args:
        cfg: The full model config.
        part_models: `{part name: model built from model_part(cfg, name)}` for every part of `cfg`.

    Returns:
        `build_model(cfg)` with every weight copied by layer name from its part's model.

    Raises:
        ValueError: If a part is missing or a weight layer of the full model is not covered.
    """
    model = build_model(cfg)
    names = [p.name for p in model_parts(cfg)]
    missing = [n for n in names if n not in part_models]
    if missing:
        raise ValueError(f"no trained model for parts {missing}")
    copied = set()
    for name in names:
        for layer in part_models[name].layers:
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())
                copied.add(layer.name)
    uncovered = [layer.name for layer in model.layers if layer.weights and layer.name not in copied]
    if uncovered:
        raise ValueError(f"layers without trained weights: {uncovered}")
    return model
