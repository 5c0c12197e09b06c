"""DIR augmentation in the training stream: join the precomputed copies, pick one per example.

`pipeline.train_dataset(..., dir_set=s, dir_p=p)` reads the DIR shards of `s` (see
`dir_shards`) beside the train shards, file order and interleave identical, and zips the two
record streams: record i of a DIR shard belongs to record i of its train shard (checked by file
name). Per example:

- `Copies.attach(example, serialized)`: adds `copies/<rep>`: float32 `[k, T, F]`, the clip's
  `k` copies (`k` = K for device-a clips, 0 for the others), normalized with the same per-bin
  statistics as the clean features. This runs before the cache, so the cache holds them.
- `Copies.pick(position, (features, label))`: after shuffle and repeat, `position` being the
  example's index in the stream (from the resume point on, as a resumed run needs): with
  probability `p`, when `k > 0`, the features become copy `c` (one index for every
  representation: the same convolved audio), else stay clean. `u0, u1 ~ U[0, 1)` come from
  `stateless_uniform` seeded by `fold_in(fold_in([seed, DIR_STREAM], pipeline id), position)`:
  copy taken iff `u0 < p`, `c = min(floor(u1 * k), k - 1)`. So the stream stays a pure
  function of the seed and the step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from asc_keras.data import schema
from asc_keras.data.manifest import ManifestError

DIR_STREAM = 0x646972  # folds the run seed into a stream of its own for the DIR draw
COPY_PREFIX = "copies/"


@dataclasses.dataclass(frozen=True)
class Copies:
    """The DIR shards of a train split and how the stream uses them."""

    paths: tuple[str, ...]  # DIR shards, in the order of the train shards they mirror
    shapes: Mapping[str, tuple[int, int]]  # {rep: (T, F)} of the representations fed
    dtype: str
    p: float
    seed: int

    def attach(self, example: dict, serialized, stats: Mapping) -> dict:
        """`example` plus `copies/<rep>` float32 `[k, T, F]`, normalized by `stats`."""
        import tensorflow as tf

        tf_dtype = {"float32": tf.float32, "float16": tf.float16}[self.dtype]
        spec = {r: tf.io.FixedLenFeature([], tf.string) for r in self.shapes}
        spec[schema.FILENAME] = tf.io.FixedLenFeature([], tf.string)
        rec = tf.io.parse_single_example(serialized, spec)
        same = tf.debugging.Assert(
            tf.equal(rec[schema.FILENAME], example[schema.FILENAME]),
            ["DIR shard out of step with the train shards at", example[schema.FILENAME]],
        )
        out = dict(example)
        with tf.control_dependencies([same]):
            for r, (t, f) in self.shapes.items():
                flat = tf.io.decode_raw(rec[r], tf_dtype, little_endian=True)
                x = tf.cast(tf.reshape(flat, [-1, t, f]), tf.float32)  # [k, T, F]
                mean, std = stats[r]
                out[COPY_PREFIX + r] = (x - tf.constant(mean)) / tf.constant(std)
        return out

    def pick(self, position, example, *, pipeline_id: int = 0):
        """`(features, label)` of `example` with the clean maps or one copy (see above)."""
        import tensorflow as tf

        features, label = example
        base = tf.constant([self.seed, DIR_STREAM], tf.int64)
        base = tf.random.experimental.stateless_fold_in(base, pipeline_id)
        seed = tf.random.experimental.stateless_fold_in(base, position)
        u = tf.random.stateless_uniform([2], seed=seed, dtype=tf.float32)
        reps = [k for k in features if not k.startswith(COPY_PREFIX)]
        k = tf.shape(features[COPY_PREFIX + reps[0]])[0]
        take = tf.logical_and(k > 0, u[0] < self.p)
        c = tf.minimum(tf.cast(tf.floor(u[1] * tf.cast(k, tf.float32)), tf.int32), k - 1)
        out = {}
        for r in reps:
            copies = features[COPY_PREFIX + r]
            out[r] = tf.cond(take, lambda x=copies: x[c], lambda x=features[r]: x)
        return out, label


def copies_of(example: Mapping) -> dict:
    """The `copies/<rep>` entries of an example (none without DIR)."""
    return {k: v for k, v in example.items() if k.startswith(COPY_PREFIX)}


def make_copies(
    dir_set, train_shards: Sequence[str], representations: Sequence[str], *, manifest, p, seed
) -> Copies:
    """`Copies` of a `dir_shards.DirSet` for the train shards `train_shards` (paths).

    Raises:
      ManifestError: the set mirrors other train shards, or a DIR shard's record count differs
        from its train shard's; one line naming the file.
    """
    names = tuple(os.path.basename(x) for x in train_shards)
    if tuple(dir_set.mirrors) != names:
        raise ManifestError(
            f"{dir_set.folder}: DIR set {dir_set.key} mirrors other train shards than the "
            "manifest's; rerun prepare.py with the --dir_* flags to recompute it"
        )
    for clean, copy in zip(train_shards, dir_set.shard_paths(), strict=True):
        if schema.count_records(copy) != schema.count_records(clean):
            raise ManifestError(
                f"{copy}: its record count differs from {os.path.basename(clean)}'s; rerun "
                "prepare.py with the --dir_* flags to recompute it"
            )
    shapes = {r: tuple(manifest.shapes[r]) for r in representations}
    return Copies(tuple(dir_set.shard_paths()), shapes, manifest.dtype, float(p), int(seed))
