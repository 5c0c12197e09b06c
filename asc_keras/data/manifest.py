"""The manifest of a precomputed features folder: what is in it and how to read it back.

A features folder `<features_dir>/<settings hash>/` holds sharded TFRecords
(`<split>-SSSSS-of-NNNNN.tfrecord`, schema in `asc_keras.data.schema`) and `manifest.json`:

    {
      "format_version": 1,
      "feature_code_version": 2,         # asc_keras.features.FEATURE_CODE_VERSION that made them
      "library_versions": {"gammatone": "1.0.3", "librosa": "0.11.0", "numpy": ...,
                           "scipy": ..., "soxr": ...},   # asc_keras.data.library_versions
      "task": "1b", "classes": [...],
      "feature_config": {...FeatureConfig fields...},
      "dataset": {"data_dir": ..., "fingerprint": ...},
      "dtype": "float32",
      "shapes": {"logmel": [862, 64], ...},                      # [time, freq]
      "splits": {"train": {"num_examples": N, "shards": ["train-00000-of-00004.tfrecord", ...],
                           "files": ["audio/...wav", ...]}, "evaluate": {...}, "test": {...}},
      "normalization": {"logmel": {"mean": [F floats], "std": [F floats]}, ...},  # train only
      "skipped": [{"filename": "audio/x.wav", "reason": "...", "split": "train"}]
    }

It holds no timings or host names: two runs over the same data write the same bytes (with the
same library versions).

Features made by other feature code or other library versions than this environment's are
refused by `Manifest.check_compatible` (what evaluate and export, which cannot recompute them,
check); `precompute.ensure_features` recomputes them instead where it can. A manifest without
`library_versions` (written before they were recorded) counts as made with unknown versions.

`load_manifest(path)` reads and checks it; `write_manifest` writes it atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

import numpy as np

from asc_keras import atomic
from asc_keras.config import FeatureConfig
from asc_keras.data import library_versions as versions_lib
from asc_keras.errors import AscError
from asc_keras.features import FEATURE_CODE_VERSION

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


class ManifestError(AscError, ValueError):
    """A features folder that is missing, incomplete or does not match the config."""


class StaleFeaturesError(ManifestError):
    """Features made with other feature library versions, where they cannot be recomputed."""


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    name: str
    num_examples: int
    shards: tuple[str, ...]  # file names relative to the features folder
    files: tuple[str, ...]  # clip file names (relative to the dataset folder), record order


@dataclasses.dataclass(frozen=True)
class Manifest:
    path: str  # the features folder
    task: str
    classes: tuple[str, ...]
    feature_config: FeatureConfig
    dtype: str
    shapes: Mapping[str, tuple[int, int]]  # {representation: (time, freq)}
    splits: Mapping[str, SplitInfo]
    normalization: Mapping[str, Mapping[str, np.ndarray]]  # {rep: {'mean': [F], 'std': [F]}}
    skipped: tuple[Mapping[str, str], ...] = ()
    dataset: Mapping[str, str] = dataclasses.field(default_factory=dict)
    feature_code_version: int = FEATURE_CODE_VERSION
    # {library: version} that computed the features; None: not recorded (unknown versions)
    library_versions: Mapping[str, str] | None = dataclasses.field(
        default_factory=versions_lib.current
    )

    def split(self, name: str) -> SplitInfo:
        if name not in self.splits:
            raise ManifestError(
                f"{os.path.join(self.path, MANIFEST_NAME)}: no split {name!r} "
                f"(has {sorted(self.splits)})"
            )
        return self.splits[name]

    def shard_paths(self, split: str) -> list[str]:
        """Absolute paths of the split's TFRecord shards, in order."""
        return [os.path.join(self.path, s) for s in self.split(split).shards]

    def check_compatible(self, feature_cfg: FeatureConfig, task: str, representations=None) -> None:
        """Raise ManifestError unless these features were made with `feature_cfg` for `task`.

        `representations` (default: all of feature_cfg's) must all be stored.
        """
        where = os.path.join(self.path, MANIFEST_NAME)
        if self.feature_code_version != FEATURE_CODE_VERSION:
            raise ManifestError(
                f"{where}: features made by feature code version {self.feature_code_version}, "
                f"this code is version {FEATURE_CODE_VERSION}; precompute them again"
            )
        stale = versions_lib.difference(self.library_versions, versions_lib.current())
        if stale:
            raise StaleFeaturesError(
                f"{where}: features {stale}; precompute them again with these libraries"
            )
        if task != self.task:
            raise ManifestError(f"{where}: features are for task {self.task}, config wants {task}")
        mine = self.feature_config.to_dict()
        theirs = feature_cfg.to_dict()
        mine.pop("representations")
        theirs.pop("representations")
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        if diff:
            pairs = ", ".join(f"{k}={mine[k]!r} (config {theirs.get(k)!r})" for k in diff)
            raise ManifestError(f"{where}: feature settings differ from the config: {pairs}")
        wanted = tuple(representations or feature_cfg.representations)
        missing = [r for r in wanted if r not in self.shapes]
        if missing:
            raise ManifestError(f"{where}: representations {missing} were not precomputed")


