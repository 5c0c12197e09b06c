"""export.py end to end on tiny models: artifacts, names, int8 parameters, size rule, overwrite.

Models are 1B networks at width 0.25 on the 1-second synthetic 1B set (`tiny_1b_features`),
written as training runs by `export_helpers.make_model_dir`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from export_helpers import make_model_dir, tiny_model_config

from asc_keras.config import ExportConfig, FeatureConfig
from asc_keras.export import (
    artifacts,
    calibration,
    errors,
    exporter,
    rewrite,
    savedmodel,
    tflite,
)
from asc_keras.inference import tflite_runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EF_INPUTS = ("logmel", "cqt", "gamma")


def _quiet(*_):
    pass


def _export(tmp_path, model_dir, name="export", **kwargs):
    cfg = ExportConfig(
        model_dir=model_dir,
        export_dir=str(tmp_path / name),
        calibration_examples=12,
        parity_examples=6,
        **kwargs,
    )
    return cfg, exporter.run(cfg, log=_quiet)


def test_stratified_indices_are_seeded_and_balanced():
    labels = np.repeat([0, 1, 2], [100, 30, 6])
    idx = calibration.stratified_indices(labels, 20, seed=0)
    assert len(idx) == 20 and len(set(idx)) == 20
    assert np.all(np.diff(idx) > 0)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.min() >= 1 and counts[0] > counts[1] > 0
    assert np.array_equal(idx, calibration.stratified_indices(labels, 20, seed=0))
    assert not np.array_equal(idx, calibration.stratified_indices(labels, 20, seed=1))
    assert len(calibration.stratified_indices(labels, 1000, seed=0)) == len(labels)
    # A scene-sorted list: the first N rows would hold one class; the sample holds all three.
    assert set(labels[calibration.stratified_indices(labels, 3, seed=5)]) == {0, 1, 2}


def test_calibration_sample_shares_devices_equally(tiny_1a_features):
    """About 70 % of a DCASE 1A training split is device a: the int8 sample must not be."""
    from asc_keras.data.manifest import load_manifest

    rng = np.random.default_rng(0)
    devices = np.array(["a"] * 700 + ["b"] * 100 + ["c"] * 100 + ["s1"] * 60 + ["s2"] * 40)
    labels = rng.integers(0, 10, len(devices))
    idx = calibration.stratified_indices(labels, 200, seed=0, devices=devices)
    names, counts = np.unique(devices[idx], return_counts=True)
    assert dict(zip(names, counts, strict=True)) == {"a": 40, "b": 40, "c": 40, "s1": 40, "s2": 40}
    assert len(set(labels[idx[devices[idx] == "a"]])) == 10  # classes within each device
    assert np.array_equal(idx, calibration.stratified_indices(labels, 200, seed=0, devices=devices))
    # A device with too few clips gives them all, the others take the rest.
    idx = calibration.stratified_indices(labels, 250, seed=0, devices=devices)
    assert (devices[idx] == "s2").sum() == 40 and len(idx) == 250

    manifest = load_manifest(tiny_1a_features[0])
    labels, devices = calibration.split_strata(manifest, "train")
    names, sizes = np.unique(devices, return_counts=True)
    assert len(names) > 1 and sizes.max() > sizes.min()
    sample = calibration.sample_split(
        manifest, "train", len(names) * int(sizes.min()), seed=0, representations=("logmel",)
    )
    assert sample.device_counts() == {str(n): int(sizes.min()) for n in names}


def test_export_ef_spsmt(tmp_path, tiny_1b_features):
    folder, feature_cfg, _ = tiny_1b_features
    model_cfg = tiny_model_config(feature_cfg, inputs=EF_INPUTS, fusion="ef", strategies=("spsmt",))
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder
    )
    cfg, report = _export(tmp_path, run_dir)
    out = cfg.export_dir
    assert report["passed"], report["failures"]
    assert sorted(os.listdir(out)) == sorted(
        [
            "saved_model",
            "model.tflite",
            "model_int8.tflite",
            "export_config.json",
            "export_report.json",
        ]
    )  # three inputs: no audio-in model
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p or p.endswith(".rejected")]

    # Named signature, raw features in, every output of the model out.
    sm_inputs, sm_outputs = savedmodel.signature_io(os.path.join(out, "saved_model"))
    assert sm_inputs == {r: [None, feature_cfg.num_frames, 64] for r in EF_INPUTS}
    assert set(sm_outputs) == {"probs", "frames"}
    # Every weight stored once (keras-team/keras#23553 stores each twice after track(model)).
    import tensorflow as tf

    from asc_keras.models import load_model

    stored = tf.train.load_checkpoint(os.path.join(out, "saved_model", "variables", "variables"))
    shapes = stored.get_variable_to_shape_map()
    stored_params = sum(int(np.prod(v)) for k, v in shapes.items() if not k.startswith("_CHECK"))
    keras_model = load_model(os.path.join(run_dir, "model.keras"), compile=False)
    # The trained weights only: the export's rewrites (and their fixed 1/8 pool weights) are
    # in the TFLite files, not in what TensorFlow runs.
    assert rewrite.for_tflite(keras_model).count_params() > keras_model.count_params()
    assert stored_params == keras_model.count_params()
    assert not [p for p in os.listdir(out) if p.endswith(artifacts.CONVERTER_SOURCE_SUFFIX)]
    for name in ("model.tflite", "model_int8.tflite"):
        ins, outs = tflite_runner.tflite_io(os.path.join(out, name))
        assert set(ins) == set(EF_INPUTS) and set(outs) == {"probs", "frames"}
    ins, outs = tflite_runner.tflite_io(os.path.join(out, "model_int8.tflite"))
    # Raw float features in (normalized in float inside), int8 network, int8 outputs.
    assert all(d["dtype"] == np.float32 for d in ins.values())
    for d in outs.values():
        assert d["dtype"] == np.int8
        scale, zero_point = d["quantization"]
        assert scale > 0 and -128 <= zero_point <= 127
    with open(os.path.join(out, "model_int8.tflite"), "rb") as f:
        computed_in_float = tflite.float_ops(f.read())
    assert sorted(op for op, _ in computed_in_float) == ["MUL", "MUL", "MUL", "SUB", "SUB", "SUB"]
    assert all("_normalization" in name for _, name in computed_in_float)
    for name in ("model.tflite", "model_int8.tflite"):  # layer/op names, no model scopes
        tensors = tflite_runner.make_interpreter(os.path.join(out, name)).get_tensor_details()
        assert all(t["name"].count("/") <= 1 and ";" not in t["name"] for t in tensors)
        assert any(t["name"].startswith("ef_block2_conv1") for t in tensors)
    config = json.load(open(os.path.join(out, "export_config.json")))
    assert config["artifacts"]["model_int8.tflite"]["input_dtype"] == "float32"
    assert config["artifacts"]["model_int8.tflite"]["output_dtype"] == "int8"

    saved = json.load(open(os.path.join(out, "export_report.json")))
    assert saved["passed"] and saved["size"]["limit_bytes"] == 512_000
    assert saved["calibration"]["split"] == "train"
    assert set(saved["calibration"]["class_counts"]) == {"indoor", "outdoor", "transportation"}
    assert saved["parity_data"]["split"] == "evaluate"
    int8 = next(a for a in saved["artifacts"] if a["name"] == "model_int8.tflite")
    assert {p["artifact"] for p in int8["parity"]} == {
        "model_int8.tflite litert",
        "model_int8.tflite tensorflow",
    }
    assert all(p["passed"] for p in int8["parity"])
    assert all(p["argmax_agreement"] >= 0.8 for p in int8["parity"][:2])
    float_checks = next(a for a in saved["artifacts"] if a["name"] == "model.tflite")["parity"]
    assert max(p["max_abs_diff"] for p in float_checks) < 1e-5

    config = json.load(open(os.path.join(out, "export_config.json")))
    assert config["task"] == "1b" and config["classes"] == ["indoor", "outdoor", "transportation"]
    assert (
        FeatureConfig(
            **{
                **config["feature_config"],
                "representations": tuple(config["feature_config"]["representations"]),
            }
        )
        == feature_cfg
    )
    assert config["outputs"]["probs"] == [3]
    assert set(config["normalization"]) == set(EF_INPUTS)


@pytest.mark.slow
def test_export_spsmf_lambda_and_audio(tmp_path, tiny_1b_features):
    """SPSMF's Lambda band cuts survive every conversion; a logmel model also gets audio in."""
    folder, feature_cfg, _ = tiny_1b_features
    model_cfg = tiny_model_config(feature_cfg, inputs=("logmel",), strategies=("spsmf",))
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder
    )
    cfg, report = _export(tmp_path, run_dir)
    assert report["passed"], report["failures"]
    names = {a["name"]: a for a in report["artifacts"]}
    assert all(a["status"] == "ok" for a in names.values())
    assert set(names) == {
        "saved_model",
        "model.tflite",
        "model_int8.tflite",
        "audio_saved_model",
        "model_audio.tflite",
    }
    _, outs = tflite_runner.tflite_io(os.path.join(cfg.export_dir, "model_int8.tflite"))
    assert set(outs) == {"probs", *(f"logmel_band{k}_probs" for k in range(5))}
    ins, _ = tflite_runner.tflite_io(os.path.join(cfg.export_dir, "model_audio.tflite"))
    assert list(ins) == ["waveform"]
    assert list(ins["waveform"]["shape_signature"]) == [-1, feature_cfg.num_samples]
    audio = names["model_audio.tflite"]["parity"]
    assert report["parity_data"]["audio"]  # the clips' own audio from the dataset folder
    assert all(p["passed"] for p in audio) and audio[0]["max_abs_diff"] < 1e-3


