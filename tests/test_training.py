"""Training run: model_dir layout, TensorBoard, resume rules, bad state, strategies, precision."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil

import numpy as np
import pytest
from conftest import feature_flags

from asc_keras.config import ModelConfig, TrainConfig
from asc_keras.training import callbacks, checkpoints, setup, trainer


def _quiet(*_):
    pass


def _model_cfg(feature_cfg, *, width=0.125, **kw):
    return ModelConfig(
        backbone="1b",
        inputs=("logmel",),
        input_bins={"logmel": feature_cfg.bins("logmel")},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=width,
        **kw,
    )


def _train_cfg(model_dir, **kw):
    defaults = dict(
        model_dir=str(model_dir),
        train_steps=3,
        batch_size=4,
        eval_every=2,
        checkpoint_every=2,
        log_every=1,
        eval_batch_size=16,
    )
    defaults.update(kw)
    return TrainConfig(**defaults)


def _run(features, model_dir, *, model_kw=None, **train_kw):
    _, feature_cfg, data_cfg = features
    return trainer.run(
        feature_cfg,
        data_cfg,
        _model_cfg(feature_cfg, **(model_kw or {})),
        _train_cfg(model_dir, **train_kw),
        progress=False,
        log=_quiet,
    )


def _copy_features(features, tmp_path, monkeypatch):
    """A private copy of the tiny 1B features that `ensure_features` hands to the run."""
    from asc_keras.data import precompute

    folder, feature_cfg, data_cfg = features
    copy = str(tmp_path / "features_copy")
    shutil.copytree(folder, copy)
    monkeypatch.setattr(precompute, "ensure_features", lambda *a, **k: copy)
    return copy


def _scalar_tags(event_dir):
    import tensorflow as tf

    tags = {}
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_learning_rate_schedule():
    from asc_keras.training import optimizer as optimizer_lib

    cfg = TrainConfig()
    schedule = optimizer_lib.learning_rate_schedule(cfg)
    for step, k in ((0, 0), (199, 0), (200, 1), (399, 1), (11999, 59)):
        assert float(schedule(step)) == pytest.approx(1e-3 * 0.91**k, rel=1e-5)  # float32
        assert cfg.learning_rate_at(step) == pytest.approx(1e-3 * 0.91**k)
    opt = optimizer_lib.make_optimizer(dataclasses.replace(cfg, precision="mixed_float16"))
    assert type(opt).__name__ == "LossScaleOptimizer"
    opt = optimizer_lib.make_optimizer(dataclasses.replace(cfg, precision="mixed_bfloat16"))
    assert type(opt) is optimizer_lib.PyTorchAdam  # bfloat16 needs no loss scaling


def test_train_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="distribution"):
        TrainConfig(distribution="tpu")
    with pytest.raises(ValueError, match="mixup_alpha"):
        TrainConfig(mixup_alpha=-0.1)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="float16")
    with pytest.raises(ValueError, match="steps_per_loop"):
        TrainConfig(steps_per_loop=-1)


def test_run_writes_model_dir(tiny_1b_features, tmp_path):
    from asc_keras.data.manifest import load_manifest
    from asc_keras.models import load_model

    folder, feature_cfg, data_cfg = tiny_1b_features
    model_dir = tmp_path / "run"
    out = trainer.run(
        feature_cfg,
        data_cfg,
        _model_cfg(feature_cfg),
        _train_cfg(model_dir),
        flags_text="--width=0.125\n",
        progress=False,
        log=_quiet,
    )
    assert out["step"] == 3 and out["resumed_from"] == 0 and out["features"] == folder
    for name in (
        "config.json",
        "flags.txt",
        "normalization.json",
        "model.keras",
        "metrics.json",
        "confusion.png",
        "predictions.tsv",
    ):
        assert (model_dir / name).exists(), name
    assert (model_dir / "flags.txt").read_text() == "--width=0.125\n"
    record = json.loads((model_dir / "config.json").read_text())
    assert record["task"] == "1b" and record["classes"] == ["indoor", "outdoor", "transportation"]
    assert record["model_config"]["width"] == 0.125
    assert record["feature_config"]["clip_seconds"] == 1.0
    assert record["train_config"]["train_steps"] == 3
    assert record["train_config"]["adam_update"] == "pytorch"
    assert record["optimizer"]["class"] == "asc_keras>PyTorchAdam"
    norm = json.loads((model_dir / "normalization.json").read_text())
    manifest = load_manifest(folder)
    assert set(norm) == {"logmel"}
    np.testing.assert_allclose(
        norm["logmel"]["std"], manifest.normalization["logmel"]["std"], rtol=1e-6
    )
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["all"]["num_examples"] == manifest.split("evaluate").num_examples
    assert out["metrics"]["all"]["accuracy"] == metrics["all"]["accuracy"]
    # Checkpoints at steps 2 and 3 (the end).
    assert sorted(
        os.path.basename(p) for p in glob.glob(str(model_dir / "checkpoints/*.index"))
    ) == ["ckpt-2.index", "ckpt-3.index"]
    # The saved model loads in safe mode and predicts what the in-memory model wrote into
    # predictions.tsv, clip by clip (the final evaluation is of the in-memory model).
    model = load_model(str(model_dir / "model.keras"), compile=False)
    assert set(model.output_names) == {"probs"}
    from asc_keras.evaluation import evaluator

    stats = {r: {k: np.asarray(v, np.float32) for k, v in s.items()} for r, s in norm.items()}
    loaded, probs, meta = evaluator.evaluate_keras_model(
        model, manifest, normalization=stats, batch_size=5
    )
    rows = [
        line.split("\t") for line in (model_dir / "predictions.tsv").read_text().splitlines()[1:]
    ]
    assert [r[0] for r in rows] == list(meta["filename"])
    written = np.array([[float(v) for v in r[4:]] for r in rows])  # the in-memory model's, [N, 3]
    np.testing.assert_allclose(probs, written, rtol=1e-6, atol=1e-7)
    assert np.abs(written - written.mean(axis=0)).max() > 1e-4  # clips differ: a real check
    assert loaded["all"]["log_loss"] == pytest.approx(metrics["all"]["log_loss"], rel=1e-6)
    assert loaded["all"]["accuracy"] == metrics["all"]["accuracy"]
    # TensorBoard: losses, learning rate, validation metrics, per-device accuracy, confusion.
    train_tags = _scalar_tags(model_dir / "train")
    assert {"loss", "learning_rate", "steps_per_second"} <= set(train_tags)
    assert train_tags["loss"] == [1, 2, 3]
    eval_tags = _scalar_tags(model_dir / "eval")
    assert {"accuracy", "log_loss", "micro_accuracy_per_device/a", "confusion_matrix"} <= set(
        eval_tags
    )
    assert eval_tags["accuracy"] == [2, 3]


def test_resume_continues_and_refuses_other_config(tiny_1b_features, tmp_path):
    model_dir = tmp_path / "run"
    _run(tiny_1b_features, model_dir, train_steps=2, eval_every=0)
    out = _run(tiny_1b_features, model_dir, train_steps=4, eval_every=0)
    assert out["resumed_from"] == 2 and out["step"] == 4
    again = _run(tiny_1b_features, model_dir, train_steps=4, eval_every=0)  # finished: no-op
    assert again["resumed_from"] == 4 and again["step"] == 4
    with pytest.raises(
        checkpoints.IncompatibleModelDirError,
        match=r"config\.json.*model_config\.width: 0\.125 -> 0\.25",
    ):
        _run(tiny_1b_features, model_dir, train_steps=4, model_kw=dict(width=0.25))
    with pytest.raises(checkpoints.IncompatibleModelDirError, match="seed"):
        _run(tiny_1b_features, model_dir, train_steps=4, seed=1)


def test_checkpoints_without_config_are_refused(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint").write_text("x")
    with pytest.raises(checkpoints.IncompatibleModelDirError, match="without config.json"):
        checkpoints.check_resumable(str(tmp_path), {})


def test_truncated_shard_stops_training_naming_it(tiny_1b_features, tmp_path, monkeypatch):
    from asc_keras.data.manifest import load_manifest
    from asc_keras.data.pipeline import CorruptShardError

    copy = _copy_features(tiny_1b_features, tmp_path, monkeypatch)
    shard = load_manifest(copy).shard_paths("train")[-1]
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)  # (at a record boundary: 2 records per 4)
    with pytest.raises(CorruptShardError, match=os.path.basename(shard)) as e:
        _run(tiny_1b_features, tmp_path / "run")
    assert "\n" not in str(e.value)


def test_corrupt_record_found_while_training(tiny_1b_features, tmp_path, monkeypatch):
    from asc_keras.data.manifest import load_manifest
    from asc_keras.data.pipeline import CorruptShardError

    copy = _copy_features(tiny_1b_features, tmp_path, monkeypatch)
    shard = load_manifest(copy).shard_paths("train")[0]
    with open(shard, "r+b") as f:  # a flipped byte inside the first record's data
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0x55]))
    with pytest.raises(CorruptShardError, match=os.path.basename(shard)):
        _run(tiny_1b_features, tmp_path / "run")


def test_features_that_do_not_match_the_config(tiny_1b_features, tmp_path, monkeypatch):
    from asc_keras.data import manifest as manifest_lib

    copy = _copy_features(tiny_1b_features, tmp_path, monkeypatch)
    m = manifest_lib.load_manifest(copy)
    other = dataclasses.replace(m.feature_config, hop_length=256)
    manifest_lib.write_manifest(dataclasses.replace(m, feature_config=other))
    with pytest.raises(manifest_lib.ManifestError, match=r"manifest\.json.*hop_length"):
        _run(tiny_1b_features, tmp_path / "run")


def test_nan_loss_names_the_step(tiny_1b_features, tmp_path):
    import tensorflow as tf

    _, feature_cfg, data_cfg = tiny_1b_features
    shape = (4, feature_cfg.num_frames, feature_cfg.bins("logmel"))
    x = np.zeros((3,) + shape, np.float32)
    labels = np.tile(np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], (3, 1, 1))
    labels[2, 1] = np.nan  # the third batch (NaN features may be zeroed by ReLU on some CPUs)
    train = tf.data.Dataset.from_tensor_slices(({"logmel": x}, labels)).repeat()
    model_dir = tmp_path / "run"
    with pytest.raises(callbacks.NonFiniteLossError, match="training step 3: non-finite loss"):
        trainer.run(
            feature_cfg,
            data_cfg,
            _model_cfg(feature_cfg),
            _train_cfg(model_dir, train_steps=4),
            datasets={"train": train},
            log=_quiet,
        )
    assert (model_dir / "checkpoints" / "ckpt-2.index").exists()
    assert not (model_dir / "model.keras").exists()


@pytest.mark.slow
def test_mirrored_mixed_precision_jit(tiny_1b_features, tmp_path):
    import keras

    before = keras.config.dtype_policy().name
    out = _run(
        tiny_1b_features,
        tmp_path / "run",
        train_steps=2,
        eval_every=0,
        distribution="mirrored",
        precision="mixed_float16",
        jit_compile=True,
    )
    assert out["step"] == 2 and np.isfinite(out["train_loss"]["total"])
    assert keras.config.dtype_policy().name == before  # restored


@pytest.mark.slow
def test_deterministic_runs_match(tiny_1b_features, tmp_path):
    from asc_keras.models import load_model

    before = setup.determinism_state()[::2]
    weights = []
    for name in ("a", "b"):
        _run(tiny_1b_features, tmp_path / name, train_steps=2, eval_every=0, deterministic=True)
        weights.append(load_model(str(tmp_path / name / "model.keras")).get_weights())
    assert setup.determinism_state()[::2] == before  # op determinism and seed restored
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_flags_round_trip(monkeypatch, tmp_path):
    from absl import flags

    from asc_keras import flags as flags_lib

    flags_lib.define_all()
    flags.FLAGS.unparse_flags()
    try:
        flags.FLAGS(
            [
                "train.py",
                f"--model_dir={tmp_path}",
                "--train_steps=7",
                "--batch_size=8",
                "--mixed_precision",
                "--distribution=mirrored",
                "--seed=3",
                "--steps_per_loop=5",
            ]
        )
        cfg = flags_lib.train_config()
        assert (cfg.train_steps, cfg.batch_size, cfg.seed) == (7, 8, 3)
        assert cfg.precision == "mixed_float16" and cfg.distribution == "mirrored"
        assert cfg.steps_per_loop == 5 and cfg.auto_steps_per_loop == 5
        text = flags_lib.resolved_flags()
        (tmp_path / "flags.txt").write_text(text)
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train.py", f"--flagfile={tmp_path / 'flags.txt'}"])
        assert flags_lib.train_config() == cfg
        flags.FLAGS.unparse_flags()
        flags.FLAGS(
            [
                "train.py",
                f"--model_dir={tmp_path}",
                "--mixed_precision",
                "--precision=mixed_bfloat16",
            ]
        )
        with pytest.raises(ValueError, match="contradicts --precision=mixed_bfloat16"):
            flags_lib.train_config()
    finally:
        flags.FLAGS.unparse_flags()


@pytest.mark.slow
def test_two_workers_multi_worker(tiny_1b_features, tmp_path):
    """`--distribution=multi_worker` with a 2-worker TF_CONFIG cluster on localhost."""
    import pathlib
    import socket
    import subprocess
    import sys

    repo = pathlib.Path(__file__).resolve().parent.parent
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    model_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        str(repo / "train.py"),
        "--flagfile=configs/1b_logmel.flags",
        *feature_flags(tiny_1b_features),
        f"--model_dir={model_dir}",
        "--width=0.125",
        "--batch_size=4",
        "--train_steps=4",
        "--checkpoint_every=2",
        "--eval_every=0",
        "--distribution=multi_worker",
    ]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = dict(
            os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""
        )
        procs.append(
            subprocess.Popen(
                cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    assert "step 4/4" in outputs[0]
    assert (model_dir / "model.keras").exists() and (model_dir / "metrics.json").exists()
    assert sorted(os.listdir(model_dir / "checkpoints")) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]
    assert not glob.glob(str(model_dir / "workertemp_*"))  # the other worker's scratch is gone


def test_run_computes_missing_features(tiny_1b_dir, tmp_path, monkeypatch):
    from asc_keras import runs
    from asc_keras.config import DataConfig, FeatureConfig

    # Relative --features_dir and --model_dir: the run record still finds the features from
    # any other directory (evaluate.py and export.py read them from there).
    monkeypatch.chdir(tmp_path)
    feature_cfg = FeatureConfig(clip_seconds=1.0, logmel_bins=64, representations=("logmel",))
    data_cfg = DataConfig(data_dir=tiny_1b_dir, features_dir="features", task="1b", num_workers=1)
    out = trainer.run(
        feature_cfg,
        data_cfg,
        _model_cfg(feature_cfg),
        _train_cfg("run", train_steps=1, eval_every=0),
        progress=False,
        log=_quiet,
    )
    assert out["metrics"]["all"]["num_examples"] > 0
    monkeypatch.chdir(tmp_path.parent)
    recorded = runs.read_run(str(tmp_path / "run")).features
    assert os.path.isabs(recorded) and recorded.startswith(str(tmp_path / "features"))
    assert os.path.exists(os.path.join(recorded, "manifest.json"))
