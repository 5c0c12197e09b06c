"""Shared test fixtures: tiny datasets in the official DCASE layout, found via tmp paths only.

- `make_layout(root, rows, ...)`: a hand-made dataset folder from `(filename, label, split)` rows
  (noise clips), for reader and bad-input tests.
- `tiny_1a_dir`, `tiny_1b_dir`: session-wide synthetic datasets (1-second clips) from
  `asc_keras.data.synthetic`, and `tiny_1a_features`/`tiny_1b_features`: their precomputed
  features (all representations) as `(features_folder, FeatureConfig, DataConfig)`.
- `check_metrics_against_predictions(metrics, tsv, classes)`: a written metrics.json equals
  scikit-learn's metrics of the predictions.tsv beside it.
- `flagfile_params(rows)`: the paper's flagfiles as test parameters, all but one per network
  family marked `slow` (left out by `make test-fast`).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from asc_keras.config import DataConfig, FeatureConfig

# TensorFlow's portable kernels (oneDNN off), as users' AVX2 CPUs and GPUs run, unless the caller
# chose. Nothing above imports TensorFlow, which reads this once, at its import.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

CLIP_SECONDS = 1.0
TINY_FEATURES_1A = FeatureConfig(clip_seconds=CLIP_SECONDS)
TINY_FEATURES_1B = FeatureConfig(
    clip_seconds=CLIP_SECONDS, logmel_bins=64, representations=("logmel", "cqt", "gamma")
)


def write_wav(
    path, *, seconds=CLIP_SECONDS, sr=44100, channels=1, subtype="PCM_24", seed=0, fmt=None
):
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((int(seconds * sr), channels)).astype(np.float32)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, x if channels > 1 else x[:, 0], sr, subtype=subtype, format=fmt)


def make_layout(root, rows, *, sr=44100, channels=1, seconds=CLIP_SECONDS):
    """Write a dataset folder: audio for every row, meta.csv and the fold lists.

    Args:
      rows: `(filename, label, split)` with split 'train' or 'evaluate'.
    Returns:
      The folder path as a string.
    """
    root = str(root)
    os.makedirs(os.path.join(root, "evaluation_setup"), exist_ok=True)
    for i, (name, _, _) in enumerate(rows):
        write_wav(os.path.join(root, name), seconds=seconds, sr=sr, channels=channels, seed=i)
    with open(os.path.join(root, "meta.csv"), "w") as f:
        f.write("filename\tscene_label\tidentifier\tsource_label\n")
        for name, label, _ in rows:
            scene, city, loc, _, device = os.path.basename(name)[:-4].split("-")
            f.write(f"{name}\t{label}\t{city}-{loc}\t{device}\n")
    for split in ("train", "evaluate"):
        with open(os.path.join(root, "evaluation_setup", f"fold1_{split}.csv"), "w") as f:
            f.write("filename\tscene_label\n")
            for name, label, s in rows:
                if s == split:
                    f.write(f"{name}\t{label}\n")
    with open(os.path.join(root, "evaluation_setup", "fold1_test.csv"), "w") as f:
        f.write("filename\n")
        for name, _, s in rows:
            if s == "evaluate":
                f.write(f"{name}\n")
    return root


SMALL_ROWS_1A = [
    ("audio/airport-lisbon-1000-40000-a.wav", "airport", "train"),
    ("audio/bus-lyon-1001-40001-b.wav", "bus", "train"),
    ("audio/park-paris-1002-40002-a.wav", "park", "train"),
    ("audio/tram-vienna-1003-40003-c.wav", "tram", "train"),
    ("audio/metro-milan-1004-40004-s4.wav", "metro", "evaluate"),
    ("audio/park-prague-1005-40005-a.wav", "park", "evaluate"),
]


@pytest.fixture
def small_1a_dir(tmp_path):
    return make_layout(tmp_path / "data", SMALL_ROWS_1A)


def _synthetic(tmp_path_factory, task):
    from asc_keras.data import synthetic

    root = str(tmp_path_factory.mktemp(f"tiny_{task}") / "data")
    sizes = {
        "1a": dict(clips_per_class=4, clips_per_location=2),
        "1b": dict(clips_per_class=9, clips_per_location=3),
    }[task]
    synthetic.generate(root, task=task, **sizes, clip_seconds=CLIP_SECONDS, seed=1)
    return root


@pytest.fixture(scope="session")
def tiny_1a_dir(tmp_path_factory):
    return _synthetic(tmp_path_factory, "1a")


@pytest.fixture(scope="session")
def tiny_1b_dir(tmp_path_factory):
    return _synthetic(tmp_path_factory, "1b")


def feature_flags(features) -> list[str]:
    """Command-line flags that point a script at a `tiny_*_features` fixture's features."""
    _, feature_cfg, data_cfg = features
    return [
        f"--data_dir={data_cfg.data_dir}",
        f"--features_dir={data_cfg.features_dir}",
        f"--clips_per_shard={data_cfg.clips_per_shard}",
        f"--num_workers={data_cfg.num_workers}",
        f"--clip_seconds={feature_cfg.clip_seconds}",
    ]


