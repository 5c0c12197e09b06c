"""A training run's folder: its layout, its config record, and the one reader of it.

model_dir layout (written by `asc_keras.training.trainer`, read by evaluation, export, predict and
the reproduction tool; this module sits below all of them, so every import points backwards):

    config.json          task, classes, feature/model/train configs (what the run is), and
                         with a teacher its file's absolute path and sha256 (`teacher`)
    flags.txt            the fully resolved flags (`--flagfile=model_dir/flags.txt` replays it)
    normalization.json   {rep: {'mean': [F], 'std': [F]}} of the training split
    checkpoints/         ckpt-<step>.{index,data-*} + `checkpoint` (tf.train.CheckpointManager)
    train/, eval/        TensorBoard event files
    model.keras          the final model (normalized features in), safe_mode loadable
    metrics.json, confusion.png, devices.png, predictions.tsv, report.txt   final evaluation
    train.lock           while a training process runs: its pid and host (`training.lock`)

`run_record(...)` builds config.json and `read_run(model_dir)` reads a run back; runs recorded
before a field existed read with the value they were trained with (`with_legacy_fields`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping

import numpy as np

from asc_keras import labels as labels_lib
from asc_keras.config import (
    LEGACY_MODEL_FIELDS,
    LEGACY_TRAIN_FIELDS,
    DataConfig,
    FeatureConfig,
    ModelConfig,
    TrainConfig,
)

CONFIG_NAME = "config.json"
FLAGS_NAME = "flags.txt"
NORMALIZATION_NAME = "normalization.json"
MODEL_NAME = "model.keras"
CHECKPOINT_DIR = "checkpoints"
FORMAT_VERSION = 1
TEACHER_KEY = "teacher"


def run_record(
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    classes,
    features: str = "",
) -> dict:
    """The content of config.json; a run with a teacher (`train_cfg.teacher`) also records
    `teacher: {'path': absolute path, 'sha256': of the file's bytes}` (its identity: a resumed
    run and the reproduction's stale check compare the hash, not the path)."""
    record = {
        "format_version": FORMAT_VERSION,
        "task": data_cfg.task,
        "classes": list(classes),
        "feature_config": feature_cfg.to_dict(),
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "data": {
            "train_csv": data_cfg.train_csv,
            "eval_csv": data_cfg.eval_csv,
            "features": features,
        },
    }
    if train_cfg.teacher:
        record[TEACHER_KEY] = teacher_record(train_cfg.teacher)
    return record


def teacher_record(path: str) -> dict:
    """`{'path': absolute path, 'sha256': hex digest of the file}` of a teacher file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such teacher file (--teacher)")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": os.path.abspath(path), "sha256": digest.hexdigest()}


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a finished run's folder says about the run (everything but the model itself)."""

    path: str
    task: str
    classes: tuple[str, ...]
    feature_config: FeatureConfig
    normalization: Mapping[str, Mapping[str, np.ndarray]]  # {rep: {'mean','std'}} float32 [F]
    model_config: Mapping = dataclasses.field(default_factory=dict)
    features: str = ""  # the features folder it was trained from ('' when unknown)

    @property
    def model_path(self) -> str:
        return os.path.join(self.path, MODEL_NAME)


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: missing (is this a finished training run's model_dir?)")
    with open(path) as f:
        return json.load(f)


def read_normalization(path: str) -> dict[str, dict[str, np.ndarray]]:
    """normalization.json -> `{rep: {'mean': float32 [F], 'std': float32 [F]}}`."""
    return {
        rep: {k: np.asarray(v, np.float32) for k, v in stats.items()}
        for rep, stats in _read_json(path).items()
    }


def with_legacy_fields(record: Mapping) -> dict:
    """`record` (config.json) with the values that fields added since it was written had then.

    A run recorded before `bn_momentum` existed was built with Keras's BatchNorm defaults, so
    its model_config reads 0.99 / 1e-3, not today's defaults (`config.LEGACY_*_FIELDS`).
    """
    out = dict(record)
    for key, legacy in (
        ("model_config", LEGACY_MODEL_FIELDS),
        ("train_config", LEGACY_TRAIN_FIELDS),
    ):
        if isinstance(out.get(key), Mapping):
            out[key] = {**legacy, **out[key]}
    return out


def read_run(model_dir: str) -> RunInfo:
    """Read config.json and normalization.json of a training run; one-line errors."""
    path = os.path.join(model_dir, CONFIG_NAME)
    record = with_legacy_fields(_read_json(path))
    if not record.get("task") or "feature_config" not in record:
        raise ValueError(f"{path}: needs 'task' and 'feature_config'")
    fields = dict(record["feature_config"])
    fields["representations"] = tuple(fields["representations"])
    task = record["task"]
    return RunInfo(
        path=model_dir,
        task=task,
        classes=tuple(record.get("classes") or labels_lib.classes(task)),
        feature_config=FeatureConfig(**fields),
        normalization=read_normalization(os.path.join(model_dir, NORMALIZATION_NAME)),
        model_config=record.get("model_config") or {},
        features=(record.get("data") or {}).get("features") or "",
    )
