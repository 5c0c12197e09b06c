"""Validation during training: the evaluate split predicted with the current weights and scored,
precise BatchNorm statistics before the final evaluation, and read errors of the TFRecord shards
turned into a `CorruptShardError` naming the shard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import numpy as np

from asc_keras.config import TrainConfig
from asc_keras.data import pipeline
from asc_keras.training import loop
from asc_keras.training.setup import SPLIT_TRAIN


@contextlib.contextmanager
def naming_bad_shards(paths, parse):
    """Translate a read error of the TFRecord shards `paths` into `CorruptShardError`."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        reason = pipeline.find_bad_shard(paths, parse) if paths else None
        if reason is None:
            raise
        raise pipeline.CorruptShardError(reason) from e


class Validator:
    """Predicts the evaluate split with the current weights (one device call) and scores it."""

    def __init__(self, model, dataset, *, classes, task: str, paths=(), parse=None):
        self.dataset, self.classes, self.task = dataset, tuple(classes), task
        self.paths, self.parse = tuple(paths), parse
        self._predict_all = loop.make_predict_all(model)

    def __call__(self):
        """`(metrics or None, probs float32 [N, C], meta {'label', 'filename', 'device'})`."""
        from asc_keras.evaluation import evaluator

        with naming_bad_shards(self.paths, self.parse):
            probs, labels, files, devices, batches = self._predict_all(self.dataset)
        if not int(batches):
            raise ValueError("the evaluate split is empty")
        meta = {
            "label": labels.numpy().astype(np.int64),
            "filename": np.asarray([s.decode() for s in files.numpy()], dtype=object),
            "device": np.asarray([s.decode() for s in devices.numpy()], dtype=object),
        }
        probs = probs.numpy()
        return evaluator.score(probs, meta, self.classes, task=self.task), probs, meta


def recalibrate(
    model,
    manifest,
    datasets: Mapping | None,
    normalization: Mapping,
    reps,
    train_cfg: TrainConfig,
    *,
    log: Callable[[str], None],
) -> None:
    """Precise BatchNorm statistics from `train_cfg.recalibrate_bn` clean training batches."""
    from asc_keras.training import batchnorm

    if datasets is None:
        clean = pipeline.train_dataset(
            manifest,
            representations=reps,
            batch_size=train_cfg.batch_size,
            seed=train_cfg.seed + 1,
            mixup_alpha=0.0,
            normalization=normalization,
            shuffle_buffer=min(manifest.split(SPLIT_TRAIN).num_examples, 4096),
            cache=False,
            devices=train_cfg.train_devices,
        )
    elif datasets.get("clean_train") is not None:
        clean = datasets["clean_train"]
    else:
        raise ValueError("recalibrate_bn needs un-mixed training batches: datasets['clean_train']")
    seen = batchnorm.recalibrate(model, iter(clean), train_cfg.recalibrate_bn)
    log(f"BatchNorm statistics recomputed on {seen} clean training batches")


def confusion_png(metrics: Mapping, classes) -> bytes | None:
    """The confusion matrix of `metrics['all']` as a PNG (None without one)."""
    from asc_keras.evaluation import plots

    entry = metrics.get("all") or {}
    if entry.get("confusion_matrix") is None:
        return None
    return plots.confusion_png(np.asarray(entry["confusion_matrix"]), classes)
