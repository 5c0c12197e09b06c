"""Seeded samples of a precomputed split, stratified by device and class: int8 calibration and
parity inputs.

Input: a features folder (`asc_keras.data.manifest`) and a split. Output: `Examples`, the RAW
features `{rep: float32 [N, T, F]}` of N clips with their labels, devices and file names `[N]`,
in record order.

The sample is shared equally among the split's recording devices (as far as each device has
clips; DCASE 2020 1A's training split is about 70 % device a, and a sample in proportion would
calibrate the int8 ranges on device a and leave the other devices' levels to chance), then
within each device drawn per class (the record's `label`, -1 for unlabeled clips) in proportion
to the class sizes by largest remainder, at least one clip of every class when the device's
share allows it, each draw from a `numpy` generator seeded by `seed`, so the sample never
depends on how the split's files happen to be sorted (a scene-sorted list's first N rows hold
one or two scenes). A split of one device (1B) is simply class-stratified. The clips are the
task's own (1 s segments for TAU 2022). Two passes over the shards: the first parses only
labels and devices, the second the chosen records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from asc_keras.data import schema
from asc_keras.data.manifest import Manifest


@dataclasses.dataclass(frozen=True)
class Examples:
    """Raw features of a few clips.

    Attributes:
        features: `{rep: float32 [N, T, F]}`.
        labels: int64 `[N]` class indices (-1 unlabeled).
        filenames: `[N]` clip file names relative to the dataset folder.
        split: Where they come from ('train', 'evaluate', or 'synthetic').
        devices: `[N]` recording device of every clip ('' unknown; empty for synthetic data).
    """

    features: Mapping[str, np.ndarray]
    labels: np.ndarray
    filenames: tuple[str, ...]
    split: str
    devices: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, *, batch_size: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """`{rep: float32 [<=batch_size, T, F]}` in order (the representative dataset)."""
        for start in range(0, len(self), batch_size):
            yield {k: v[start : start + batch_size] for k, v in self.features.items()}

    def class_counts(self) -> dict[int, int]:
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def device_counts(self) -> dict[str, int]:
        values, counts = np.unique(np.asarray(self.devices, str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


def equal_shares(sizes: Sequence[int], n: int) -> np.ndarray:
    """`n` items shared as equally as possible among groups of `sizes` items (no group gets
    more than it has; what a small group cannot take goes to the others; the first groups get
    the remainder)."""
    sizes = np.asarray(sizes, np.int64)
    share = np.zeros(len(sizes), np.int64)
    left = min(int(n), int(sizes.sum()))
    while left > 0:
        open_ = np.flatnonzero(share < sizes)
        each = max(1, left // len(open_))
        for k in open_:
            take = min(each, int(sizes[k] - share[k]), left)
            share[k] += take
            left -= take
            if left == 0:
                break
    return share


def stratified_indices(
    labels: Sequence[int], n: int, *, seed: int, devices: Sequence[str] | None = None
) -> np.ndarray:
    """Indices of a random sample of `min(n, len(labels))` items, stratified by device (equal
    shares) and, within each device, by class (proportional shares).

    Args:
        labels: `[N]` class of every item.
        n: Sample size.
        seed: Seed of the draw.
        devices: `[N]` device of every item (None: one device).

    Returns:
        Sorted int64 indices.
    """
    if devices is not None:
        devices = np.asarray(devices, str)
        names, sizes = np.unique(devices, return_counts=True)
        if len(names) > 1:
            labels = np.asarray(labels, np.int64)
            chosen = []
            for k, (name, quota) in enumerate(zip(names, equal_shares(sizes, n), strict=True)):
                members = np.flatnonzero(devices == name)
                picked = stratified_indices(labels[members], int(quota), seed=seed + 7919 * k)
                chosen.append(members[picked])
            return np.sort(np.concatenate(chosen)).astype(np.int64)
    labels = np.asarray(labels, np.int64)
    total = len(labels)
    n = min(int(n), total)
    if n <= 0:
        return np.zeros(0, np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    if n >= len(classes):
        # One per class, the rest in proportion to class size by largest remainder.
        quota = np.ones(len(classes), np.int64)
        share = (n - len(classes)) * (counts - 1) / max(1, total - len(classes))
    else:
        quota = np.zeros(len(classes), np.int64)
        share = n * counts / total
    quota += np.floor(share).astype(np.int64)
    remainder = share - np.floor(share)
    order = np.lexsort((np.arange(len(classes)), -remainder))
    for k in order[: n - int(quota.sum())]:
        quota[k] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
        if q > 0
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def split_strata(manifest: Manifest, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(labels int64 [N], devices str [N])` of a split in record order (parses only the
    metadata)."""
    import tensorflow as tf

    parse = schema.make_parser({}, dtype=manifest.dtype)
    ds = tf.data.TFRecordDataset(manifest.shard_paths(split))

    def strata(record):
        example = parse(record)
        return example[schema.LABEL], example[schema.DEVICE]

    ds = ds.map(strata, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    labels, devices = [], []
    for label, device in ds.batch(1024).as_numpy_iterator():  # [<=1024] each
        labels.append(label)
        devices.extend(d.decode("utf-8") for d in device)
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, str)
    return np.concatenate(labels).astype(np.int64), np.asarray(devices, str)


