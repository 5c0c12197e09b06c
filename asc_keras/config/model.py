"""ModelConfig: which network (paper Table 1), fusion and processing strategies to build.

How a model splits into independently trained parts, and the fusion weights of separately
trained parts, are planned by `asc_keras.strategies.parts`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from asc_keras.config.features import REPRESENTATIONS, check_representations
from asc_keras.config.settings import setting

BACKBONES = ("1a", "1b")
FUSIONS = ("single", "ef", "mf", "lf", "spsmr")
STRATEGIES = ("spsmf", "spsmt")
SPSMF_FUSIONS = ("single", "ef", "spsmr")  # the fusions SPSMF's bands combine with

# Values of fields that a run recorded before the field existed had (Keras's own defaults).
LEGACY_MODEL_FIELDS = MappingProxyType({"bn_momentum": 0.99, "bn_epsilon": 1e-3})


def frozen_mapping(d: Mapping) -> Mapping:
    """A read-only mapping for dataclass fields."""
    return MappingProxyType(dict(d))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network (paper Table 1), fusion and processing strategies (paper section 2) to build.

    Inputs are named after the representations, each `[num_frames, bins]`. `fusion` says how
    several representations meet: 'single' (one), 'ef' (stacked as channels), 'mf' (after the
    first conv block), 'lf' (after the last conv block) or 'spsmr' (one CNN each, probabilities
    averaged). `strategies` adds 'spsmf' (one CNN per frequency band, probabilities averaged)
    and/or 'spsmt' (frame-wise classifier, frame probabilities averaged); with both, the SPSMF
    system and the SPSMT system are averaged (paper: SPSMR + SPSMF + SPSMT).

    `band` builds one SPSMF band alone (an independent part trained as a separate run).
    `width` scales conv filters and hidden units (1.0 = the paper; tests use small widths).
    `bn_momentum` / `bn_epsilon` are Keras's BatchNorm momentum (weight of the old moving
    average) and epsilon; the defaults are PyTorch's (momentum 0.1 there), which produced the
    paper's numbers. Runs recorded before these fields existed used Keras's 0.99 / 1e-3
    (`LEGACY_MODEL_FIELDS`).
    """

    backbone: str = setting(
        "1a",
        "CNN of paper Table 1: 1a (VGG-style, 18.9 MiB) or 1b (tiny, under 500 KB); default: the "
        "task's (1a for 1a and custom, 1b for 1b and tau2022).",
        choices=BACKBONES,
        flag_default=None,
    )
    inputs: tuple[str, ...] = setting(
        ("logmel",),
        "Representations the model reads (a subset of --representations): logmel,cqt,gamma,mfcc.",
        flag="model_inputs",
        choices=REPRESENTATIONS,
    )
    input_bins: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: frozen_mapping({"logmel": 40})
    )
    num_frames: int = 862
    num_classes: int = 10
    fusion: str = setting(
        "single",
        "How several representations meet: single (one input), ef (stacked as channels), "
        "mf (after the first conv block), lf (after the last conv block), spsmr (one CNN each, "
        "probabilities averaged).",
        choices=FUSIONS,
    )
    strategies: tuple[str, ...] = setting(
        (),
        "Processing strategies, any of spsmf (one CNN per frequency band) and spsmt (frame-wise "
        "classifier); empty for none.",
        choices=STRATEGIES,
    )
    num_bands: int = setting(5, "SPSMF frequency bands.", lower_bound=1)
    band_width: int = setting(16, "SPSMF bins per band.", lower_bound=1)
    ef_bins: int = setting(64, "EF: bins every representation is resized to.", lower_bound=1)
    width: float = setting(
        1.0, "Multiplier of conv filters and hidden units (1.0 = the paper).", lower_bound=1e-3
    )
    dropout: float = setting(
        0.5, "Dropout between the fully connected layers.", lower_bound=0.0, upper_bound=0.99
    )
    band: int | None = None
    bn_momentum: float = setting(
        0.9,
        "BatchNorm momentum in Keras's convention (weight of the old moving average); 0.9 = "
        "PyTorch's 0.1, as in the authors' implementation.",
        lower_bound=0.0,
        upper_bound=0.999,
    )
    bn_epsilon: float = setting(1e-5, "BatchNorm epsilon (PyTorch's default).", lower_bound=1e-12)

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        check_representations(self.inputs)
        missing = [n for n in self.inputs if n not in self.input_bins]
        if missing:
            raise ValueError(f"input_bins lacks {missing} (inputs {self.inputs})")
        bins = frozen_mapping({n: int(self.input_bins[n]) for n in self.inputs})
        object.__setattr__(self, "input_bins", bins)
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies {self.strategies!r}: each once at most, of {STRATEGIES}")
        canonical = tuple(s for s in STRATEGIES if s in self.strategies)
        object.__setattr__(self, "strategies", canonical)
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.fusion == "single" and len(self.inputs) != 1:
            raise ValueError(f"fusion 'single' takes one input, got {self.inputs}")
        if self.fusion != "single" and len(self.inputs) < 2:
            raise ValueError(f"fusion {self.fusion!r} needs two or more inputs, got {self.inputs}")
        if "spsmf" in self.strategies and self.fusion not in SPSMF_FUSIONS:
            raise ValueError(
                f"SPSMF cuts one spectrogram into bands: it combines with {SPSMF_FUSIONS}, "
                f"not with fusion {self.fusion!r}"
            )
        if self.band is not None:
            if self.strategies != ("spsmf",) or self.fusion not in ("single", "ef"):
                raise ValueError(
                    "band selects one SPSMF band of a single or EF model: it needs "
                    f"strategies=('spsmf',) and fusion single/ef, got {self.strategies}, "
                    f"{self.fusion!r}"
                )
            if not 0 <= self.band < self.num_bands:
                raise ValueError(f"band {self.band} not in [0, {self.num_bands})")
        for name in ("num_frames", "num_bands", "band_width", "ef_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if not self.width > 0:
            raise ValueError(f"width must be positive, got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.bn_momentum < 1.0 or not self.bn_epsilon > 0:
            raise ValueError(
                f"need 0 <= bn_momentum < 1 and bn_epsilon > 0, got "
                f"{self.bn_momentum}, {self.bn_epsilon}"
            )

    def bins(self, name: str) -> int:
        return self.input_bins[name]

    @property
    def input_shapes(self) -> dict[str, tuple[int, int]]:
        """`{representation: (time, freq)}` of the model's inputs."""
        return {n: (self.num_frames, self.bins(n)) for n in self.inputs}

    @property
    def prefix(self) -> str:
        """Layer-name prefix of a single-part model: `logmel`, `ef`, `mf`, `lf`, `cqt_band2`."""
        base = self.inputs[0] if self.fusion == "single" else self.fusion
        return base if self.band is None else f"{base}_band{self.band}"

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(inputs=list(self.inputs), input_bins=dict(self.input_bins))
        d.update(strategies=list(self.strategies))
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelConfig:
        """The inverse of `to_dict` (config.json's model_config); unknown keys are an error."""
        d = dict(d)
        for key in ("inputs", "strategies"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