def _features(tmp_path_factory, data_dir, task, feature_cfg):
    from asc_keras.data import precompute

    data_cfg = DataConfig(
        data_dir=data_dir,
        features_dir=str(tmp_path_factory.mktemp("features")),
        task=task,
        num_workers=1,
        clips_per_shard=16,
    )
    folder = precompute.ensure_features(feature_cfg, data_cfg, progress=False, log=lambda *_: None)
    return folder, feature_cfg, data_cfg


@pytest.fixture(scope="session")
def tiny_1a_features(tmp_path_factory, tiny_1a_dir):
    return _features(tmp_path_factory, tiny_1a_dir, "1a", TINY_FEATURES_1A)


@pytest.fixture(scope="session")
def tiny_1b_features(tmp_path_factory, tiny_1b_dir):
    return _features(tmp_path_factory, tiny_1b_dir, "1b", TINY_FEATURES_1B)


def shard_logmel(folder, split="train") -> dict:
    """`{clip name: logmel [T, F]}` of a features folder's shards of `split`."""
    import tensorflow as tf

    from asc_keras.data import manifest, schema

    m = manifest.load_manifest(folder)
    parse = schema.make_parser(m.shapes, dtype=m.dtype)
    return {
        r["filename"].numpy().decode(): r["logmel"].numpy()
        for r in map(parse, tf.data.TFRecordDataset(m.shard_paths(split)))
    }


def check_metrics_against_predictions(saved: dict, tsv, classes) -> None:
    """metrics.json's DCASE accuracy and log loss equal scikit-learn's on predictions.tsv."""
    sk = pytest.importorskip("sklearn.metrics")
    with open(tsv) as f:
        lines = [line.rstrip("\n").split("\t") for line in f]
    assert lines[0] == ["filename", "label", "device", "scene_label", *classes]
    rows = lines[1:]
    index = {name: k for k, name in enumerate(classes)}
    y = np.array([index[r[1]] for r in rows])  # [N]
    devices = np.array([r[2] for r in rows])  # [N]
    probs = np.array([[float(v) for v in r[4:]] for r in rows])  # [N, C], 8 digits
    probs = np.clip(probs, 1e-15, 1 - 1e-15)  # the 2020 rule (int8 outputs hold exact zeros)
    probs /= probs.sum(axis=1, keepdims=True)  # and renormalised
    pred = probs.argmax(axis=1)
    assert [r[3] for r in rows] == [classes[k] for k in pred]
    assert saved["classes"] == list(classes) and saved["all"]["num_examples"] == len(rows) > 0
    labels = list(range(len(classes)))
    for key, mask in (("all", np.ones(len(y), bool)), ("device_a", devices == "a")):
        entry = saved[key]
        assert entry["num_examples"] == int(mask.sum())
        recall = sk.recall_score(
            y[mask], pred[mask], labels=labels, average=None, zero_division=np.nan
        )
        assert entry["accuracy"] == pytest.approx(np.nanmean(recall), abs=1e-9)
        assert entry["micro_accuracy"] == pytest.approx(sk.accuracy_score(y[mask], pred[mask]))
        assert entry["log_loss"] == pytest.approx(
            sk.log_loss(y[mask], probs[mask], labels=labels), rel=1e-6
        )
        np.testing.assert_array_equal(
            entry["confusion_matrix"], sk.confusion_matrix(y[mask], pred[mask], labels=labels)
        )


# One flagfile per network family (1A single CNN, 1A EF/MF/LF fusion, SPSMF, SPSMT, 1B, TAU 2022)
# runs in `make test-fast`; every other flagfile is marked `slow` and runs in `make test` only.
REPRESENTATIVE_FLAGFILES = frozenset(
    {"1a_logmel", "1a_ef", "1a_logmel_spsmf", "1a_logmel_spsmt", "1b_ef_spsmt", "tau2022_ef_spsmt"}
)


def flagfile_params(rows) -> list:
    """`rows` (flagfile stems or paths) as `pytest.param`s, slow unless representative."""
    return [
        pytest.param(
            row,
            marks=()
            if os.path.basename(str(row)).removesuffix(".flags") in REPRESENTATIVE_FLAGFILES
            else pytest.mark.slow,
        )
        for row in rows
    ]
