"""Precompute spectrogram features of a DCASE folder into sharded TFRecords with a manifest.

audio files -> (worker processes) decode + four spectrograms -> (this process) TFRecord shards
`<features_dir>/<key>/<split>-SSSSS-of-NNNNN.tfrecord` + per-shard sidecar `.json` -> manifest.

- `<key>` hashes every feature setting, the feature code version, the task and the dataset's
  split lists, so a changed setting (or feature definition) never reuses stale features.
- A shard is written to a temporary name and renamed; its sidecar (clip list, skipped clips,
  normalization partial sums) is written after it and marks it complete. An interrupted run is
  resumed by rerunning: complete shards are kept, the rest are redone.
- `num_shards`/`shard_index` split the shards across machines (shard i belongs to machine
  i % num_shards); the manifest is written by whichever run finds every shard complete.
- Normalization statistics come from the train split only.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from asc_keras import labels as labels_lib
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, schema
from asc_keras.data import manifest as manifest_lib
from asc_keras.data.manifest import write_json_atomic
from asc_keras.features import FEATURE_CODE_VERSION


class PrecomputeIncomplete(RuntimeError):
    """Some shards (other machines' part) are not yet complete, so there is no manifest yet."""


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    split: str
    index: int
    count: int
    rows: pd.DataFrame  # the clips of this shard, in order

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}.tfrecord"