def read_examples(
    manifest: Manifest, split: str, indices: Sequence[int], representations: Sequence[str]
) -> Examples:
    """The records at `indices` (record order) of a split, raw features of `representations`."""
    import tensorflow as tf

    indices = np.asarray(sorted(int(i) for i in indices), np.int64)
    shapes = {r: tuple(manifest.shapes[r]) for r in representations}
    parse = schema.make_parser(shapes, dtype=manifest.dtype)
    wanted = tf.constant(indices)
    ds = tf.data.TFRecordDataset(manifest.shard_paths(split)).enumerate()
    ds = ds.filter(lambda i, _: tf.reduce_any(tf.equal(i, wanted)))
    ds = ds.map(lambda _, r: parse(r))
    features = {r: [] for r in representations}
    labels, files, devices = [], [], []
    for ex in ds.as_numpy_iterator():
        for r in representations:
            features[r].append(ex[r])  # [T, F]
        labels.append(int(ex[schema.LABEL]))
        files.append(ex[schema.FILENAME].decode("utf-8"))
        devices.append(ex[schema.DEVICE].decode("utf-8"))
    if len(labels) != len(indices):
        raise ValueError(
            f"{manifest.path}: split {split!r} has fewer records than expected "
            f"({len(labels)} of {len(indices)} found)"
        )
    for r in representations:
        for k, x in enumerate(features[r]):
            if not np.all(np.isfinite(x)):
                raise ValueError(f"{manifest.path}: non-finite {r} values in {files[k]}")
    return Examples(
        features={r: np.stack(v).astype(np.float32) for r, v in features.items()},  # [N, T, F]
        labels=np.asarray(labels, np.int64),
        filenames=tuple(files),
        split=split,
        devices=tuple(devices),
    )


def sample_split(
    manifest: Manifest, split: str, n: int, *, seed: int, representations: Sequence[str]
) -> Examples:
    """A seeded sample of `n` clips of `split` (all clips if fewer), stratified by device and
    class (see the module docstring).

    Raises:
        ManifestError: The split was not precomputed.
        CorruptShardError: A shard is truncated or corrupt.
        ValueError: The split is empty, or a chosen clip holds non-finite values.
    """
    from asc_keras.data.pipeline import check_shards

    manifest.split(split)  # raises ManifestError naming the folder when absent
    check_shards(manifest, split)  # truncated or corrupt shards: one line naming the file
    labels, devices = split_strata(manifest, split)
    if len(labels) == 0:
        raise ValueError(f"{manifest.path}: split {split!r} is empty")
    return read_examples(
        manifest, split, stratified_indices(labels, n, seed=seed, devices=devices), representations
    )


def synthetic_examples(
    shapes: Mapping[str, Sequence[int]], normalization: Mapping, n: int, *, seed: int
) -> Examples:
    """Stand-in raw features when no dataset is at hand: `mean + std * N(0, 1)` per bin.

    Only for parity checks of float artifacts (never for int8 calibration).
    """
    rng = np.random.default_rng(seed)
    features = {}
    for rep, (frames, bins) in shapes.items():
        mean = np.asarray(normalization[rep]["mean"], np.float32)
        std = np.asarray(normalization[rep]["std"], np.float32)
        noise = rng.standard_normal((n, frames, bins)).astype(np.float32)
        features[rep] = mean + std * noise  # [n, T, F]
    return Examples(
        features=features,
        labels=np.full(n, -1, np.int64),
        filenames=tuple(f"synthetic-{i}" for i in range(n)),
        split="synthetic",
    )