def manifest_to_dict(m: Manifest) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "feature_code_version": m.feature_code_version,
        "library_versions": None if m.library_versions is None else dict(m.library_versions),
        "task": m.task,
        "classes": list(m.classes),
        "feature_config": m.feature_config.to_dict(),
        "dataset": dict(m.dataset),
        "dtype": m.dtype,
        "shapes": {k: list(v) for k, v in m.shapes.items()},
        "splits": {
            k: {"num_examples": s.num_examples, "shards": list(s.shards), "files": list(s.files)}
            for k, s in m.splits.items()
        },
        "normalization": {
            rep: {k: np.asarray(v, dtype=np.float64).tolist() for k, v in stats.items()}
            for rep, stats in m.normalization.items()
        },
        "skipped": [dict(s) for s in m.skipped],
    }


# Every JSON record of a features folder is written through this name (`asc_keras.atomic`).


def write_manifest(m: Manifest) -> str:
    """Write `m` to `<m.path>/manifest.json` atomically, unless the file already says the same
    (a complete folder is only read: it may be a read-only mount); returns the file path.

    A manifest that differs only in the dataset's path (another machine mounts the dataset
    elsewhere) is rewritten where the folder is writable and kept as it is where not.
    """
    path = os.path.join(m.path, MANIFEST_NAME)
    new = json.loads(json.dumps(manifest_to_dict(m)))  # as it reads back
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = None  # none yet, or unreadable: written below
    if old == new:
        return path
    only_path = (
        isinstance(old, dict)
        and isinstance(old.get("dataset"), dict)
        and old == dict(new, dataset=dict(new["dataset"], data_dir=old["dataset"].get("data_dir")))
    )
    os.makedirs(m.path, exist_ok=True)
    try:
        atomic.write_json(path, new)
    except OSError:
        if not only_path:
            raise
    return path


def load_manifest(features_path: str) -> Manifest:
    """Read `<features_path>/manifest.json`; raises ManifestError with a one-line reason."""
    path = os.path.join(features_path, MANIFEST_NAME)
    if not os.path.exists(path):
        raise ManifestError(f"{path}: no manifest (features not precomputed, or interrupted)")
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: unreadable manifest ({e})") from None
    if d.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: format_version {d.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    fc = dict(d["feature_config"])
    fc["representations"] = tuple(fc["representations"])
    return Manifest(
        path=features_path,
        task=d["task"],
        classes=tuple(d["classes"]),
        feature_config=FeatureConfig(**fc),
        dtype=d["dtype"],
        shapes={k: tuple(v) for k, v in d["shapes"].items()},
        splits={
            k: SplitInfo(
                name=k,
                num_examples=int(s["num_examples"]),
                shards=tuple(s["shards"]),
                files=tuple(s.get("files", ())),
            )
            for k, s in d["splits"].items()
        },
        normalization={
            rep: {k: np.asarray(v, dtype=np.float32) for k, v in stats.items()}
            for rep, stats in d.get("normalization", {}).items()
        },
        skipped=tuple(d.get("skipped", ())),
        dataset=d.get("dataset", {}),
        feature_code_version=int(d.get("feature_code_version", 0)),
        library_versions=d.get("library_versions"),
    )
