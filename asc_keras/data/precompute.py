"""Precompute spectrogram features of a DCASE folder into sharded TFRecords with a manifest.

audio files -> (worker processes) decode + four spectrograms -> (this process) TFRecord shards
`<features_dir>/<key>/<split>-SSSSS-of-NNNNN.tfrecord` + per-shard sidecar `.json` -> manifest.

- `<key>` hashes every feature setting, the feature code version, the task and the dataset's
  split lists, so a changed setting (or feature definition) never reuses stale features.
- A shard is written to a temporary name (`.<shard>.tmp-<pid>`) and renamed; its sidecar (clip
  list, skipped clips, a fingerprint of every input file, normalization partial sums) is written
  after it and marks it complete. Shards and sidecars are byte-identical from run to run.
- Every run verifies the finished shards before using them and recomputes, saying why, any that
  is truncated (record count against its sidecar), whose audio changed (size and modification
  time, or a content hash with `fingerprint='sha256'`, which recomputes shards that hold no
  hashes), or, in a strict run, that skipped files of a `skip_bad_files` run. An interrupted
  run is resumed by rerunning: complete shards are kept, the rest are redone, and temporary
  files of a killed run are removed; nothing else in the folder is touched. A complete set of
  shards made with another `clips_per_shard` is used as it is (`shards` holds the shard plan,
  the sidecar format and these checks).
- The manifest and every sidecar record the versions of the libraries that compute features
  (`library_versions`: librosa, numpy, scipy, soxr, gammatone). Caches are shared between
  machines, so a run whose libraries differ from the record (or finds no record: a folder
  written before versions were recorded) recomputes every shard in place, the folder being
  keyed by settings, saying why; in a read-only folder it stops with `StaleFeaturesError`
  instead, one line naming the folder and both versions.
- A run that finds everything complete writes nothing (the folder may be a read-only mount).
- `num_shards`/`shard_index` split the shards across machines (shard i belongs to machine
  i % num_shards); the manifest is written by whichever run finds every shard complete. Each
  machine checks its own shards' inputs by fingerprint, the others' by file size (modification
  times differ between copies of a dataset).
- Normalization statistics come from the train split only.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence

import numpy as np

from asc_keras import oom
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, library_versions, shard_writer, shards
from asc_keras.data import manifest as manifest_lib
from asc_keras.errors import AscError
from asc_keras.features import FEATURE_CODE_VERSION


class PrecomputeIncomplete(AscError, RuntimeError):
    """Some shards (other machines' part) are not yet complete, so there is no manifest yet."""


def _finalize(
    folder: str,
    plans_by_split: dict[str, list[shards.ShardPlan]],
    feature_cfg: FeatureConfig,
    task: str,
    data_cfg: DataConfig,
    fingerprint: str,
    totals=None,
) -> manifest_lib.Manifest:
    """Write the manifest from the sidecars; `totals`: the train statistics when already merged
    (by the Beam engine), else merged here from the sidecars' partial sums in shard order."""
    from asc_keras.features.normalization import RunningStats

    splits, skipped = {}, []
    merge = totals is None
    if merge:
        totals = {r: RunningStats(feature_cfg.bins(r)) for r in feature_cfg.representations}
    for split, plans in plans_by_split.items():
        files, n = [], 0
        for plan in plans:
            with open(shards.sidecar_path(folder, plan)) as f:
                side = json.load(f)
            bad = {s["filename"] for s in side["skipped"]}
            files += [x for x in side["files"] if x not in bad]
            n += side["num_examples"]
            skipped += [dict(s, split=split) for s in side["skipped"]]
            for rep, d in side["stats"].items() if merge else ():
                totals[rep].merge(RunningStats.from_dict(d))
        splits[split] = manifest_lib.SplitInfo(split, n, tuple(p.name for p in plans), tuple(files))
    normalization = {}
    if "train" in plans_by_split:
        normalization = {r: {"mean": s.mean, "std": s.std} for r, s in totals.items()}
    m = manifest_lib.Manifest(
        path=folder,
        task=task,
        classes=data_cfg.classes,
        feature_config=feature_cfg,
        dtype=feature_cfg.dtype,
        shapes=feature_cfg.shapes,
        splits=splits,
        normalization=normalization,
        skipped=tuple(skipped),
        dataset={"data_dir": os.path.abspath(data_cfg.data_dir), "fingerprint": fingerprint},
    )
    manifest_lib.write_manifest(m)
    return m


def _read_tables(data_cfg: DataConfig, splits: Sequence[str]):
    """`(tables, dataset fingerprint)`: the wanted splits plus every labeled list (the key)."""
    dcase.check_folder(data_cfg.data_dir)
    avail = dcase.available_splits(
        data_cfg.data_dir, train_csv=data_cfg.train_csv, eval_csv=data_cfg.eval_csv
    )
    missing = [s for s in splits if s not in avail]
    if missing:
        raise dcase.DatasetError(
            f"{data_cfg.data_dir}: no list for split(s) {missing} "
            f"(looked for {data_cfg.train_csv}, {data_cfg.eval_csv})"
        )
    keyed = tuple(s for s in avail if s != "test") or ("test",)
    tables = dcase.read_dataset(
        data_cfg.data_dir,
        data_cfg.task_spec,
        splits=tuple(dict.fromkeys(keyed + tuple(splits))),
        train_csv=data_cfg.train_csv,
        eval_csv=data_cfg.eval_csv,
    )
    return tables, dcase.fingerprint({s: tables[s] for s in keyed})


def _stale_versions(folder: str, plans: dict[str, list[shards.ShardPlan]], state) -> str | None:
    """How the features in `folder` were made with other feature library versions than this
    environment's (one phrase naming both), or None when they were not.

    Checked: the manifest's record (when there is a manifest) and the sidecar of every finished,
    otherwise usable shard. A manifest or sidecar without versions (written before they were
    recorded) counts as made with unknown versions.
    """
    here = library_versions.current()
    try:
        with open(os.path.join(folder, manifest_lib.MANIFEST_NAME)) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        recorded = None  # none yet (or unreadable, rewritten at the end): the sidecars tell
    if isinstance(recorded, dict):
        diff = library_versions.difference(recorded.get("library_versions"), here)
        if diff:
            return diff
    for split_plans in plans.values():
        for plan in split_plans:
            if state[plan.name][0]:
                diff = library_versions.difference(shards.recorded_versions(folder, plan), here)
                if diff:
                    return diff
    return None


def _report_redo(redo: dict[str, str], log) -> None:
    """One line per shard recomputed for a reason (at most ten, then a count)."""
    items = list(redo.items())
    for name, why in items[:10]:
        log(f"precompute: recomputing {name}: {why}")
    if len(items) > 10:
        log(f"precompute: recomputing {len(items) - 10} more shard(s) for the same reasons")


def _skipped_note(m: manifest_lib.Manifest, splits: Sequence[str]) -> str:
    counts = {s: sum(x.get("split") == s for x in m.skipped) for s in splits}
    total = sum(counts.values())
    if not total:
        return ""
    per_split = ", ".join(f"{s} {n}" for s, n in counts.items() if n)
    return (
        f"{total} clip(s) skipped by --skip_bad_files ({per_split}), listed in "
        f"{os.path.join(m.path, manifest_lib.MANIFEST_NAME)}"
    )


def ensure_features(
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    *,
    splits: Sequence[str] = ("train", "evaluate"),
    progress: bool = True,
    log=print,
) -> str:
    """Make sure the features of `splits` exist; compute what is missing. Returns the folder.

    Finished shards are verified first (see `shards.verify_shard`); a broken or stale one is
    recomputed, with one logged line saying why. Features made with other versions of the
    feature libraries (`library_versions`), by the manifest's or any sidecar's record, are all
    recomputed, every split. When the features hold clips skipped by `skip_bad_files`, a line
    says how many, whether or not anything was computed.

    Raises:
      DatasetError / ValueError: bad dataset lists or (unless `skip_bad_files`) a bad clip; the
        message is one line naming the file. Completed shards are kept.
      PrecomputeIncomplete: this machine's shards are done but other machines' are not.
      StaleFeaturesError: features of other library versions in a read-only folder; one line
        naming the folder and both versions.
    """
    t0 = time.time()
    tables, fp = _read_tables(data_cfg, splits)
    key = feature_cfg.settings_hash(data_cfg.task, fp, f"code-v{FEATURE_CODE_VERSION}")
    folder = os.path.join(data_cfg.features_dir, key)
    os.makedirs(folder, exist_ok=True)

    wanted = tuple(dict.fromkeys(splits))
    totals = None  # train statistics, when an engine merged them
    plans, state = {}, {}
    for s in tables:
        plans[s], split_state = shards.choose_plan(folder, s, tables[s], data_cfg)
        state.update(split_state)
    redo_splits = wanted
    stale = _stale_versions(folder, plans, state)
    if stale:
        if not os.access(folder, os.W_OK):
            raise manifest_lib.StaleFeaturesError(
                f"{folder}: features {stale}, and the folder is read-only, so they cannot be "
                "recomputed (use a writable --features_dir, or the library versions that made them)"
            )
        # Recomputed in place (the folder is keyed by settings), every split, so that the
        # manifest keeps them all.
        why = f"features {stale}"
        state = {n: (False, why) if ok else (ok, reason) for n, (ok, reason) in state.items()}
        with contextlib.suppress(FileNotFoundError):  # it describes what is being replaced
            os.remove(os.path.join(folder, manifest_lib.MANIFEST_NAME))
        redo_splits = tuple(dict.fromkeys(wanted + tuple(plans)))
    # Mine when unfinished; anyone's when finished but unusable (nobody else will redo it).
    todo = [
        p
        for s in redo_splits
        for p in plans[s]
        if not state[p.name][0] and (shards.own(p, data_cfg) or state[p.name][1] is not None)
    ]
    if todo:  # a run that computes nothing writes nothing
        settled = {n for n, (ok, _) in state.items() if ok} | {p.name for p in todo}
        shards.remove_leftovers(folder, settled, log)
        _report_redo({p.name: state[p.name][1] for p in todo if state[p.name][1]}, log)
        n = sum(len(p.rows) for p in todo)
        log(
            f"precompute: {n} clips in {len(todo)} shard(s) -> {folder} (the first clips wait "
            "while librosa compiles its kernels, up to a minute once per environment; the ETA "
            "settles after that)"
        )
        if data_cfg.engine == "beam":
            from asc_keras.data import beam  # the optional extra, imported only when asked for

            totals = beam.write_shards(
                folder,
                todo,
                feature_cfg,
                data_cfg,
                log=log,
                train=plans.get("train", ()),
                finished={name for name, (ok, _) in state.items() if ok},
            )
        else:
            with oom.disk_full_reported("precompute", where=folder, kept="finished shards"):
                shard_writer.write_shards(folder, todo, feature_cfg, data_cfg, progress=progress)
        state.update({p.name: (True, None) for p in todo})
    # The manifest covers every complete split: those asked for now and any done before.
    done = {s: ps for s, ps in plans.items() if all(state[p.name][0] for p in ps)}
    pending = [s for s in wanted if s not in done]
    if pending:
        left = sum(not state[p.name][0] for s in pending for p in plans[s])
        raise PrecomputeIncomplete(
            f"{folder}: {left} shard(s) of {pending} still to be computed by other machines "
            f"(--num_shards={data_cfg.num_shards}); rerun when they are done to write the manifest"
        )
    with oom.disk_full_reported("precompute", where=folder, kept="finished shards"):
        m = _finalize(folder, done, feature_cfg, data_cfg.task, data_cfg, fp, totals)
    if todo:
        log(
            f"precompute: done in {time.time() - t0:.1f} s; "
            f"{', '.join(f'{s}: {i.num_examples}' for s, i in m.splits.items())} clips"
        )
    note = _skipped_note(m, wanted)
    if note:
        log(f"precompute: {note}")
    return folder


def summarize(m: manifest_lib.Manifest) -> str:
    """A human-readable summary of a features folder."""
    lines = [f"features: {m.path}", f"task {m.task}, {len(m.classes)} classes, dtype {m.dtype}"]
    for s, info in m.splits.items():
        skipped = sum(x.get("split") == s for x in m.skipped)
        lines.append(
            f"  {s:9s} {info.num_examples:6d} clips in {len(info.shards)} shard(s)"
            + (f", {skipped} skipped" if skipped else "")
        )
    for rep, shape in m.shapes.items():
        line = f"  {rep:7s} [time, freq] = {list(shape)}"
        if rep in m.normalization:
            mean, std = m.normalization[rep]["mean"], m.normalization[rep]["std"]
            line += (
                f"  train mean {np.mean(mean):8.2f} "
                f"(bins {np.min(mean):.2f}..{np.max(mean):.2f})"
                f"  std {np.mean(std):6.2f} (bins {np.min(std):.2f}..{np.max(std):.2f})"
            )
        lines.append(line)
    if m.skipped:
        lines.append(f"  skipped {len(m.skipped)} file(s):")
        lines += [f"    {s['filename']}: {s['reason']}" for s in m.skipped]
    return "\n".join(lines)
