"""Training on the clips of some recording devices only (per-device fine-tuning, DCASE 2025).

Inputs: a features folder's manifest and a split; the records' `device` field (the
`schema.DEVICE` string, from meta.csv's `source_label` or the file name).

- `device_counts(manifest, split) -> {device: clips}`: one pass over the split's shards that
  parses the `device` field only;
- `selected_count(manifest, split, devices) -> int`: the clips of `devices` in the split (all
  its clips without devices); a
  device with no clip there is a one-line `DeviceSelectionError` naming the devices the split has;
- `keep_devices(devices)`: a `tf.data` predicate on serialized records (the features are not
  decoded for clips it drops), which `pipeline.train_dataset(devices=...)` applies before
  parsing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from asc_keras.data import schema
from asc_keras.data.manifest import Manifest
from asc_keras.errors import AscError


class DeviceSelectionError(AscError, ValueError):
    """A requested recording device has no clip in the split."""


def _device_of(serialized):
    import tensorflow as tf

    spec = {schema.DEVICE: tf.io.FixedLenFeature([], tf.string, default_value="")}
    return tf.io.parse_single_example(serialized, spec)[schema.DEVICE]  # string []


def keep_devices(devices: Sequence[str]):
    """`predicate(serialized record) -> bool tensor`: whether the clip's device is in `devices`."""
    import tensorflow as tf

    wanted = tf.constant(list(devices), tf.string)  # [D]

    def keep(serialized):
        return tf.reduce_any(tf.equal(_device_of(serialized), wanted))

    return keep


def device_counts(manifest: Manifest, split: str) -> dict[str, int]:
    """`{device: clips}` of a split, in order of first appearance ('' for an unknown device)."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(manifest.shard_paths(split)).map(
        _device_of, num_parallel_calls=tf.data.AUTOTUNE
    )
    counts: dict[str, int] = {}
    for batch in ds.batch(4096).as_numpy_iterator():
        for device in batch:
            name = device.decode("utf-8")
            counts[name] = counts.get(name, 0) + 1
    return counts


def selected_count(manifest: Manifest, split: str, devices: Sequence[str]) -> int:
    """Clips of `devices` in `split` (no devices: every clip, from the manifest).

    Raises:
        DeviceSelectionError: A device has no clip in the split (one line naming the split's
            devices).
    """
    if not devices:
        return manifest.split(split).num_examples
    counts = device_counts(manifest, split)
    missing = [d for d in devices if not counts.get(d)]
    if missing:
        have = ", ".join(f"{d} ({n})" for d, n in counts.items() if d) or "none recorded"
        raise DeviceSelectionError(
            f"{os.path.join(manifest.path, 'manifest.json')}: no {split} clip of device "
            f"{', '.join(repr(d) for d in missing)} (--train_devices); the {split} split has "
            f"devices {have}"
        )
    return sum(counts[d] for d in dict.fromkeys(devices))