def test_export_1a_without_data(tmp_path):
    """A 1A run (no 500 KB rule) without its features: float artifacts, synthetic parity."""
    feature_cfg = FeatureConfig(clip_seconds=1.0)
    model_cfg = tiny_model_config(
        feature_cfg, task="1a", backbone="1a", inputs=("cqt",), width=1 / 16
    )
    run_dir = make_model_dir(tmp_path / "run", model_cfg, task="1a", feature_cfg=feature_cfg)
    with pytest.raises(errors.ExportError, match="int8 calibration needs"):
        _export(tmp_path, run_dir)
    cfg, report = _export(tmp_path, run_dir, int8=False)
    assert report["passed"] and report["size"]["limit_bytes"] is None
    assert report["parity_data"]["split"] == "synthetic"
    assert sorted(a["name"] for a in report["artifacts"]) == ["model.tflite", "saved_model"]


@pytest.mark.slow
def test_overwrite_refused_and_failed_checks_rejected(tmp_path, tiny_1b_features):
    folder, feature_cfg, _ = tiny_1b_features
    model_cfg = tiny_model_config(feature_cfg, inputs=("gamma",))
    # Probabilities spread as in the LiteRT tests: a random tiny network scaled 10x sits on
    # softmax edges where one int8 step of a logit moves a probability by more than 0.1.
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder, spread=3.0
    )
    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier export")
    with pytest.raises(errors.OverwriteError, match="--overwrite"):
        _export(tmp_path, run_dir, audio_frontend=False)
    assert os.listdir(out) == ["keep.txt"]
    # An impossible int8 tolerance: the check fails, nothing replaces the old export.
    with pytest.raises(errors.ParityError, match="model_int8.tflite"):
        _export(tmp_path, run_dir, overwrite=True, int8_tolerance=1e-9)
    assert os.listdir(out) == ["keep.txt"]
    rejected = json.load(open(tmp_path / "export.rejected" / "export_report.json"))
    assert not rejected["passed"] and rejected["failures"]
    _, report = _export(tmp_path, run_dir, overwrite=True)
    assert report["passed"] and "keep.txt" not in os.listdir(out)


