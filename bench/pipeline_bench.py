"""Benchmark: tf.data training-pipeline throughput (examples/s) at the real feature shapes.

    python bench/pipeline_bench.py [--examples=512] [--batches=150] [--batch_size=64]

Writes synthetic TFRecord shards (64 clips each, `asc_keras.data.schema`) of 10-second clips
with the paper's shapes, for two cases:

- `1A logmel`: one representation, `[862, 40]` (the single-representation 1A models);
- `4 representations`: logmel `[862, 40]`, cqt `[862, 64]`, gamma `[862, 64]`, mfcc `[862, 40]`
  (SPSMR and the fusions, which read all four).

Then measures `asc_keras.data.pipeline.train_dataset` (file shuffle, interleave, parse,
normalize, cache, shuffle over the whole split, repeat, batch 64, mixup alpha 0.2, prefetch):

- `first pass`: the first epoch, reading and parsing the shards into the cache;
- `steady state`: later epochs (cached, repeated), the rate a long training run sees.

Prints a table. Target: >= 2,000 examples/s steady state for 1A Log-Mel on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

CASES = {
    "1A logmel": {"logmel": (862, 40)},
    "4 representations": {
        "logmel": (862, 40),
        "cqt": (862, 64),
        "gamma": (862, 64),
        "mfcc": (862, 40),
    },
}
CLIPS_PER_SHARD = 64


def write_records(folder: str, shapes: dict, num_examples: int, *, seed: int = 0):
    """Synthetic shards and a manifest of `num_examples` train clips; returns the Manifest."""
    import numpy as np
    import tensorflow as tf

    from asc_keras import labels
    from asc_keras.config import FeatureConfig
    from asc_keras.data import manifest as manifest_lib
    from asc_keras.data import schema

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    classes = labels.classes("1a")
    count = -(-num_examples // CLIPS_PER_SHARD)
    shards, files = [], []
    for s in range(count):
        name = f"train-{s:05d}-of-{count:05d}.tfrecord"
        with tf.io.TFRecordWriter(os.path.join(folder, name)) as w:
            for i in range(s * CLIPS_PER_SHARD, min(num_examples, (s + 1) * CLIPS_PER_SHARD)):
                feats = {
                    r: rng.normal(size=shape).astype(np.float32) for r, shape in shapes.items()
                }
                fname = f"audio/clip-{i}-a.wav"
                w.write(
                    schema.serialize_example(
                        feats, label=i % len(classes), filename=fname, device="a"
                    )
                )
                files.append(fname)
        shards.append(name)
    split = manifest_lib.SplitInfo("train", num_examples, tuple(shards), tuple(files))
    norm = {
        r: {"mean": np.zeros(s[1], np.float32), "std": np.ones(s[1], np.float32)}
        for r, s in shapes.items()
    }
    m = manifest_lib.Manifest(
        path=folder,
        task="1a",
        classes=classes,
        feature_config=FeatureConfig(representations=tuple(shapes)),
        dtype="float32",
        shapes=shapes,
        splits={"train": split},
        normalization=norm,
    )
    manifest_lib.write_manifest(m)
    return manifest_lib.load_manifest(folder)


def measure(manifest, *, batches: int, batch_size: int) -> tuple[float, float]:
    """`(first pass, steady state)` examples/s of the training pipeline."""
    from asc_keras.data import pipeline

    ds = pipeline.train_dataset(
        manifest,
        representations=tuple(manifest.shapes),
        batch_size=batch_size,
        seed=0,
        mixup_alpha=0.2,
    )
    it = iter(ds)
    per_epoch = manifest.split("train").num_examples // batch_size
    t0 = time.perf_counter()
    for _ in range(per_epoch):
        next(it)
    first = per_epoch * batch_size / (time.perf_counter() - t0)
    for _ in range(per_epoch):  # settle: one more epoch
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    steady = batches * batch_size / (time.perf_counter() - t0)
    return first, steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=512, help="synthetic clips per case")
    parser.add_argument("--batches", type=int, default=150, help="timed steady-state batches")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()

    import tensorflow as tf

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, shapes in CASES.items():
            t0 = time.perf_counter()
            m = write_records(os.path.join(tmp, name.replace(" ", "_")), shapes, args.examples)
            write_s = time.perf_counter() - t0
            first, steady = measure(m, batches=args.batches, batch_size=args.batch_size)
            mb = sum(a * b for a, b in shapes.values()) * 4 / 2**20
            rows.append((name, mb, first, steady, write_s))
    print(
        f"tf.data training pipeline, batch {args.batch_size} with mixup, {args.examples} clips, "
        f"{os.cpu_count()} CPU(s), TensorFlow {tf.__version__}"
    )
    print(f"{'case':20s} {'MiB/clip':>9s} {'first pass ex/s':>16s} {'steady ex/s':>12s}")
    for name, mb, first, steady, _ in rows:
        print(f"{name:20s} {mb:9.2f} {first:16.0f} {steady:12.0f}")
    ok = rows[0][3] >= 2000
    print(f"target: 1A logmel steady state >= 2,000 examples/s: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
