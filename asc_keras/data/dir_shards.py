"""Device impulse response (DIR) copies of the training clips, precomputed as extra shards.

`ensure_copies(folder, feature_cfg, data_cfg)` adds to a complete features folder (see
`precompute`) one DIR set per (impulse response folder contents, `dir_copies`, `dir_seed`):

    <folder>/dir-<key>-SSSSS-of-NNNNN.tfrecord (+ .json sidecar)   one per train shard
    <folder>/dir-<key>.json                                        the set's manifest

`<key>` hashes the responses' names and contents (`device_ir.folder_hash`), the copy count and
the seed, so a changed response folder makes a new set (an older set stays until deleted).
The DIR shards mirror the train shards record for record (same clips, same order, same count
per shard), so the training pipeline zips the two streams without a lookup. A record holds
`{rep: [K, T, F]}`: the features of the clip convolved with K responses (`device_ir.draw`:
by seed, clip and copy index), featurized exactly as the clean clip (`compute_features`),
for device-a clips; an empty `[0, T, F]` for the other devices' clips. The evaluate split is
never augmented.

As the clean shards: written to a temporary name and renamed, then the sidecar (clips, input
fingerprints, library versions) marks a shard complete; a rerun verifies the finished shards
(`shards.verify_shard`) and computes only what is missing or stale, saying why; reruns are byte
for byte the same; a complete set is only read. A bad response file stops the run with an
`ImpulseResponseError` naming it. All shards are computed here (`--num_shards` does not split
this step).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time

import numpy as np

from asc_keras import atomic, oom
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, device_ir, library_versions, schema, shard_writer, shards
from asc_keras.data import manifest as manifest_lib

FORMAT_VERSION = 1
DEVICE = "a"  # the reference device whose clips get copies
PREFIX = "dir"
_CLEAN = re.compile(r"train-(\d{5})-of-(\d{5})\.tfrecord")


@dataclasses.dataclass(frozen=True)
class DirSet:
    """One precomputed DIR set of a features folder (`dir-<key>.json`)."""

    folder: str
    key: str
    copies: int
    seed: int
    irs_sha256: str
    shards: tuple[str, ...]  # DIR shard names, in the order of `mirrors`
    mirrors: tuple[str, ...]  # the train shards they mirror
    num_copied: int  # clips that hold copies

    def shard_paths(self) -> list[str]:
        return [os.path.join(self.folder, s) for s in self.shards]

    def record(self) -> dict:
        """What a run's config.json records of the set (no paths: caches move)."""
        return {
            "key": self.key,
            "copies": self.copies,
            "seed": self.seed,
            "irs_sha256": self.irs_sha256,
            "device": DEVICE,
        }


def set_key(irs_sha256: str, copies: int, seed: int) -> str:
    payload = json.dumps([FORMAT_VERSION, irs_sha256, int(copies), int(seed)])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def manifest_path(folder: str, key: str) -> str:
    return os.path.join(folder, f"{PREFIX}-{key}.json")


def _plans(folder: str, m: manifest_lib.Manifest, data_cfg: DataConfig, key: str):
    """One plan per train shard: its kept clips (sidecar files less skipped), in record order."""
    table = dcase.read_dataset(
        data_cfg.data_dir,
        data_cfg.task_spec,
        splits=("train",),
        train_csv=data_cfg.train_csv,
        eval_csv=data_cfg.eval_csv,
    )["train"].set_index("filename", drop=False)
    plans = []
    for name in m.split("train").shards:
        match = _CLEAN.fullmatch(name)
        with open(os.path.join(folder, name + ".json")) as f:
            side = json.load(f)
        bad = {s["filename"] for s in side["skipped"]}
        kept = [x for x in side["files"] if x not in bad]
        rows = table.loc[kept].reset_index(drop=True)
        plans.append(shards.ShardPlan(f"{PREFIX}-{key}", int(match[1]), int(match[2]), rows))
    return plans


def _verify(folder: str, plan, data_cfg: DataConfig, versions) -> tuple[bool, str | None]:
    ok, why = shards.verify_shard(folder, plan, data_cfg, own=True)
    if ok and shards.recorded_versions(folder, plan) != versions:
        return False, "made with other feature library versions"
    return ok, why


