"""Typed, frozen configuration for every stage of asc-keras.

One dataclass per stage; every builder and `run()` takes them explicitly. Only
`asc_keras.flags` builds them from absl flags. Derived values are properties.

Axis convention everywhere: features are `[time, freq]`, batches `[batch, time, freq, channels]`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from types import MappingProxyType

from asc_keras import tasks as tasks_lib

REPRESENTATIONS = ("logmel", "cqt", "gamma", "mfcc")
TASKS = tasks_lib.names()  # the task table's names: 1a, 1b, tau2022, custom


def _check_representations(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in REPRESENTATIONS]
    if unknown or not names:
        raise ValueError(f"unknown or empty representations {names!r}; known: {REPRESENTATIONS}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate representations in {names!r}")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes the four spectrograms (SPEC.md section 2).

    Every field changes the numbers, so every field goes into `settings_hash`.
    """

    representations: tuple[str, ...] = REPRESENTATIONS
    sample_rate: int = 44100
    clip_seconds: float = 10.0
    n_fft: int = 2048
    hop_length: int = 512
    logmel_bins: int = 40
    logmel_fmin: float = 0.0
    logmel_fmax: float = 22050.0
    cqt_bins: int = 64
    cqt_fmin: float = 220.0
    cqt_bins_per_octave: int = 12
    gamma_bins: int = 64
    gamma_fmin: float = 20.0
    gamma_fmax: float = 22050.0
    mfcc_bins: int = 40
    mfcc_mels: int = 128
    top_db: float | None = None
    dtype: str = "float32"  # storage dtype of the TFRecords: float32 | float16

    def __post_init__(self):
        _check_representations(self.representations)
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"feature dtype must be float32 or float16, got {self.dtype!r}")

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def num_frames(self) -> int:
        """Frames of a `center=True` STFT of a fixed-length clip (862 at the paper settings)."""
        return 1 + self.num_samples // self.hop_length

    def bins(self, name: str) -> int:
        return {
            "logmel": self.logmel_bins,
            "cqt": self.cqt_bins,
            "gamma": self.gamma_bins,
            "mfcc": self.mfcc_bins,
        }[name]

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """`{representation: (time, freq)}` for the stored representations."""
        return {n: (self.num_frames, self.bins(n)) for n in self.representations}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["representations"] = list(self.representations)
        return d

    def settings_hash(self, *extra: str) -> str:
        """Short stable hash of every setting (plus `extra` strings, e.g. a dataset fingerprint)."""
        payload = json.dumps([self.to_dict(), list(extra)], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


FINGERPRINTS = ("stat", "sha256")
ENGINES = ("local", "beam")  # who computes missing shards: worker processes, or Apache Beam


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the dataset and its precomputed features live, and how they are read.

    `classes` is the task's class list: filled from the task table for 1a, 1b and tau2022; a
    `custom` task takes the sorted labels of its training list (`asc_keras.data.dcase.
    resolve_classes`). `train_csv` may name any list of the folder, e.g. a TAU 2022 train subset
    `split_setup/split25.csv` (labels from meta.csv when it has only `filename`).
    """

    data_dir: str = ""
    features_dir: str = ""
    task: str = "1a"
    classes: tuple[str, ...] = ()
    train_csv: str = "evaluation_setup/fold1_train.csv"
    eval_csv: str = "evaluation_setup/fold1_evaluate.csv"
    num_workers: int = 2
    num_shards: int = 1  # machines splitting one dataset
    shard_index: int = 0
    clips_per_shard: int = 256
    skip_bad_files: bool = False
    splits: tuple[str, ...] = ("train", "evaluate")  # what prepare.py computes
    # A clip whose length differs from clip_seconds by more than this fraction is an error
    # (1 s for the 10 s DCASE clips).
    max_length_error: float = 0.1
    # How a rerun notices changed audio: "stat" (size, modification time) or "sha256" (content).
    fingerprint: str = "stat"
    # "local": --num_workers processes on this machine; "beam": an Apache Beam pipeline run with
    # `beam_pipeline_options` (empty: the DirectRunner with num_workers processes).
    engine: str = "local"
    beam_pipeline_options: str = ""

    def __post_init__(self):
        spec = tasks_lib.get(self.task)
        object.__setattr__(self, "classes", tuple(self.classes or spec.classes or ()))
        if spec.classes is not None and self.classes != spec.classes:
            raise ValueError(f"task {self.task} has the classes {spec.classes}, got {self.classes}")
        if self.classes and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"duplicate classes in {self.classes}")
        if self.fingerprint not in FINGERPRINTS:
            raise ValueError(f"fingerprint must be one of {FINGERPRINTS}, got {self.fingerprint!r}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index {self.shard_index} not in [0, {self.num_shards})")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.engine == "beam" and self.num_shards > 1:
            raise ValueError(
                "--num_shards splits the local engine over machines by hand; with "
                "--engine=beam the runner spreads the work (drop --num_shards)"
            )

    @property
    def task_spec(self) -> tasks_lib.Task:
        """The task table's row with this config's classes (a `custom` task's once read)."""
        spec = tasks_lib.get(self.task)
        if not self.classes:
            raise ValueError(
                f"task {self.task}: the classes are not read yet (use "
                "asc_keras.data.dcase.resolve_classes)"
            )
        return spec.with_classes(self.classes)


def frozen_mapping(d: Mapping) -> Mapping:
    """A read-only mapping for dataclass fields."""
    return MappingProxyType(dict(d))


# ---------------------------------------------------------------------------------------------
# Networks, fusions and strategies (SPEC.md sections 3 and 4).

BACKBONES = ("1a", "1b")
FUSIONS = ("single", "ef", "mf", "lf", "spsmr")
STRATEGIES = ("spsmf", "spsmt")
_SPSMF_FUSIONS = ("single", "ef", "spsmr")


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

    backbone: str = "1a"
    inputs: tuple[str, ...] = ("logmel",)
    input_bins: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: frozen_mapping({"logmel": 40})
    )
    num_frames: int = 862
    num_classes: int = 10
    fusion: str = "single"
    strategies: tuple[str, ...] = ()
    num_bands: int = 5
    band_width: int = 16
    ef_bins: int = 64
    width: float = 1.0
    dropout: float = 0.5
    band: int | None = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        _check_representations(self.inputs)
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
        if "spsmf" in self.strategies and self.fusion not in _SPSMF_FUSIONS:
            raise ValueError(
                f"SPSMF cuts one spectrogram into bands: it combines with {_SPSMF_FUSIONS}, "
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

    def parts(self) -> tuple[ModelPart, ...]:
        """The independently trained networks of this model, in output order.

        Each SPSMR member (one per input) or single/EF/MF/LF network is a base; 'spsmf' turns a
        base into `num_bands` band parts, 'spsmt' makes it a frame-level part; with both, the
        two systems are averaged with equal weight.
        """
        if self.fusion == "spsmr":
            bases = [dataclasses.replace(self, fusion="single", inputs=(n,)) for n in self.inputs]
        else:
            bases = [self]
        systems = list(self.strategies) or ["plain"]
        specs = []  # (config, kind, weight)
        for system in systems:
            for base in bases:
                if system == "spsmf" and self.band is None:
                    for k in range(self.num_bands):
                        cfg = dataclasses.replace(base, strategies=("spsmf",), band=k)
                        w = 1.0 / (len(systems) * len(bases) * self.num_bands)
                        specs.append((cfg, "clip", w))
                else:
                    strategies = (system,) if system != "plain" else ()
                    cfg = dataclasses.replace(base, strategies=strategies)
                    kind = "frames" if system == "spsmt" else "clip"
                    specs.append((cfg, kind, 1.0 / (len(systems) * len(bases))))
        parts = []
        for cfg, kind, weight in specs:
            suffix = "frames" if kind == "frames" else "probs"
            output = suffix if len(specs) == 1 else f"{cfg.prefix}_{suffix}"
            parts.append(ModelPart(cfg.prefix, cfg, weight, kind, output))
        return tuple(parts)

    def part(self, name: str) -> ModelConfig:
        """The single-part config of the part called `name` (see `parts()`)."""
        found = {p.name: p.config for p in self.parts()}
        if name not in found:
            raise ValueError(f"no part {name!r} in this model; parts: {sorted(found)}")
        return found[name]

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
    parts = {json.dumps(p.config.to_dict(), sort_keys=True): p.weight for p in whole.parts()}
    keys = [json.dumps(c.to_dict(), sort_keys=True) for c in configs]
    if sorted(keys) != sorted(parts) or len(set(keys)) != len(keys):
        names = ", ".join(p.name for p in whole.parts())
        raise ValueError(
            f"the runs are not exactly the {len(parts)} parts of one model "
            f"({names}); give their fusion weights explicitly"
        )
    return [parts[k] for k in keys]


# Values of fields that a run recorded before the field existed had (Keras's own defaults).
LEGACY_MODEL_FIELDS = MappingProxyType({"bn_momentum": 0.99, "bn_epsilon": 1e-3})
LEGACY_TRAIN_FIELDS = MappingProxyType(
    {"adam_epsilon": 1e-7, "recalibrate_bn": 0, "adam_update": "keras"}
)


# ---------------------------------------------------------------------------------------------
# Evaluation (SPEC.md section 6).

EVAL_SPLITS = ("train", "evaluate", "test")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `evaluate.py` scores and where it writes.

    `model_dirs` are training runs; several are fused (mean of probabilities, e.g. four
    single-representation runs = SPSMR). `tflite` (one or more files, each scored on its own and
    compared with the first, e.g. float vs int8) or `saved_model` evaluates exported artifacts
    of the one model_dir instead of its `model.keras`. `out_dir` defaults to
    `<model_dirs[0]>/eval_<split>` (`eval_<split>_tflite` / `_saved_model` for exports);
    `submission` writes a DCASE submission file.
    """

    model_dirs: tuple[str, ...] = ()
    split: str = "evaluate"
    batch_size: int = 64
    out_dir: str = ""
    tflite: tuple[str, ...] = ()
    saved_model: str = ""
    submission: str = ""
    # One non-negative weight per model_dir for the fusion (default: equal, the paper's mean).
    # Separately trained parts of SPSMR + SPSMF + SPSMT average two systems: 1/40 for each of
    # the 20 band runs and 1/8 for each of the 4 SPSMT runs.
    fusion_weights: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "model_dirs", tuple(self.model_dirs))
        object.__setattr__(self, "tflite", tuple(self.tflite))
        object.__setattr__(self, "fusion_weights", tuple(float(w) for w in self.fusion_weights))
        if self.fusion_weights and (
            len(self.fusion_weights) != len(self.model_dirs)
            or min(self.fusion_weights) < 0
            or sum(self.fusion_weights) <= 0
        ):
            raise ValueError(
                f"fusion_weights needs {len(self.model_dirs)} non-negative weights "
                f"(one per model_dir), got {list(self.fusion_weights)}"
            )
        if not self.model_dirs:
            raise ValueError("at least one model_dir is required")
        if self.split not in EVAL_SPLITS:
            raise ValueError(f"split must be one of {EVAL_SPLITS}, got {self.split!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.tflite and self.saved_model:
            raise ValueError("give either tflite files or a saved_model, not both")
        if (self.tflite or self.saved_model) and len(self.model_dirs) != 1:
            raise ValueError(
                "exported artifacts are evaluated with exactly one model_dir "
                f"(for its config and data), got {len(self.model_dirs)}"
            )


# ---------------------------------------------------------------------------------------------
# Training (SPEC.md section 5).

DISTRIBUTIONS = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
ADAM_UPDATES = ("pytorch", "keras")  # asc_keras.training.optimizer.ADAM_CLASSES


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (paper section 4.2) and where the run lives.

    `batch_size` is the global batch (split across replicas). The learning rate is
    `learning_rate * lr_decay_rate ** floor(step / lr_decay_steps)`. `shuffle_buffer` 0 means
    the whole training split. `eval_every` 0 validates only at the end. `adam_epsilon` is
    PyTorch's Adam default (Keras has 1e-7); `adam_update` "pytorch" is PyTorch's Adam update,
    as the authors ran it, "keras" Keras's (epsilon added before the bias correction), which
    runs recorded before the choice existed used. `recalibrate_bn` > 0 replaces every BatchNorm
    layer's moving statistics, after the last step, by their plain average over that many clean
    (un-mixed) training batches, before the final evaluation and the saved model.
    `steps_per_loop` is how many steps run inside one `tf.function` call between two visits of
    the host (0: `auto_steps_per_loop`); a loop also ends at every log, checkpoint and
    validation step and at `train_steps`, so it changes speed, never the result. `precision`
    is the Keras dtype policy (`PRECISIONS`); it is part of the run (a checkpoint resumes only
    under the precision that wrote it).
    """

    model_dir: str = ""
    train_steps: int = 12000
    batch_size: int = 64
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-8
    adam_update: str = "pytorch"
    lr_decay_rate: float = 0.91
    lr_decay_steps: int = 200
    mixup_alpha: float = 0.2
    shuffle_buffer: int = 0
    cache_examples: bool = True
    seed: int = 0
    eval_every: int = 1000
    eval_batch_size: int = 64
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    log_every: int = 50
    distribution: str = "default"
    precision: str = "float32"
    steps_per_loop: int = 0
    jit_compile: bool = False
    deterministic: bool = False
    recalibrate_bn: int = 0

    # Fields a resumed run may change; every other field must match the checkpointed run.
    RESUMABLE_CHANGES = (
        "model_dir",
        "train_steps",
        "eval_every",
        "eval_batch_size",
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "distribution",
        "steps_per_loop",
        "jit_compile",
        "deterministic",
        "recalibrate_bn",
    )
    MAX_AUTO_STEPS_PER_LOOP = 100

    def __post_init__(self):
        for name in (
            "train_steps",
            "batch_size",
            "lr_decay_steps",
            "eval_batch_size",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("shuffle_buffer", "eval_every", "seed", "recalibrate_bn", "steps_per_loop"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0 or not 0 < self.lr_decay_rate <= 1:
            raise ValueError(
                f"need learning_rate > 0 and 0 < lr_decay_rate <= 1, got "
                f"{self.learning_rate}, {self.lr_decay_rate}"
            )
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0, got {self.mixup_alpha}")
        if not self.adam_epsilon > 0:
            raise ValueError(f"adam_epsilon must be positive, got {self.adam_epsilon}")
        if self.adam_update not in ADAM_UPDATES:
            raise ValueError(f"adam_update must be one of {ADAM_UPDATES}, got {self.adam_update!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def mixed_precision(self) -> bool:
        """Whether a mixed (16-bit compute, float32 weights) policy is used."""
        return self.precision != "float32"

    @property
    def loss_scaling(self) -> bool:
        """float16 needs dynamic loss scaling; bfloat16 has float32's exponent range."""
        return self.precision == "mixed_float16"

    @property
    def auto_steps_per_loop(self) -> int:
        """`steps_per_loop`, or when 0 the greatest common divisor of the log, checkpoint and
        validation cadences, capped at `MAX_AUTO_STEPS_PER_LOOP` (50 for the defaults)."""
        if self.steps_per_loop:
            return self.steps_per_loop
        k = math.gcd(self.log_every, self.checkpoint_every, self.eval_every)
        return max(1, min(k, self.MAX_AUTO_STEPS_PER_LOOP))

    def learning_rate_at(self, step: int) -> float:
        """The staircase learning rate after `step` optimizer updates."""
        return self.learning_rate * self.lr_decay_rate ** (step // self.lr_decay_steps)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Export (SPEC.md section 7).


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What `export.py` exports from a training run, and how strictly it is checked.

    `calibration_examples` clips of the training split (seeded by `calibration_seed`, stratified
    by class) calibrate the int8 model; `parity_examples` clips (of the evaluate split when it
    was precomputed, else the training split) check every artifact against the Keras model.
    Tolerances are the largest allowed absolute difference of any output value (probabilities):
    `float_tolerance` for the SavedModel and float TFLite, `int8_tolerance` for the int8 TFLite,
    `audio_tolerance` for the audio-in models against Keras on librosa features.
    """

    model_dir: str = ""
    export_dir: str = ""
    overwrite: bool = False
    int8: bool = True
    audio_frontend: bool = True
    calibration_examples: int = 200
    calibration_seed: int = 0
    parity_examples: int = 16
    float_tolerance: float = 1e-5
    int8_tolerance: float = 0.1
    audio_tolerance: float = 1e-3

    def __post_init__(self):
        if not self.model_dir or not self.export_dir:
            raise ValueError("model_dir and export_dir are required")
        if self.calibration_examples < 1 or self.parity_examples < 1:
            raise ValueError(
                f"calibration_examples ({self.calibration_examples}) and "
                f"parity_examples ({self.parity_examples}) must be positive"
            )
        for name in ("float_tolerance", "int8_tolerance", "audio_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
