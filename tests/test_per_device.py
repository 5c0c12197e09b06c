"""Per-device fine-tuning (DCASE 2025): the device filter of the training stream, `--init_from`
(exact starting weights, a refused model change), and on a tiny synthetic TAU 2022 set the whole
path: general run -> fine-tuned for device b -> evaluate.py and predict.py with
`--device_models`, which use b's model for b clips and the general model for the others.

Data: a synthetic TAU 2022 set of 70 training clips (a: 20, b, c, s1-s3: 10 each) and 180
evaluate clips (20 per device), Log-Mel only; models at width 0.05.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
from absl import flags

from asc_keras import flags as flags_lib
from asc_keras.data import synthetic

REPO = pathlib.Path(__file__).resolve().parent.parent


def _main(script: str):
    spec = importlib.util.spec_from_file_location(f"asc_{script}_main", REPO / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def tau(tmp_path_factory):
    """`(data_dir, features_dir)`: the set, its Log-Mel features precomputed."""
    from asc_keras.config import DataConfig, FeatureConfig
    from asc_keras.data import precompute

    root = tmp_path_factory.mktemp("tau_devices")
    data_dir = str(root / "data")
    synthetic.generate(
        data_dir,
        task="tau2022",
        clips_per_class=2,
        clips_per_location=1,
        clip_seconds=1.0,
        subsegments=2,
        parallel_fraction=0.5,
        seed=3,
    )
    data_cfg = DataConfig(
        data_dir=data_dir, features_dir=str(root / "f"), task="tau2022", num_workers=1
    )
    feature_cfg = FeatureConfig(clip_seconds=1.0, logmel_bins=64, representations=("logmel",))
    precompute.ensure_features(feature_cfg, data_cfg, progress=False, log=lambda *_: None)
    return data_dir, str(root / "f")


@pytest.fixture
def absl_flags():
    flags_lib.define_all()
    yield lambda argv: (flags.FLAGS.unparse_flags(), flags_lib.parse(["x", *argv]))
    flags.FLAGS.unparse_flags()


def _common(tau) -> list[str]:
    data_dir, features_dir = tau
    return [
        "--task=tau2022",
        f"--data_dir={data_dir}",
        f"--features_dir={features_dir}",
        "--num_workers=1",
        "--representations=logmel",
        "--model_inputs=logmel",
        "--width=0.05",
    ]


def _train_flags(tau, model_dir, *extra) -> list[str]:
    return [
        *_common(tau),
        f"--model_dir={model_dir}",
        "--batch_size=8",
        "--train_steps=3",
        "--eval_every=0",
        "--checkpoint_every=3",
        "--mixup_alpha=0",
        *extra,
    ]


def _manifest(tau):
    from asc_keras.data.manifest import load_manifest

    folders = [os.path.join(tau[1], d) for d in os.listdir(tau[1])]
    return load_manifest(next(f for f in folders if os.path.isdir(f)))


def test_only_the_devices_clips_reach_training(tau):
    import tensorflow as tf

    from asc_keras.data import devices, pipeline, schema

    manifest = _manifest(tau)
    parse = schema.make_parser(manifest.shapes, dtype=manifest.dtype)
    clips = {}  # raw Log-Mel bytes -> device, from the shards
    for r in map(parse, tf.data.TFRecordDataset(manifest.shard_paths("train"))):
        clips[r["logmel"].numpy().tobytes()] = r["device"].numpy().decode()
    b_clips = {k for k, d in clips.items() if d == "b"}
    assert len(b_clips) == 10 and len(clips) == 70
    identity = {"logmel": {"mean": np.zeros(64, np.float32), "std": np.ones(64, np.float32)}}
    ds = pipeline.train_dataset(
        manifest,
        representations=("logmel",),
        batch_size=5,
        seed=2,
        mixup_alpha=0.0,
        normalization=identity,
        devices=("b",),
    )
    seen = [x.tobytes() for f, _ in ds.take(4) for x in f["logmel"].numpy()]  # two epochs
    assert set(seen[:10]) == set(seen[10:]) == b_clips  # each epoch a permutation of b's clips
    assert devices.selected_count(manifest, "train", ("b", "c")) == 20
    with pytest.raises(
        devices.DeviceSelectionError, match=r"no train clip of device 's4'.*b \(10\)"
    ):
        devices.selected_count(manifest, "train", ("s4",))


def test_train_refuses_an_absent_device_and_reproduce_devices(tau, tmp_path, absl_flags):
    from asc_keras.data.devices import DeviceSelectionError

    absl_flags(_train_flags(tau, tmp_path / "s4", "--train_devices=s4"))
    with pytest.raises(DeviceSelectionError, match="device 's4'"):
        _main("train")(["train.py"])
    assert not (tmp_path / "s4").exists()  # refused before the run folder is made
    absl_flags(_train_flags(tau, tmp_path / "gpu", "--devices=0,1"))
    with pytest.raises(ValueError, match="reproduce.py's list of GPUs.*--train_devices"):
        flags_lib.train_config()
    absl_flags(["--devices=0,1,2,3"])
    assert flags.FLAGS.devices == ["0", "1", "2", "3"]  # reproduce.py's flag is untouched


@pytest.fixture(scope="module")
def general(tau, tmp_path_factory):
    """A tiny general run trained for 3 steps (in-process, through train.py's main)."""
    run_dir = tmp_path_factory.mktemp("general") / "general"
    flags_lib.define_all()
    flags.FLAGS.unparse_flags()
    flags_lib.parse(["x", *_train_flags(tau, run_dir)])
    try:
        assert _main("train")(["train.py"]) in (None, 0)
    finally:
        flags.FLAGS.unparse_flags()
    return str(run_dir)


def test_init_from_starts_from_the_run_weights_and_refuses_another_model(tau, general, absl_flags):
    import dataclasses

    import keras

    from asc_keras.strategies import build_model
    from asc_keras.training import init_from

    absl_flags(_common(tau))
    feature_cfg = flags_lib.feature_config(log=lambda *_: None)
    model_cfg = flags_lib.model_config(feature_cfg)
    record = json.loads(pathlib.Path(general, "config.json").read_text())
    init = init_from.read_init(
        general,
        task="tau2022",
        classes=record["classes"],
        feature_cfg=feature_cfg,
        model_cfg=model_cfg,
    )
    trained = keras.saving.load_model(os.path.join(general, "model.keras"), compile=False)
    model = build_model(model_cfg, seed=7)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(model.get_weights(), trained.get_weights(), strict=True)
    )
    init.apply(model)
    for a, b in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # step 0 of the fine-tuning = the run's final weights
    assert len(init.sha256) == 64
    wider = dataclasses.replace(model_cfg, width=0.1)
    with pytest.raises(init_from.InitFromError, match=r"same model config.*width: 0\.05 -> 0\.1"):
        init_from.read_init(
            general,
            task="tau2022",
            classes=record["classes"],
            feature_cfg=feature_cfg,
            model_cfg=wider,
        )