def extract_copies(task):
    """Worker: `(name, {rep: float32 [K, T, F]} or None, one-line error or None, fingerprint)`;
    `irs` None (a clip of another device): fingerprint only."""
    from asc_keras import audio
    from asc_keras.features import compute_features

    path, name, cfg, max_err, mode, irs = task
    try:
        fp = shards.file_fingerprint(path, mode)
    except OSError:
        fp = None
    if irs is None:
        return name, None, None, fp
    try:
        wave = audio.load_clip(path, cfg, max_length_error_seconds=max_err)  # [num_samples]
    except audio.AudioError as e:
        return name, None, str(e), fp
    maps = [compute_features(device_ir.apply_ir(wave, ir), cfg) for ir in irs]
    return name, {r: np.stack([x[r] for x in maps]) for r in cfg.representations}, None, fp


def _results(tasks, num_workers: int, cfg: FeatureConfig):
    if num_workers <= 1 or len(tasks) <= 1:
        yield from map(extract_copies, tasks)
        return
    ctx = multiprocessing.get_context("spawn")  # TensorFlow may be loaded: never fork
    with ctx.Pool(num_workers, initializer=shard_writer.init_worker, initargs=(cfg,)) as pool:
        yield from pool.imap(extract_copies, tasks, chunksize=2)


