"""The TFRecord schema: the one place that knows every record key.

One `tf.train.Example` per clip:

- `<representation>`: raw little-endian bytes of a `[time, freq]` array (float32 or float16),
  for every representation that was precomputed (`logmel`, `cqt`, `gamma`, `mfcc`);
- `label`: int64 class index in the task's class list, -1 for unlabeled clips;
- `filename`, `device`, `city`, `identifier`: bytes (empty when unknown).

`serialize_example` writes one record from numpy, byte for byte the same in every process (the
feature map is serialized in sorted key order); `make_parser` returns a tf.data map function that
parses a serialized record back into tensors with static shapes (features as float32).
`count_records` walks the framing of a TFRecord file without reading its records.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

import numpy as np

LABEL = "label"
FILENAME = "filename"
DEVICE = "device"
CITY = "city"
IDENTIFIER = "identifier"
STRING_KEYS = (FILENAME, DEVICE, CITY, IDENTIFIER)
UNLABELED = -1


def _bytes_feature(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_example(
    features: Mapping[str, np.ndarray],
    *,
    label: int,
    filename: str,
    device: str = "",
    city: str = "",
    identifier: str = "",
    dtype: str = "float32",
) -> bytes:
    """Serialize one clip.

    Args:
      features: `{representation: [time, freq] array}`.
      label: class index, or `UNLABELED`.
      filename, device, city, identifier: clip metadata (strings).
      dtype: storage dtype, `float32` or `float16`.

    Returns:
      The serialized `tf.train.Example`.
    """
    import tensorflow as tf

    np_dtype = np.dtype(dtype).newbyteorder("<")
    feature = {
        name: _bytes_feature(np.ascontiguousarray(arr, dtype=np_dtype).tobytes())
        for name, arr in features.items()
    }
    feature[LABEL] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
    for key, value in zip(STRING_KEYS, (filename, device, city, identifier), strict=True):
        feature[key] = _bytes_feature(value.encode("utf-8"))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic: map entries in key order, else the bytes vary from process to process.
    return example.SerializeToString(deterministic=True)


def count_records(path: str) -> int | None:
    """Records in a TFRecord file, from its framing (`uint64 length | uint32 crc | data | uint32
    crc` per record; headers only, CRCs unchecked); None when the file ends inside a record."""
    size = os.path.getsize(path)
    count, offset = 0, 0
    with open(path, "rb") as f:
        while offset < size:
            if size - offset < 12:
                return None
            f.seek(offset)
            (length,) = struct.unpack("<Q", f.read(8))
            offset, count = offset + 16 + length, count + 1
    return count if offset == size else None


def make_parser(shapes: Mapping[str, tuple[int, int]], *, dtype: str = "float32"):
    """A function `serialized -> dict of tensors` for `tf.data.Dataset.map`.

    Args:
      shapes: `{representation: (time, freq)}` of the representations to parse (a subset of
        what the records hold is fine).
      dtype: the storage dtype the records were written with.

    Returns:
      `parse(serialized)` giving `{representation: float32 [time, freq], 'label': int64 [],
      'filename' | 'device' | 'city' | 'identifier': string []}`.
    """
    import tensorflow as tf

    tf_dtype = {"float32": tf.float32, "float16": tf.float16}[dtype]
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in shapes}
    spec[LABEL] = tf.io.FixedLenFeature([], tf.int64)
    for key in STRING_KEYS:
        spec[key] = tf.io.FixedLenFeature([], tf.string, default_value="")
    shapes = {name: tuple(int(s) for s in shape) for name, shape in shapes.items()}

    def parse(serialized):
        ex = tf.io.parse_single_example(serialized, spec)
        out = {}
        for name, shape in shapes.items():
            flat = tf.io.decode_raw(ex[name], tf_dtype, little_endian=True)
            out[name] = tf.cast(tf.reshape(flat, shape), tf.float32)  # [time, freq]
        out[LABEL] = ex[LABEL]
        for key in STRING_KEYS:
            out[key] = ex[key]
        return out

    return parse
