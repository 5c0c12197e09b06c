"""tf.data pipeline: shapes, normalization, order, resumable position, bad shards."""

from __future__ import annotations

import os

import numpy as np
import pytest

from asc_keras.config import FeatureConfig
from asc_keras.data import manifest as manifest_lib
from asc_keras.data import pipeline, schema

SHAPES = {"logmel": (5, 4), "cqt": (5, 6)}
CLASSES = ("a0", "a1", "a2")


def write_tiny_features(
    folder,
    *,
    num_train=12,
    num_eval=5,
    per_shard=4,
    seed=0,
    nan_clip=None,
    shapes=SHAPES,
    classes=CLASSES,
    feature_cfg=None,
):
    """A hand-made features folder: records whose logmel[0, 0] is the clip number."""
    import tensorflow as tf

    SHAPES, CLASSES = shapes, classes  # noqa: N806
    feature_cfg = feature_cfg or FeatureConfig(representations=tuple(shapes))

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    splits, sums = {}, {}
    for split, n in (("train", num_train), ("evaluate", num_eval)):
        files, shards = [], []
        count = -(-n // per_shard)
        for s in range(count):
            name = f"{split}-{s:05d}-of-{count:05d}.tfrecord"
            with tf.io.TFRecordWriter(os.path.join(folder, name)) as w:
                for i in range(s * per_shard, min(n, (s + 1) * per_shard)):
                    feats = {
                        r: rng.normal(size=shape).astype(np.float32) for r, shape in SHAPES.items()
                    }
                    feats["logmel"][0, 0] = i
                    if split == "train":
                        for r, x in feats.items():
                            sums.setdefault(r, []).append(x)
                    fname = f"audio/{split}-{i}-{'abc'[i % 3]}.wav"
                    if nan_clip == (split, i):
                        feats["cqt"][1, 1] = np.nan
                    w.write(
                        schema.serialize_example(
                            feats, label=i % len(CLASSES), filename=fname, device="abc"[i % 3]
                        )
                    )
                    files.append(fname)
            shards.append(name)
        splits[split] = manifest_lib.SplitInfo(split, n, tuple(shards), tuple(files))
    norm = {
        r: {"mean": np.concatenate(v).mean(0), "std": np.concatenate(v).std(0)}
        for r, v in sums.items()
    }
    m = manifest_lib.Manifest(
        path=str(folder),
        task="1a",
        classes=CLASSES,
        feature_config=feature_cfg,
        dtype="float32",
        shapes=SHAPES,
        splits=splits,
        normalization=norm,
    )
    manifest_lib.write_manifest(m)
    return manifest_lib.load_manifest(str(folder))


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_features(tmp_path / "features")


def _clip_ids(features, manifest):
    mean, std = pipeline.normalization_arrays(manifest.normalization, "logmel")
    return np.rint(features["logmel"][..., 0, 0] * std[0] + mean[0]).astype(int)


def test_eval_dataset_order_shapes_meta(tiny):
    ds = pipeline.eval_dataset(tiny, "evaluate", representations=("logmel", "cqt"), batch_size=2)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[1]["label"]) for b in batches] == [2, 2, 1]
    feats, meta = batches[0]
    assert feats["logmel"].shape == (2, 5, 4) and feats["cqt"].shape == (2, 5, 6)
    assert feats["logmel"].dtype == np.float32
    assert set(meta) == {"label", "filename", "device", "city", "identifier"}
    names = [f.decode() for b in batches for f in b[1]["filename"]]
    assert names == list(tiny.split("evaluate").files)
    ids = np.concatenate([_clip_ids(b[0], tiny) for b in batches])
    np.testing.assert_array_equal(ids, np.arange(5))
    assert list(np.concatenate([b[1]["label"] for b in batches])) == [0, 1, 2, 0, 1]


def test_normalization_default_and_override(tiny):
    ds = pipeline.eval_dataset(tiny, "train", representations=("cqt",), batch_size=12)
    x = next(iter(ds))[0]["cqt"].numpy().reshape(-1, 6)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-4)
    ident = {"cqt": {"mean": np.zeros(6), "std": np.ones(6)}}
    raw = next(
        iter(
            pipeline.eval_dataset(
                tiny, "train", representations=("cqt",), batch_size=12, normalization=ident
            )
        )
    )[0]["cqt"]
    mean, std = tiny.normalization["cqt"]["mean"], tiny.normalization["cqt"]["std"]
    np.testing.assert_allclose((raw.numpy() - mean) / std, x.reshape(12, 5, 6), atol=1e-5)