def _tsv(path) -> dict[str, list[str]]:
    lines = pathlib.Path(path).read_text().splitlines()
    return {line.split("\t")[0]: line.split("\t") for line in lines[1:]}


def test_fine_tune_then_evaluate_and_predict_with_device_models(
    tau, general, tmp_path, absl_flags, capsys
):
    from asc_keras.evaluation import evaluator
    from asc_keras.inference import loader

    models = tmp_path / "models"
    b_dir = models / "b"
    absl_flags(
        _train_flags(
            tau,
            b_dir,
            f"--init_from={general}",
            "--train_devices=b",
            "--learning_rate=0.05",  # far from the general model, so the choice shows
        )
    )
    assert _main("train")(["train.py"]) in (None, 0)
    record = json.loads((b_dir / "config.json").read_text())
    assert record["init_from"]["path"] == os.path.abspath(general)
    assert len(record["init_from"]["weights_sha256"]) == 64
    assert record["train_config"]["train_devices"] == ["b"]

    out = tmp_path / "eval"
    absl_flags(
        [*_common(tau), f"--model_dir={general}", f"--device_models={models}", f"--out_dir={out}"]
    )
    assert _main("evaluate")(["evaluate.py"]) in (None, 0)
    printed = capsys.readouterr().out
    assert "per-device %" in printed and "comparison" in printed
    rows = json.loads((out / "devices.json").read_text())
    assert rows["b"]["model"] == "b" and rows["a"]["model"] == "general"
    assert rows["s4"]["general_accuracy"] == rows["s4"]["per_device_accuracy"]
    combined, alone = (
        _tsv(out / "per_device" / "predictions.tsv"),
        _tsv(out / "general" / "predictions.tsv"),
    )
    manifest = _manifest(tau)
    b_probs, meta = evaluator.predict(
        loader.load_predictor(str(b_dir)),
        manifest,
        split="evaluate",
        normalization=loader.runs.read_run(str(b_dir)).normalization,
        batch_size=64,
    )
    differ = 0
    for name, device, probs in zip(meta["filename"], meta["device"], b_probs, strict=True):
        got = np.array([float(v) for v in combined[name][4:]])
        if device == "b":
            np.testing.assert_allclose(got, probs, atol=1e-6)
            differ += combined[name][4:] != alone[name][4:]
        else:
            assert combined[name] == alone[name]
    assert differ > 0  # b's model is not the general one
    assert json.loads((out / "comparison.json").read_text())["reference"] == "general"

    audio = pathlib.Path(tau[0], "audio")
    b_file = str(next(audio.glob("*-b.wav")))
    a_file = str(next(audio.glob("*-a.wav")))
    absl_flags([f"--model={general}", f"--device_models={models}"])
    assert _main("predict")(["predict.py", b_file, a_file]) in (None, 0)
    printed = capsys.readouterr().out
    general_part, device_part = printed.split("per-device models")
    assert "general model:" in general_part
    lines = {line.split()[0]: line.split() for line in device_part.splitlines()[2:]}
    assert lines[b_file][1:3] == ["b", "b"] and lines[a_file][1:3] == ["a", "general"]
    expected = loader.load_classifier(str(b_dir)).classify(b_file).probs
    np.testing.assert_allclose([float(v) for v in lines[b_file][4:]], expected, atol=1e-4)