def plan_shards(split: str, table: pd.DataFrame, clips_per_shard: int) -> list[ShardPlan]:
    count = max(1, -(-len(table) // clips_per_shard))
    return [
        ShardPlan(split, i, count, table.iloc[i * clips_per_shard:(i + 1) * clips_per_shard])
        for i in range(count)
    ]


def _sidecar_path(folder: str, plan: ShardPlan) -> str:
    return os.path.join(folder, plan.name + ".json")


def _shard_complete(folder: str, plan: ShardPlan) -> bool:
    side = _sidecar_path(folder, plan)
    if not (os.path.exists(side) and os.path.exists(os.path.join(folder, plan.name))):
        return False
    try:
        with open(side) as f:
            done = json.load(f)
    except (OSError, json.JSONDecodeError):
        return False
    return done.get("files") == list(plan.rows["filename"])


# --- worker side: no TensorFlow here ------------------------------------------------------------


def _extract(task: tuple[str, str, FeatureConfig, float]):
    """Decode one clip and compute its features; errors come back as one-line strings."""
    from asc_keras import audio
    from asc_keras.features import compute_features

    path, name, cfg, max_err = task
    try:
        wave = audio.load_clip(path, cfg, max_length_error_seconds=max_err)
        return name, compute_features(wave, cfg), None
    except audio.AudioError as e:
        return name, None, str(e)


def _init_worker(cfg: FeatureConfig) -> None:
    """One BLAS thread per worker (the workers already fill the cores), and librosa's one-off
    compilation done before the first clip."""
    from threadpoolctl import threadpool_limits

    from asc_keras.features import compute_features

    threadpool_limits(1)
    compute_features(np.zeros(cfg.num_samples, np.float32), cfg)


def _results(tasks: Sequence, num_workers: int, cfg: FeatureConfig) -> Iterator:
    if num_workers <= 1 or len(tasks) <= 1:
        yield from map(_extract, tasks)
        return
    # spawn: the caller may have TensorFlow loaded, which must not be forked.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(num_workers, initializer=_init_worker, initargs=(cfg,)) as pool:
        yield from pool.imap(_extract, tasks, chunksize=2)


# --- writer side -------------------------------------------------------------------------------


def _write_shards(folder: str, plans: list[ShardPlan], feature_cfg: FeatureConfig,
                  data_cfg: DataConfig, *, progress: bool) -> None:
    """Compute and write `plans` (all pending), one temporary file at a time."""
    import tensorflow as tf
    from tqdm import tqdm

    from asc_keras.features.normalization import RunningStats

    tasks, owner = [], []
    for k, plan in enumerate(plans):
        for name in plan.rows["filename"]:
            tasks.append((os.path.join(data_cfg.data_dir, name), name, feature_cfg,
                          data_cfg.max_length_error * feature_cfg.clip_seconds))
            owner.append(k)
    bar = tqdm(total=len(tasks), desc="features", unit="clip", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    current, writer, tmp = -1, None, None
    stats, skipped, rows_by_name = {}, [], {}
    try:
        results = _results(tasks, data_cfg.num_workers, feature_cfg)
        for t, (name, feats, error) in enumerate(results):
            k = owner[t]
            if k != current:
                current = k
                plan = plans[k]
                tmp = os.path.join(folder, f".{plan.name}.tmp-{os.getpid()}")
                writer = tf.io.TFRecordWriter(tmp)
                stats = {r: RunningStats(feature_cfg.bins(r)) for r in feature_cfg.representations}
                skipped = []
                rows_by_name = plan.rows.set_index("filename")
            if error is not None:
                if not data_cfg.skip_bad_files:
                    raise dcase.DatasetError(error)
                skipped.append({"filename": name, "reason": error})
            else:
                row = rows_by_name.loc[name]
                writer.write(schema.serialize_example(
                    feats, label=int(row["label_index"]), filename=name, device=row["device"],
                    city=row["city"], identifier=row["identifier"], dtype=feature_cfg.dtype))
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
                write_json_atomic(_sidecar_path(folder, plan), {
                    "split": plan.split,
                    "files": list(plan.rows["filename"]),
                    "num_examples": len(plan.rows) - len(skipped),
                    "skipped": skipped,
                    "stats": {r: s.to_dict() for r, s in stats.items()} if plan.split == "train"
                    else {},
                })
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _finalize(folder: str, plans_by_split: dict[str, list[ShardPlan]], feature_cfg: FeatureConfig,
              task: str, data_cfg: DataConfig, fingerprint: str) -> manifest_lib.Manifest:
    from asc_keras.features.normalization import RunningStats

    splits, skipped = {}, []
    totals = {r: RunningStats(feature_cfg.bins(r)) for r in feature_cfg.representations}
    for split, plans in plans_by_split.items():
        files, n = [], 0
        for plan in plans:
            with open(_sidecar_path(folder, plan)) as f:
                side = json.load(f)
            bad = {s["filename"] for s in side["skipped"]}
            files += [x for x in side["files"] if x not in bad]
            n += side["num_examples"]
            skipped += [dict(s, split=split) for s in side["skipped"]]
            for rep, d in side["stats"].items():
                totals[rep].merge(RunningStats.from_dict(d))
        splits[split] = manifest_lib.SplitInfo(split, n, tuple(p.name for p in plans), tuple(files))
    normalization = {}
    if "train" in plans_by_split:
        normalization = {r: {"mean": s.mean, "std": s.std} for r, s in totals.items()}
    m = manifest_lib.Manifest(
        path=folder, task=task, classes=labels_lib.classes(task), feature_config=feature_cfg,
        dtype=feature_cfg.dtype, shapes=feature_cfg.shapes, splits=splits,
        normalization=normalization, skipped=tuple(skipped),
        dataset={"data_dir": os.path.abspath(data_cfg.data_dir), "fingerprint": fingerprint})
    manifest_lib.write_manifest(m)
    return m


def ensure_features(feature_cfg: FeatureConfig, data_cfg: DataConfig, *,
                    splits: Sequence[str] = ("train", "evaluate"), progress: bool = True,
                    log=print) -> str:
    """Make sure the features of `splits` exist; compute what is missing. Returns the folder.

    Raises:
      DatasetError / ValueError: bad dataset lists or (unless `skip_bad_files`) a bad clip; the
        message is one line naming the file. Completed shards are kept.
      PrecomputeIncomplete: this machine's shards are done but other machines' are not.
    """
    t0 = time.time()
    avail = dcase.available_splits(data_cfg.data_dir, train_csv=data_cfg.train_csv,
                                   eval_csv=data_cfg.eval_csv)
    missing = [s for s in splits if s not in avail]
    if missing:
        raise dcase.DatasetError(
            f"{data_cfg.data_dir}: no list for split(s) {missing} "
            f"(looked for {data_cfg.train_csv}, {data_cfg.eval_csv})")
    keyed = tuple(s for s in avail if s != "test") or ("test",)
    tables = dcase.read_dataset(data_cfg.data_dir, data_cfg.task,
                                splits=tuple(dict.fromkeys(keyed + tuple(splits))),
                                train_csv=data_cfg.train_csv, eval_csv=data_cfg.eval_csv)
    fp = dcase.fingerprint({s: tables[s] for s in keyed})
    key = feature_cfg.settings_hash(data_cfg.task, fp, f"code-v{FEATURE_CODE_VERSION}")
    folder = os.path.join(data_cfg.features_dir, key)
    os.makedirs(folder, exist_ok=True)

    wanted = tuple(dict.fromkeys(splits))
    plans = {s: plan_shards(s, tables[s], data_cfg.clips_per_shard) for s in wanted}
    mine = [p for s in wanted for p in plans[s] if p.index % data_cfg.num_shards ==
            data_cfg.shard_index and not _shard_complete(folder, p)]
    if mine:
        n = sum(len(p.rows) for p in mine)
        log(f"precompute: {n} clips in {len(mine)} shard(s) -> {folder}")
        _write_shards(folder, mine, feature_cfg, data_cfg, progress=progress)
    # The manifest covers every complete split: those asked for now and any done before.
    done = {s: plan_shards(s, tables[s], data_cfg.clips_per_shard) for s in tables}
    done = {s: ps for s, ps in done.items() if all(_shard_complete(folder, p) for p in ps)}
    pending = [s for s in wanted if s not in done]
    if pending:
        left = sum(not _shard_complete(folder, p) for s in pending for p in plans[s])
        raise PrecomputeIncomplete(
            f"{folder}: {left} shard(s) of {pending} still to be computed by other machines "
            f"(--num_shards={data_cfg.num_shards}); rerun when they are done to write the manifest")
    m = _finalize(folder, done, feature_cfg, data_cfg.task, data_cfg, fp)
    if mine:
        log(f"precompute: done in {time.time() - t0:.1f} s; "
            f"{', '.join(f'{s}: {i.num_examples}' for s, i in m.splits.items())} clips; "
            f"{len(m.skipped)} skipped")
    return folder


def summarize(m: manifest_lib.Manifest) -> str:
    """A human-readable summary of a features folder."""
    lines = [f"features: {m.path}", f"task {m.task}, {len(m.classes)} classes, dtype {m.dtype}"]
    for s, info in m.splits.items():
        lines.append(f"  {s:9s} {info.num_examples:6d} clips in {len(info.shards)} shard(s)")
    for rep, shape in m.shapes.items():
        line = f"  {rep:7s} [time, freq] = {list(shape)}"
        if rep in m.normalization:
            mean, std = m.normalization[rep]["mean"], m.normalization[rep]["std"]
            line += (f"  train mean {np.mean(mean):8.2f} "
                     f"(bins {np.min(mean):.2f}..{np.max(mean):.2f})"
                     f"  std {np.mean(std):6.2f} (bins {np.min(std):.2f}..{np.max(std):.2f})")
        lines.append(line)
    if m.skipped:
        lines.append(f"  skipped {len(m.skipped)} file(s):")
        lines += [f"    {s['filename']}: {s['reason']}" for s in m.skipped]
    return "\n".join(lines)