def _write(folder, plans, feature_cfg, data_cfg, irs, versions, *, progress) -> None:
    """Compute and write `plans`, one temporary file at a time (see `shard_writer`)."""
    import tensorflow as tf
    from tqdm import tqdm

    seed, k = data_cfg.dir_seed, data_cfg.dir_copies
    empty = {r: np.zeros((0, *feature_cfg.shapes[r]), np.float32) for r in feature_cfg.shapes}
    for plan in plans:
        for name in os.listdir(folder):  # an interrupted run's temporaries of this shard
            if re.fullmatch(
                rf"(\.{re.escape(plan.name)}|{re.escape(plan.name)}\.json)\.tmp-\d+", name
            ):
                os.remove(os.path.join(folder, name))
    tasks, owner = [], []
    for i, plan in enumerate(plans):
        for row in plan.rows.itertuples():
            chosen = None
            if row.device == DEVICE:
                chosen = [irs[device_ir.draw(seed, row.filename, c, len(irs))] for c in range(k)]
            path = os.path.join(data_cfg.data_dir, row.filename)
            max_err = data_cfg.max_length_error * feature_cfg.clip_seconds
            tasks.append((path, row.filename, feature_cfg, max_err, data_cfg.fingerprint, chosen))
            owner.append(i)
    bar = tqdm(
        total=sum(t[-1] is not None for t in tasks),
        desc="DIR copies",
        unit="clip",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    results = _results(tasks, data_cfg.num_workers, feature_cfg)
    writer = tmp = None
    try:
        for t, (name, feats, error, fp) in enumerate(results):
            plan = plans[owner[t]]
            if writer is None:
                tmp = os.path.join(folder, f".{plan.name}.tmp-{os.getpid()}")
                writer, inputs, j = tf.io.TFRecordWriter(tmp), {}, 0
            if error is not None:
                raise dcase.DatasetError(f"{error} (making its DIR copies)")
            row = plan.rows.iloc[j]
            j += 1
            inputs[name] = fp
            bar.update(feats is not None)
            record = schema.serialize_example(
                empty if feats is None else feats,
                label=int(row["label_index"]),
                filename=name,
                device=row["device"],
                city=row["city"],
                identifier=row["identifier"],
                dtype=feature_cfg.dtype,
            )
            writer.write(record)
            if t + 1 == len(tasks) or owner[t + 1] != owner[t]:
                writer.close()
                writer = None
                os.replace(tmp, os.path.join(folder, plan.name))
                tmp = None
                side = {
                    "split": plan.split,
                    "files": list(plan.rows["filename"]),
                    "num_examples": len(plan.rows),
                    "skipped": [],
                    "inputs": inputs,
                    "copies": k,
                    "versions": versions,
                }
                atomic.write_json(shards.sidecar_path(folder, plan), side)
    finally:
        results.close()
        bar.close()
        if writer is not None:
            writer.close()
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def ensure_copies(
    folder: str,
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    *,
    progress: bool = True,
    log=print,
) -> DirSet:
    """Make sure the DIR set of `data_cfg` (`dir_folder`, `dir_copies`, `dir_seed`) exists in
    the complete features folder `folder`; compute what is missing. Returns it.

    Raises:
      ImpulseResponseError: a missing or empty response folder, or a bad response file (one
        line naming it); nothing is written then.
      ManifestError: `folder` has no complete train split.
    """
    t0 = time.time()
    if not data_cfg.dir_copies:
        raise ValueError("DIR copies need --dir_folder and --dir_copies")
    m = manifest_lib.load_manifest(folder)
    irs_folder = data_cfg.dir_folder
    names = device_ir.ir_files(irs_folder)
    irs_sha256 = device_ir.folder_hash(irs_folder)
    key = set_key(irs_sha256, data_cfg.dir_copies, data_cfg.dir_seed)
    plans = _plans(folder, m, data_cfg, key)
    versions = library_versions.current()
    state = {p.name: _verify(folder, p, data_cfg, versions) for p in plans}
    todo = [p for p in plans if not state[p.name][0]]
    if todo:
        irs = device_ir.load_irs(irs_folder, feature_cfg.sample_rate)  # a bad file stops here
        for p in todo[:10]:
            if state[p.name][1]:
                log(f"precompute: recomputing {p.name}: {state[p.name][1]}")
        n = sum(int((p.rows["device"] == DEVICE).sum()) for p in todo)
        log(
            f"precompute: DIR copies of {n} device-{DEVICE} train clips x{data_cfg.dir_copies} "
            f"({len(names)} impulse responses from {irs_folder}) -> {folder}/{PREFIX}-{key}-*"
        )
        with oom.disk_full_reported("precompute", where=folder, kept="finished shards"):
            _write(folder, todo, feature_cfg, data_cfg, irs, versions, progress=progress)
    copied = [f for p in plans for f in p.rows["filename"][p.rows["device"] == DEVICE]]
    record = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "impulse_responses": {"sha256": irs_sha256, "files": names},
        "copies": data_cfg.dir_copies,
        "seed": data_cfg.dir_seed,
        "device": DEVICE,
        "sample_rate": feature_cfg.sample_rate,
        "shards": [p.name for p in plans],
        "mirrors": list(m.split("train").shards),
        "num_examples": sum(len(p.rows) for p in plans),
        "files": copied,
        "library_versions": versions,
    }
    path = manifest_path(folder, key)
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = None
    if old != record:  # a complete set is only read
        atomic.write_json(path, record)
    if todo:
        log(f"precompute: DIR copies done in {time.time() - t0:.1f} s; {len(copied)} clips")
    return load_dir_set(folder, key)


def load_dir_set(folder: str, key: str) -> DirSet:
    """Read `dir-<key>.json` of `folder`; ManifestError with a one-line reason."""
    path = manifest_path(folder, key)
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise manifest_lib.ManifestError(f"{path}: no readable DIR manifest ({e})") from None
    if d.get("format_version") != FORMAT_VERSION:
        raise manifest_lib.ManifestError(f"{path}: format_version {d.get('format_version')!r}")
    return DirSet(
        folder=folder,
        key=d["key"],
        copies=int(d["copies"]),
        seed=int(d["seed"]),
        irs_sha256=d["impulse_responses"]["sha256"],
        shards=tuple(d["shards"]),
        mirrors=tuple(d["mirrors"]),
        num_copied=len(d["files"]),
    )


def summarize(s: DirSet) -> str:
    return (
        f"  DIR copies {PREFIX}-{s.key}: {s.num_copied} device-{DEVICE} train clips x{s.copies} "
        f"(seed {s.seed}, responses sha256 {s.irs_sha256[:12]}) in {len(s.shards)} shard(s)"
    )
