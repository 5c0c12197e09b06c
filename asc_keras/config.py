"""Typed, frozen configuration for every stage of asc-keras.

One dataclass per stage; every builder and `run()` takes them explicitly. Only
`asc_keras.flags` builds them from absl flags. Derived values are properties.

Axis convention everywhere: features are `[time, freq]`, batches `[batch, time, freq, channels]`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType

REPRESENTATIONS = ("logmel", "cqt", "gamma", "mfcc")
TASKS = ("1a", "1b")


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


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the dataset and its precomputed features live, and how they are read."""

    data_dir: str = ""
    features_dir: str = ""
    task: str = "1a"
    train_csv: str = "evaluation_setup/fold1_train.csv"
    eval_csv: str = "evaluation_setup/fold1_evaluate.csv"
    num_workers: int = 2
    num_shards: int = 1  # machines splitting one dataset
    shard_index: int = 0
    clips_per_shard: int = 256
    skip_bad_files: bool = False
    max_length_error_seconds: float = 1.0  # a clip shorter/longer than 10 s by more is an error

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index {self.shard_index} not in [0, {self.num_shards})")


def frozen_mapping(d: Mapping) -> Mapping:
    """A read-only mapping for dataclass fields."""
    return MappingProxyType(dict(d))
