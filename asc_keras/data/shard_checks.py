"""Checks of the TFRecord shards a pipeline reads: corrupt input is named, never skipped.

- `check_shard(path)` walks one shard's record framing (headers only) and returns its record
  count; `check_shards(manifest, split)` checks every shard of a split against its sidecar
  (`<shard>.json`) and the manifest's counts.
- `find_bad_shard(paths, parse)` re-reads shards one by one (CRCs, parsing, finiteness) and
  returns the first bad one's one-line reason; `checked_iter` turns an error while iterating a
  dataset into that one line (`CorruptShardError`).
- `assert_finite(example)`: the parse-stage check that fails on NaN or infinite features with the
  clip's file name.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator, Sequence

from asc_keras.data import schema
from asc_keras.data.manifest import Manifest
from asc_keras.errors import AscError


class CorruptShardError(AscError, RuntimeError):
    """A TFRecord shard that is truncated, corrupt, or holds bad values."""


def _remedy(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    return f"delete {folder} and rerun prepare.py (or train.py) to recompute the features"


def check_shard(path: str) -> int:
    """Walk the TFRecord framing of one shard (headers only); returns its number of records.

    A TFRecord is `uint64 length | uint32 crc | data[length] | uint32 crc`. A file that ends
    inside a record (an interrupted copy, a full disk) or after garbage fails here.

    Raises:
      CorruptShardError: one line naming the file.
    """
    try:
        size = os.path.getsize(path)
        count, offset = 0, 0
        with open(path, "rb") as f:
            while offset < size:
                if size - offset < 12:
                    raise CorruptShardError(
                        f"{path}: truncated TFRecord shard: {size - offset} stray byte(s) after "
                        f"record {count} at byte {offset}; {_remedy(path)}"
                    )
                f.seek(offset)
                (length,) = struct.unpack("<Q", f.read(8))
                end = offset + 16 + length
                if end > size:
                    raise CorruptShardError(
                        f"{path}: truncated or corrupt TFRecord shard: record {count} at byte "
                        f"{offset} needs {16 + length} bytes, the file ends at {size}; "
                        f"{_remedy(path)}"
                    )
                offset, count = end, count + 1
    except OSError as e:
        raise CorruptShardError(f"{path}: unreadable TFRecord shard ({e})") from None
    return count


def _sidecar_count(path: str) -> int | None:
    """Records the precompute step says it wrote into a shard (its `<shard>.json`), if known."""
    try:
        with open(path + ".json") as f:
            return int(json.load(f)["num_examples"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_shards(manifest: Manifest, split: str) -> None:
    """`check_shard` on every shard of `split`; record counts against each shard's sidecar
    (when there is one) and against the manifest."""
    paths = manifest.shard_paths(split)
    total = 0
    for path in paths:
        count = check_shard(path)
        expected = _sidecar_count(path)
        if expected is not None and count != expected:
            raise CorruptShardError(
                f"{path}: truncated TFRecord shard: {count} records, {expected} were written; "
                f"{_remedy(path)}"
            )
        total += count
    expected = manifest.split(split).num_examples
    if total != expected:
        raise CorruptShardError(
            f"{os.path.join(manifest.path, 'manifest.json')}: split {split!r} has {total} "
            f"records in its shards, the manifest says {expected}; {_remedy(paths[0])}"
        )


def find_bad_shard(paths: Sequence[str], parse) -> str | None:
    """Read every shard in full (CRCs, parsing, finiteness); the one-line reason of the first bad.

    Returns None when every shard reads cleanly.
    """
    import tensorflow as tf

    for path in paths:
        ds = tf.data.TFRecordDataset(path).map(parse).map(assert_finite)
        try:
            for _ in ds:
                pass
        except tf.errors.OpError as e:
            reason = " ".join(str(e.message).split())[:300]
            return f"{path}: corrupt TFRecord shard ({reason}); {_remedy(path)}"
    return None


def checked_iter(iterable: Iterable, paths: Sequence[str], parse) -> Iterator:
    """Iterate `iterable` (a dataset built from `paths`), naming the shard when reading fails.

    Raises:
      CorruptShardError: a shard could not be read or parsed; one line naming the file.
    """
    import tensorflow as tf

    try:
        yield from iterable
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        reason = find_bad_shard(paths, parse)
        if reason is None:
            raise
        raise CorruptShardError(reason) from e


def assert_finite(example):
    """`example` unchanged, after asserting every float32 feature is finite (names the clip)."""
    import tensorflow as tf

    checks = []
    for name, x in example.items():
        if x.dtype == tf.float32:
            ok = tf.reduce_all(tf.math.is_finite(x))
            checks.append(
                tf.debugging.Assert(
                    ok, ["non-finite feature values in", name, "of clip", example[schema.FILENAME]]
                )
            )
    with tf.control_dependencies(checks):
        return {k: tf.identity(v) for k, v in example.items()}
