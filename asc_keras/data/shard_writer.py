"""The shard writer both precompute engines use: clips -> features -> one TFRecord shard each.

`write_shards(folder, plans, ...)` computes the clips of every pending `shards.ShardPlan` (in
worker processes when `num_workers > 1`, spawned, one BLAS thread each) and writes each shard to
a temporary name (`.<shard>.tmp-<pid>`), renames it into place, then writes its sidecar (see
`shards`; it also records the feature libraries' versions, `library_versions.current()`),
which marks it complete. The local engine (`precompute`) calls it with all pending shards, a
Beam worker (`beam`) with one; `extract` is the per-clip function of both, so their shards and
sidecars are byte-identical.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence

import numpy as np

from asc_keras.atomic import write_json
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, library_versions, schema, shards

# --- worker side: no TensorFlow here ------------------------------------------------------------


def extract(task: tuple[str, str, FeatureConfig, float, str]):
    """Fingerprint and decode one clip and compute its features:
    `(name, features or None, one-line error or None, fingerprint or None)`."""
    from asc_keras import audio
    from asc_keras.features import compute_features

    path, name, cfg, max_err, mode = task
    try:
        fp = shards.file_fingerprint(path, mode)  # before decoding: a later change shows
    except OSError:
        fp = None  # missing: load_clip says so
    try:
        wave = audio.load_clip(path, cfg, max_length_error_seconds=max_err)
        return name, compute_features(wave, cfg), None, fp
    except audio.AudioError as e:
        return name, None, str(e), fp


def init_worker(cfg: FeatureConfig) -> None:
    """One BLAS thread per worker (the workers already fill the cores), and librosa's one-off
    compilation done before the first clip."""
    from threadpoolctl import threadpool_limits

    from asc_keras.features import compute_features

    threadpool_limits(1)
    compute_features(np.zeros(cfg.num_samples, np.float32), cfg)


def _results(tasks: Sequence, num_workers: int, cfg: FeatureConfig) -> Iterator:
    if num_workers <= 1 or len(tasks) <= 1:
        yield from map(extract, tasks)  # one BLAS thread, as in the workers (compute_features)
        return
    # spawn: the caller may have TensorFlow loaded, which must not be forked.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(num_workers, initializer=init_worker, initargs=(cfg,)) as pool:
        yield from pool.imap(extract, tasks, chunksize=2)


# --- writer side -------------------------------------------------------------------------------


def write_shards(
    folder: str,
    plans: list[shards.ShardPlan],
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    *,
    progress: bool,
) -> None:
    """Compute and write `plans` (all pending), one temporary file at a time."""
    import tensorflow as tf
    from tqdm import tqdm

    from asc_keras.features.normalization import RunningStats

    tasks, owner = [], []
    for k, plan in enumerate(plans):
        for name in plan.rows["filename"]:
            tasks.append(
                (
                    os.path.join(data_cfg.data_dir, name),
                    name,
                    feature_cfg,
                    data_cfg.max_length_error * feature_cfg.clip_seconds,
                    data_cfg.fingerprint,
                )
            )
            owner.append(k)
    bar = tqdm(
        total=len(tasks),
        desc="features",
        unit="clip",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    versions = library_versions.current()  # of the libraries computing, in this process too
    current, writer, tmp = -1, None, None
    stats, skipped, inputs, rows_by_name = {}, [], {}, {}
    results = _results(tasks, data_cfg.num_workers, feature_cfg)
    try:
        for t, (name, feats, error, fp) in enumerate(results):
            k = owner[t]
            if k != current:
                current = k
                plan = plans[k]
                tmp = os.path.join(folder, f".{plan.name}.tmp-{os.getpid()}")
                writer = tf.io.TFRecordWriter(tmp)
                stats = {r: RunningStats(feature_cfg.bins(r)) for r in feature_cfg.representations}
                skipped, inputs = [], {}
                rows_by_name = plan.rows.set_index("filename")
            inputs[name] = fp
            if error is not None:
                if not data_cfg.skip_bad_files:
                    raise dcase.DatasetError(f"{error}; --skip_bad_files would skip it")
                skipped.append({"filename": name, "reason": error})
            else:
                row = rows_by_name.loc[name]
                writer.write(
                    schema.serialize_example(
                        feats,
                        label=int(row["label_index"]),
                        filename=name,
                        device=row["device"],
                        city=row["city"],
                        identifier=row["identifier"],
                        dtype=feature_cfg.dtype,
                    )
                )
                if plan.split == "train":
                    for rep, x in feats.items():
                        stats[rep].update(x)
            bar.update(1)
            last_of_shard = t + 1 == len(tasks) or owner[t + 1] != k
            if last_of_shard:
                writer.close()
                writer = None
                os.replace(tmp, os.path.join(folder, plan.name))
                tmp = None
                write_json(
                    shards.sidecar_path(folder, plan),
                    {
                        "split": plan.split,
                        "files": list(plan.rows["filename"]),
                        "num_examples": len(plan.rows) - len(skipped),
                        "skipped": skipped,
                        "inputs": inputs,
                        "stats": {r: s.to_dict() for r, s in stats.items()}
                        if plan.split == "train"
                        else {},
                        "versions": versions,
                    },
                )
    finally:
        results.close()  # stops the workers now, not when collected
        bar.close()
        if writer is not None:
            writer.close()
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
