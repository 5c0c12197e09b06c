"""Resuming a training run: refuse a model_dir of another run, checkpoint and restore state.

The run folder's layout (`checkpoints/` among it), record and reader live in `asc_keras.runs`.
`check_resumable(model_dir, record)` refuses a model_dir that holds a different run.
`TrainingState` holds the model, the optimizer (its iteration count drives the learning rate),
the step counter and every model variable (the dropout seed generators' state included, which
`model` alone does not track), saved with
`tf.train.CheckpointManager` (the `checkpoint` state file is replaced atomically after the data
is written, so a killed save leaves the previous checkpoint in charge). The data position is not
stored: the input pipeline is a pure function of the seed and the step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from asc_keras.config import TrainConfig
from asc_keras.errors import AscError
from asc_keras.runs import CHECKPOINT_DIR, CONFIG_NAME, TEACHER_KEY, with_legacy_fields


class IncompatibleModelDirError(AscError, ValueError):
    """The model_dir holds a run with a different configuration."""


def _train_fields(train: Mapping) -> dict:
    """A recorded train_config in today's fields: runs written before `precision` existed
    recorded `mixed_precision` (True meant mixed_float16)."""
    train = dict(train)
    if "mixed_precision" in train:
        legacy = "mixed_float16" if train.pop("mixed_precision") else "float32"
        train.setdefault("precision", legacy)
    return train


def _comparable(record: Mapping) -> dict:
    record = with_legacy_fields(record)
    train = {
        k: v
        for k, v in _train_fields(record.get("train_config", {})).items()
        if k not in TrainConfig.RESUMABLE_CHANGES
    }
    return {
        "task": record.get("task"),
        "classes": list(record.get("classes", [])),
        "feature_config": record.get("feature_config"),
        "model_config": record.get("model_config"),
        "train_config": train,
        "dir": record.get("dir"),  # the DIR copies drawn from (absent: none)
        TEACHER_KEY: _teacher_sha256(record),
        "init_from": record.get("init_from"),
    }


def _teacher_sha256(record: Mapping) -> str:
    """The recorded teacher file's sha256 ('' for a run without a teacher)."""
    teacher = record.get(TEACHER_KEY)
    return str(teacher.get("sha256", "")) if isinstance(teacher, Mapping) else ""


def _differences(old, new, prefix="") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]
    return []


def check_resumable(model_dir: str, record: Mapping) -> bool:
    """Whether `model_dir` holds an earlier part of the run `record` describes.

    Returns:
      True when there is a compatible config.json (resume), False for a new or empty folder.

    Raises:
      IncompatibleModelDirError: config.json describes another run, or there are checkpoints
        without a config.json. One line naming the file and the differences.
    """
    path = os.path.join(model_dir, CONFIG_NAME)
    if not os.path.exists(path):
        ckpt_dir = os.path.join(model_dir, CHECKPOINT_DIR)
        if os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
            raise IncompatibleModelDirError(
                f"{ckpt_dir}: checkpoints without {CONFIG_NAME}; not resuming an unknown run, "
                "use a new --model_dir"
            )
        return False
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise IncompatibleModelDirError(f"{path}: unreadable ({e})") from None
    was, now = _teacher_sha256(old), _teacher_sha256(record)
    if was and now and was != now:
        raise IncompatibleModelDirError(
            f"{path}: the teacher file {record[TEACHER_KEY]['path']} changed since this run "
            f"began (sha256 {was[:12]}... -> {now[:12]}...); refusing to resume: restore the "
            "file or use a new --model_dir"
        )
    diff = _differences(_comparable(old), _comparable(record))
    if diff:
        shown = "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
        raise IncompatibleModelDirError(
            f"{path}: this model_dir holds a run with a different config ({shown}); refusing "
            "to resume it: use a new --model_dir"
        )
    return True


class TrainingState:
    """Model, optimizer and step, checkpointed together.

    Args:
      model: the Keras model (built).
      optimizer: its optimizer, already built on `model.trainable_variables`.
      directory: where checkpoints go (`<model_dir>/checkpoints`, or a worker's scratch copy).
      keep: how many checkpoints to keep.
      restore_from: the folder to resume from (default `directory`); every worker of a cluster
        resumes from the chief's checkpoints.
    """

    def __init__(
        self, model, optimizer, directory: str, *, keep: int, restore_from: str | None = None
    ):
        import tensorflow as tf

        self.model, self.optimizer = model, optimizer
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, step=self.step, model_variables=list(model.variables)
        )
        self.directory = directory
        self.restore_from = restore_from or directory
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=keep, step_counter=self.step
        )

    def restore_latest(self) -> int:
        """Restore the newest checkpoint if there is one; returns the step it was taken at."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(self.restore_from)
        if latest is None:
            return 0
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError) as e:
            reason = " ".join(str(e).split())[:200]
            raise IncompatibleModelDirError(
                f"{latest}: checkpoint does not fit this model/optimizer ({reason}); use a new "
                "--model_dir"
            ) from None
        return int(self.step.numpy())

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint in `directory`, or None."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(self.directory)
        return int(latest.rsplit("-", 1)[1]) if latest else None

    def save(self) -> str:
        """Checkpoint now, numbered by the step."""
        return self.manager.save(checkpoint_number=int(self.step.numpy()))
