"""tf.data input pipelines over a precomputed features folder (see `asc_keras.data.manifest`).

Order (Model Garden `input_reader.py`): seeded file-level shuffle -> interleave(TFRecordDataset)
-> map(parse, check finite, normalize: one stage) -> cache -> (train) shuffle + repeat -> batch
-> Freq-MixStyle (off by default) -> mixup -> prefetch. Training shuffles before it repeats, so
with the default whole-split buffer every epoch is a permutation of the split. DIR augmentation
(`dir_copies`, see `dir_pipeline`) zips the DIR shards' records to the train records and picks a
copy per example before batching.

- `train_dataset(...)` yields, forever, `(features, labels)`: `features = {rep: float32 [B, T, F]}`
  (normalized with the training split's per-bin statistics) and `labels = float32 [B, C]`
  (one-hot, mixed with the features when mixup is on). Its order is a pure function of the seed:
  `skip_batches=k` yields exactly what an uninterrupted pipeline yields after `k` batches, which
  is how a resumed training run gets its data position back.
- `eval_dataset(...)` yields one pass over a split in record order, never shuffled or repeated:
  `(features, meta)` with `meta = {'label': int64 [B], 'filename' | 'device' | 'city' |
  'identifier': string [B]}`.

Corrupt input is never skipped: `check_shards` (run by both builders, about a millisecond per
shard) verifies the record framing of every shard and the record counts (per shard against the
precompute step's `<shard>.json` when present, per split against the manifest), and
`checked_iter` turns an error while iterating into a one-line `CorruptShardError` naming the
shard (`find_bad_shard` re-reads the shards one by one to find it). Features holding NaN or
infinite values fail in the pipeline with the clip's file name. Normalization is
`(x - mean) / max(std, DEFAULT_STD_FLOOR)` per frequency bin (`normalization_arrays`); exported
models must apply the same.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras.data import devices as devices_lib
from asc_keras.data import dir_pipeline as dir_lib
from asc_keras.data import mixstyle as mixstyle_lib
from asc_keras.data import mixup as mixup_lib
from asc_keras.data import schema
from asc_keras.data import teacher as teacher_lib
from asc_keras.data.manifest import Manifest
from asc_keras.data.shard_checks import (  # noqa: F401 - the pipeline's shard checks, re-exported
    CorruptShardError,
    assert_finite,
    check_shard,
    check_shards,
    checked_iter,
    find_bad_shard,
)
from asc_keras.features.normalization import DEFAULT_STD_FLOOR

META_KEYS = (schema.LABEL,) + schema.STRING_KEYS
_CYCLE_LENGTH = 4  # fixed, so the record order does not depend on the machine's core count
_READ_BUFFER = 1 << 20
_MIXUP_STREAM = 0x6D6978  # folds the run seed into a stream of its own for mixup
_MIXSTYLE_STREAM = 0x6D7374  # and another one for Freq-MixStyle


# ---------------------------------------------------------------------------------------------
# Building blocks.


def normalization_arrays(normalization: Mapping, name: str) -> tuple[np.ndarray, np.ndarray]:
    """`(mean, std)` float32 `[F]` of one representation; std floored like the statistics."""
    if name not in normalization:
        raise KeyError(f"no normalization statistics for {name!r} (have {sorted(normalization)})")
    stats = normalization[name]
    mean = np.asarray(stats["mean"], np.float32)
    std = np.maximum(np.asarray(stats["std"], np.float32), np.float32(DEFAULT_STD_FLOOR))
    return mean, std


def _records(paths: Sequence[str], *, seed: int | None, input_context=None):
    """Serialized records of `paths`: file order shuffled by `seed` and interleaved, or (seed
    None) read in order."""
    import tensorflow as tf

    paths = list(paths)
    if not paths:
        raise ValueError("no TFRecord shards to read")
    if seed is not None:
        paths = [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]
    shard_records = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        if len(paths) >= n:
            paths = paths[i::n]
        else:
            shard_records = True
    if seed is None:  # record order: the shards one after the other
        ds = tf.data.TFRecordDataset(paths, buffer_size=_READ_BUFFER)
    else:
        ds = tf.data.Dataset.from_tensor_slices(paths).interleave(
            lambda p: tf.data.TFRecordDataset(p, buffer_size=_READ_BUFFER),
            cycle_length=min(len(paths), _CYCLE_LENGTH),
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if shard_records:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return ds


def _examples(
    manifest: Manifest,
    split: str,
    representations: Sequence[str],
    normalization: Mapping | None,
    *,
    seed: int | None,
    input_context=None,
    check: bool = True,
    finish=None,
    copies=None,
    devices: Sequence[str] = (),
):
    """Parsed, checked and normalized examples of a split: `finish({rep: [T, F], meta...})`.

    Parsing, the finiteness check, normalization and `finish` run as one map (one tf.data
    stage per record); with `devices`, only those devices' records are parsed.
    """
    import tensorflow as tf

    representations = tuple(representations)
    missing = [r for r in representations if r not in manifest.shapes]
    if missing:
        raise ValueError(
            f"{manifest.path}: representations {missing} were not precomputed "
            f"(have {sorted(manifest.shapes)})"
        )
    if check:
        check_shards(manifest, split)
    normalization = manifest.normalization if normalization is None else normalization
    stats = {r: normalization_arrays(normalization, r) for r in representations}
    parse = make_parse(manifest, representations)

    def decode(serialized, copies_record=None):
        example = assert_finite(parse(serialized))
        for r, (mean, std) in stats.items():
            example[r] = (example[r] - tf.constant(mean)) / tf.constant(std)  # [T, F]
        if copies is not None:
            example = copies.attach(example, copies_record, stats)
        return example if finish is None else finish(example)

    ds = _records(manifest.shard_paths(split), seed=seed, input_context=input_context)
    if copies is not None:  # DIR shards, record for record beside the train shards
        ds = tf.data.Dataset.zip(ds, _records(copies.paths, seed=seed, input_context=input_context))
    if devices:
        keep = devices_lib.keep_devices(devices)
        ds = ds.filter(keep if copies is None else lambda record, _copy: keep(record))
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_parse(manifest: Manifest, representations: Sequence[str]):
    """The record parser of a features folder, for the given representations."""
    shapes = {r: tuple(manifest.shapes[r]) for r in representations}
    return schema.make_parser(shapes, dtype=manifest.dtype)


# ---------------------------------------------------------------------------------------------
# Public builders.


def train_dataset(
    manifest: Manifest,
    *,
    representations: Sequence[str],
    batch_size: int,
    seed: int,
    mixup_alpha: float = 0.2,
    num_classes: int | None = None,
    shuffle_buffer: int = 0,
    split: str = "train",
    normalization: Mapping | None = None,
    skip_batches: int = 0,
    input_context=None,
    cache: bool = True,
    check: bool = True,
    dir_copies=None,
    teacher_targets: tuple[Sequence[str], np.ndarray] | None = None,
    freq_mixstyle_p: float = 0.0,
    freq_mixstyle_alpha: float = 0.3,
    devices: Sequence[str] = (),
):
    """The infinite, shuffled, mixed-up training stream.

    Args:
      manifest: the features folder (`load_manifest`).
      representations: which stored representations to feed (the model's input names).
      batch_size: examples per batch (per replica when `input_context` is given).
      seed: the file order, example shuffle and mixup all derive from it.
      mixup_alpha: mixup's Beta parameter; 0 disables mixup.
      num_classes: one-hot size; default the manifest's class count.
      shuffle_buffer: example shuffle buffer; 0 = the whole split (cached examples are shared,
        not copied, so this costs pointers only).
      split: the manifest split to read.
      normalization: `{rep: {'mean': [F], 'std': [F]}}`; default the manifest's (train split).
      skip_batches: start after this many batches (resuming a run at the same data position).
      input_context: a `tf.distribute.InputContext`; shards files (or records) across input
        pipelines.
      cache: keep the parsed, normalized examples in memory after the first pass.
      check: `check_shards` first.
      dir_copies: a `dir_pipeline.Copies`: DIR augmentation (device-a examples replaced by an
        impulse-response copy with its probability); None or probability 0: off.
      teacher_targets: `(clip names [N], soft targets float32 [N, C])` covering every clip of
        the split (`data.teacher.Teacher.targets`): each example's row, looked up by its file
        name, travels beside its one-hot label through batching and mixup.
      freq_mixstyle_p, freq_mixstyle_alpha: Freq-MixStyle (`mixstyle`) before mixup; p 0 is off.
      devices: train on these recording devices' clips only (the records' `device` field); the
        whole-split shuffle buffer is then their clip count (`devices.selected_count`, which
        raises `DeviceSelectionError` for a device without clips).

    Returns:
      A `tf.data.Dataset` of `({rep: float32 [B, T, F]}, float32 [B, C])`, `[B, 2C]` with
      `teacher_targets` (labels then soft targets).
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num_classes = len(manifest.classes) if num_classes is None else int(num_classes)
    representations = tuple(representations)

    def features_label(example):
        label = example[schema.LABEL]
        ok = tf.debugging.Assert(
            label >= 0, [f"unlabeled clip in split {split!r}:", example[schema.FILENAME]]
        )
        with tf.control_dependencies([ok]):
            label = tf.identity(label)
        features = {r: example[r] for r in representations}
        features = dict(features, **dir_lib.copies_of(example))
        if lookup is not None:
            return features, (label, lookup(example))
        return features, label

    if dir_copies is not None and not dir_copies.p:
        dir_copies = None  # off: the clean stream, bit for bit
    lookup = (
        None if teacher_targets is None else teacher_lib.make_lookup(*teacher_targets, split=split)
    )

    ds = _examples(
        manifest,
        split,
        representations,
        normalization,
        seed=seed,
        input_context=input_context,
        check=check,
        finish=features_label,
        copies=dir_copies,
        devices=devices,
    )
    if cache:
        ds = ds.cache()
    buffer = shuffle_buffer or devices_lib.selected_count(manifest, split, devices)
    # Shuffle before repeat: with the whole split in the buffer every epoch is a permutation.
    ds = ds.shuffle(max(1, buffer), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds if dir_copies is None else ds.enumerate()  # positions for the DIR draw
    if skip_batches:
        ds = ds.skip(int(skip_batches) * batch_size)  # element skips share the cached tensors
    if dir_copies is not None:
        pid = 0 if input_context is None else input_context.input_pipeline_id
        pick = functools.partial(dir_copies.pick, pipeline_id=pid)
        ds = ds.map(pick, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    batch_index = tf.data.Dataset.range(int(skip_batches), np.iinfo(np.int64).max)
    base_seed = tf.constant([seed, _MIXUP_STREAM], tf.int64)
    style_seed = tf.constant([seed, _MIXSTYLE_STREAM], tf.int64)

    def mix(index, batch):
        features, label = batch
        target = None
        if lookup is not None:
            label, target = label
        labels = tf.one_hot(label, num_classes, dtype=tf.float32)  # [B, C]
        if target is not None:
            labels = tf.concat([labels, target], axis=-1)  # [B, 2C]: mixed alike
        if freq_mixstyle_p:
            features = mixstyle_lib.freq_mixstyle_batch(
                features,
                p=freq_mixstyle_p,
                alpha=freq_mixstyle_alpha,
                seed=tf.random.experimental.stateless_fold_in(style_seed, index),
            )
        batch_seed = tf.random.experimental.stateless_fold_in(base_seed, index)
        return mixup_lib.mixup_batch(features, labels, alpha=mixup_alpha, seed=batch_seed)

    ds = tf.data.Dataset.zip(batch_index, ds)
    ds = ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(
    manifest: Manifest,
    split: str = "evaluate",
    *,
    representations: Sequence[str],
    batch_size: int,
    normalization: Mapping | None = None,
    cache: bool = False,
    check: bool = True,
):
    """One pass over a split, in record order (the order of `manifest.split(split).files`).

    Args:
      manifest: the features folder.
      split: 'evaluate', 'train' or 'test'.
      representations: stored representations to feed.
      batch_size: examples per batch; the last batch may be smaller.
      normalization: `{rep: {'mean', 'std'}}`, e.g. a model_dir's normalization.json; default
        the manifest's train statistics.
      cache: keep the examples in memory (for repeated validation during training).
      check: `check_shards` first.

    Returns:
      A `tf.data.Dataset` of `({rep: float32 [B, T, F]}, {'label': int64 [B], 'filename',
      'device', 'city', 'identifier': string [B]})`.
    """
    import tensorflow as tf

    representations = tuple(representations)
    ds = _examples(
        manifest,
        split,
        representations,
        normalization,
        seed=None,
        check=check,
        finish=lambda ex: ({r: ex[r] for r in representations}, {k: ex[k] for k in META_KEYS}),
    )
    if cache:
        ds = ds.cache()
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