def test_train_dataset_shapes_labels_and_epochs(tiny):
    ds = pipeline.train_dataset(
        tiny, representations=("logmel",), batch_size=4, seed=3, mixup_alpha=0.0
    )
    seen = []
    for feats, labels in ds.take(6).as_numpy_iterator():  # 2 epochs of 12
        assert feats["logmel"].shape == (4, 5, 4) and labels.shape == (4, 3)
        ids = _clip_ids(feats, tiny)
        np.testing.assert_array_equal(labels, np.eye(3, dtype=np.float32)[ids % 3])
        seen.extend(ids)
    assert sorted(seen) == sorted(list(range(12)) * 2)
    assert seen[:12] != sorted(seen[:12])  # shuffled


def test_train_order_is_seeded_and_skip_resumes(tiny):
    def take(seed, n, skip=0):
        ds = pipeline.train_dataset(
            tiny, representations=("logmel", "cqt"), batch_size=3, seed=seed, skip_batches=skip
        )
        return list(ds.take(n).as_numpy_iterator())

    full = take(7, 9)
    again = take(7, 9)
    resumed = take(7, 4, skip=5)
    for a, b in zip(full, again, strict=True):
        np.testing.assert_array_equal(a[0]["cqt"], b[0]["cqt"])
    for a, b in zip(full[5:], resumed, strict=True):
        np.testing.assert_array_equal(a[0]["logmel"], b[0]["logmel"])
        np.testing.assert_array_equal(a[1], b[1])
    other = take(8, 9)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(full, other, strict=True))


def test_train_mixup_labels_are_convex(tiny):
    ds = pipeline.train_dataset(
        tiny, representations=("logmel",), batch_size=6, seed=0, mixup_alpha=0.2
    )
    for _, labels in ds.take(4).as_numpy_iterator():
        np.testing.assert_allclose(labels.sum(1), 1, atol=1e-6)
        assert (labels >= 0).all()
    assert not np.isin(labels, [0.0, 1.0]).all()


def test_input_context_shards_files(tiny):
    import tensorflow as tf

    ids = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
        ds = pipeline.train_dataset(
            tiny,
            representations=("logmel",),
            batch_size=2,
            seed=1,
            mixup_alpha=0.0,
            input_context=ctx,
            shuffle_buffer=4,
        )
        ids.append({int(j) for f, _ in ds.take(6).as_numpy_iterator() for j in _clip_ids(f, tiny)})
    assert ids[0].isdisjoint(ids[1]) and len(ids[0] | ids[1]) == 12


def test_truncated_shard_names_the_file(tiny):
    path = tiny.shard_paths("train")[1]
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 37)
    with pytest.raises(pipeline.CorruptShardError, match=r"train-00001-of-00003\.tfrecord"):
        pipeline.train_dataset(tiny, representations=("logmel",), batch_size=2, seed=0)
    with pytest.raises(pipeline.CorruptShardError, match="truncated"):
        pipeline.eval_dataset(tiny, "train", representations=("logmel",), batch_size=2)


def test_flipped_byte_is_found_while_iterating(tiny):
    path = tiny.shard_paths("evaluate")[0]
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    pipeline.check_shards(tiny, "evaluate")  # the framing is intact
    ds = pipeline.eval_dataset(tiny, "evaluate", representations=("logmel",), batch_size=2)
    parse = pipeline.make_parse(tiny, ("logmel",))
    paths = tiny.shard_paths("evaluate")
    with pytest.raises(pipeline.CorruptShardError, match=r"evaluate-00000-of-00002\.tfrecord"):
        for _ in pipeline.checked_iter(ds, paths, parse):
            pass


def test_record_count_mismatch(tiny):
    import dataclasses

    splits = dict(tiny.splits)
    splits["train"] = dataclasses.replace(splits["train"], num_examples=13)
    bad = dataclasses.replace(tiny, splits=splits)
    with pytest.raises(pipeline.CorruptShardError, match="13"):
        pipeline.check_shards(bad, "train")


def test_nan_feature_names_the_clip(tmp_path):
    import tensorflow as tf

    m = write_tiny_features(tmp_path / "f", nan_clip=("evaluate", 3))
    ds = pipeline.eval_dataset(m, "evaluate", representations=("cqt",), batch_size=5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="evaluate-3-a.wav"):
        list(ds)
    reason = pipeline.find_bad_shard(m.shard_paths("evaluate"), pipeline.make_parse(m, ("cqt",)))
    assert "evaluate-00000-of-00002" in reason and "\n" not in reason


def test_missing_representation(tiny):
    with pytest.raises(ValueError, match="gamma"):
        pipeline.eval_dataset(tiny, "evaluate", representations=("gamma",), batch_size=2)