@pytest.mark.slow
def test_export_cli_fails_on_the_1b_size_rule(tmp_path, tiny_1b_features):
    folder, feature_cfg, _ = tiny_1b_features
    model_cfg = tiny_model_config(feature_cfg, inputs=EF_INPUTS, fusion="ef", width=1.1)
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder
    )
    out = tmp_path / "export"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "export.py"),
            f"--model_dir={run_dir}",
            f"--export_dir={out}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "the 1b model breaks its complexity rule" in proc.stderr
    assert "non-BatchNorm parameters at their dtype's bytes" in proc.stderr
    assert "over 512,000 bytes (500 KB)" in proc.stderr
    assert not out.exists()


def test_flatten_time_distributed_keeps_the_numbers():
    """SPSMT's TimeDistributed(Dense) becomes one Dense over frames; same weights, same outputs."""
    import keras

    from asc_keras.export import serving
    from asc_keras.strategies import build_model

    feature_cfg = FeatureConfig(clip_seconds=0.5, logmel_bins=64, representations=("logmel",))
    model = build_model(tiny_model_config(feature_cfg, inputs=("logmel",), strategies=("spsmt",)))
    flat = serving.flatten_time_distributed(model)
    assert any(isinstance(la, keras.layers.TimeDistributed) for la in model.layers)
    assert not any(isinstance(la, keras.layers.TimeDistributed) for la in flat.layers)
    assert flat.count_params() == model.count_params()
    x = {
        "logmel": np.random.default_rng(0)
        .standard_normal((2, *feature_cfg.shapes["logmel"]))
        .astype(np.float32)
    }
    a, b = model(x, training=False), flat(x, training=False)
    assert set(a) == set(b) == {"probs", "frames"}
    for k in a:
        np.testing.assert_allclose(np.asarray(b[k]), np.asarray(a[k]), atol=1e-6)
    plain = build_model(tiny_model_config(feature_cfg, inputs=("logmel",)))
    assert serving.flatten_time_distributed(plain) is plain
