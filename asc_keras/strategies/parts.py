"""Part planning: the independently trained networks of a model and their fusion weights.

An SPSMR member (one per input) or a single/EF/MF/LF network is a base; 'spsmf' turns a base
into `num_bands` band parts (paper eq. 4: the mean of the bands), 'spsmt' makes it a frame-level
part (eq. 5: the mean of the frames, inside the part); SPSMR averages its members (eq. 3); with
both strategies the SPSMF system and the SPSMT system are averaged with equal weight.
"""

from __future__ import annotations

import dataclasses
import json

from asc_keras.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class ModelPart:
    """One independently trained network of a model (an SPSMR member, an SPSMF band, ...).

    Attributes:
        name: Part name; layer names of the part start with it (`logmel_band2_block1_conv1`).
        config: A single-part `ModelConfig` that builds this part alone, for a separate run;
            its layer names equal the part's layer names in the full model.
        weight: Fused probabilities are `sum(weight * part probabilities)` over the parts.
        kind: 'clip' (the part outputs `[batch, classes]`) or 'frames' (SPSMT:
            `[batch, frames, classes]`, trained with the mean per-frame loss).
        output: Name of the part's loss output in the full model (`logmel_band2_probs`,
            `cqt_frames`; `probs` or `frames` for a single-part model).
    """

    name: str
    config: ModelConfig
    weight: float
    kind: str
    output: str


def model_parts(cfg: ModelConfig) -> tuple[ModelPart, ...]:
    """The independently trained networks of the model `cfg`, in output order."""
    if cfg.fusion == "spsmr":
        bases = [dataclasses.replace(cfg, fusion="single", inputs=(n,)) for n in cfg.inputs]
    else:
        bases = [cfg]
    systems = list(cfg.strategies) or ["plain"]
    specs = []  # (config, kind, weight)
    for system in systems:
        for base in bases:
            if system == "spsmf" and cfg.band is None:
                for k in range(cfg.num_bands):
                    part_cfg = dataclasses.replace(base, strategies=("spsmf",), band=k)
                    w = 1.0 / (len(systems) * len(bases) * cfg.num_bands)
                    specs.append((part_cfg, "clip", w))
            else:
                strategies = (system,) if system != "plain" else ()
                part_cfg = dataclasses.replace(base, strategies=strategies)
                kind = "frames" if system == "spsmt" else "clip"
                specs.append((part_cfg, kind, 1.0 / (len(systems) * len(bases))))
    parts = []
    for part_cfg, kind, weight in specs:
        suffix = "frames" if kind == "frames" else "probs"
        output = suffix if len(specs) == 1 else f"{part_cfg.prefix}_{suffix}"
        parts.append(ModelPart(part_cfg.prefix, part_cfg, weight, kind, output))
    return tuple(parts)


def model_part(cfg: ModelConfig, name: str) -> ModelConfig:
    """The single-part config of the part of `cfg` called `name` (see `model_parts`)."""
    found = {p.name: p.config for p in model_parts(cfg)}
    if name not in found:
        raise ValueError(f"no part {name!r} in this model; parts: {sorted(found)}")
    return found[name]


def fusion_weights_of_parts(configs: list[ModelConfig]) -> list[float]:
    """The paper's fusion weights of separately trained runs that are the parts of one model.

    Several runs (their single-part configs, e.g. from `--model_part` runs) are recognised as
    the parts of the SPSMR / SPSMF / SPSMT model they make up, and weighted as that model fuses
    them (e.g. 1/40 per band run and 1/8 per SPSMT run of SPSMR + SPSMF + SPSMT; equal weights
    for SPSMR's four CNNs).

    Raises:
        ValueError: The runs are not exactly the parts of one model; the message says why.
    """
    if len(configs) < 2:
        return [1.0] * len(configs)
    first = configs[0]
    inputs = tuple(dict.fromkeys(n for c in configs for n in c.inputs))
    bins = {n: c.bins(n) for c in configs for n in c.inputs}
    strategies = []
    if any(c.band is not None for c in configs):
        strategies.append("spsmf")
    if any("spsmt" in c.strategies for c in configs):
        strategies.append("spsmt")
    fusions = {c.fusion for c in configs}
    base = next(iter(fusions)) if len(fusions) == 1 else None
    fusion = "spsmr" if base == "single" and len(inputs) > 1 else base
    own = {f.name for f in dataclasses.fields(ModelConfig)} - {
        "inputs",
        "input_bins",
        "fusion",
        "strategies",
        "band",
    }
    try:
        if fusion is None:
            raise ValueError(f"fusions {sorted(fusions)}")
        if base == "ef":
            inputs = first.inputs
        whole = dataclasses.replace(
            first,
            inputs=inputs,
            input_bins=bins,
            fusion=fusion,
            strategies=tuple(strategies),
            band=None,
        )
        if any(
            {k: getattr(c, k) for k in own} != {k: getattr(whole, k) for k in own} for c in configs
        ):
            raise ValueError("their settings differ")
    except ValueError as e:
        raise ValueError(
            f"the runs are not the parts of one model ({e}); give their fusion weights explicitly"
        ) from None
    parts = model_parts(whole)
    weights = {json.dumps(p.config.to_dict(), sort_keys=True): p.weight for p in parts}
    keys = [json.dumps(c.to_dict(), sort_keys=True) for c in configs]
    if sorted(keys) != sorted(weights) or len(set(keys)) != len(keys):
        names = ", ".join(p.name for p in parts)
        raise ValueError(
            f"the runs are not exactly the {len(weights)} parts of one model "
            f"({names}); give their fusion weights explicitly"
        )
    return [weights[k] for k in keys]