def test_init_from_applies_an_spsmt_models_weights_loaded_from_model_keras(tmp_path):
    """SPSMT's frame head wraps Dense in TimeDistributed: a freshly built model names those
    variables `ef_fc1/ef_fc1_dense/kernel`, one loaded from model.keras `ef_fc1_dense/kernel`;
    the weights still go to the same variables (the tau2022_ef_spsmt student fine-tuned per
    device)."""
    import keras

    from asc_keras.models import load_model
    from asc_keras.strategies import build_model
    from asc_keras.training import init_from

    fv = flags_lib.flagfile_values(
        os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs/tau2022_ef_spsmt.flags"),
        ("--data_dir=/unused", "--model_dir=/unused", "--width=0.0625"),
    )
    model_cfg = flags_lib.model_config(flags_lib.feature_config(fv, log=lambda *_: None), fv)
    path = str(tmp_path / "model.keras")
    build_model(model_cfg, seed=1).save(path)
    trained = load_model(path)
    init = init_from.InitFrom(
        path=str(tmp_path),
        model_path=path,
        names=tuple(v.path for v in trained.weights),
        weights=tuple(keras.ops.convert_to_numpy(v) for v in trained.weights),
        sha256="0" * 64,
        normalization={},
    )
    model = build_model(model_cfg, seed=7)
    assert [v.path for v in model.weights] != list(init.names)  # the naming differs
    init.apply(model)
    for a, b in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
