"""`export.py --micro`: the TAU 2022 int8 model in TensorFlow Lite for Microcontrollers.

Data: a synthetic TAU 2022 set (1 s clips), its features, and a run of the low-complexity TAU
2022 configuration (`configs/tau2022_ef_spsmt.flags`: EF of Log-Mel, CQT and Gamma, SPSMT) at
width 0.125, exported once with `micro=True`. The references are independent of the code under
test: the `tflite-micro` and LiteRT interpreters run here directly, the C array and header are
parsed from their text, and the quantization parameters are read through LiteRT.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

from export_helpers import make_model_dir  # noqa: E402

from asc_keras import flags as flags_lib  # noqa: E402
from asc_keras.config import DataConfig, ExportConfig  # noqa: E402
from asc_keras.data import synthetic  # noqa: E402

FLAGFILE = os.path.join(os.path.dirname(__file__), "..", "configs", "tau2022_ef_spsmt.flags")


@pytest.fixture(scope="module")
def tau_run(tmp_path_factory):
    """`(model_dir, features folder, feature_cfg)` of a tiny TAU 2022 EF + SPSMT run."""
    from asc_keras.data import precompute

    root = tmp_path_factory.mktemp("micro")
    synthetic.generate(
        root / "data",
        task="tau2022",
        clips_per_class=2,
        clips_per_location=1,
        clip_seconds=1.0,
        subsegments=1,
        seed=3,
    )
    _, feature_cfg, model_cfg, _ = flags_lib.flagfile_configs(FLAGFILE)
    data_cfg = DataConfig(
        data_dir=str(root / "data"),
        features_dir=str(root / "features"),
        task="tau2022",
        num_workers=1,
        clips_per_shard=16,
    )
    folder = precompute.ensure_features(feature_cfg, data_cfg, progress=False, log=lambda *_: None)
    model_cfg = dataclasses.replace(model_cfg, width=0.125)
    run = make_model_dir(
        root / "run", model_cfg, task="tau2022", feature_cfg=feature_cfg, features=folder
    )
    return run, folder, feature_cfg


def _export_cfg(run, export_dir, **kwargs) -> ExportConfig:
    return ExportConfig(
        model_dir=run,
        export_dir=str(export_dir),
        calibration_examples=8,
        parity_examples=8,
        audio_frontend=False,
        micro=True,
        **kwargs,
    )


@pytest.fixture(scope="module")
def micro_export(tau_run, tmp_path_factory):
    """`(export_dir, report)` of the run exported with `micro=True`."""
    from asc_keras.export import exporter

    run, _, _ = tau_run
    out = tmp_path_factory.mktemp("micro_export") / "export"
    report = exporter.run(_export_cfg(run, out), log=lambda *_: None)
    assert report["passed"], report["failures"]
    return str(out), report


def _signature_names(path) -> tuple[dict, dict]:
    """`({tensor index: input name}, {tensor index: output name})` of the signature (LiteRT)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    return tuple(
        {v["index"]: k for k, v in side.items()}
        for side in (runner.get_input_details(), runner.get_output_details())
    )


def _parity_int8(run, export_dir):
    """The export's parity clips, normalized and quantized with the micro file's input
    parameters (read through LiteRT): `{input tensor index: int8 [N, T, F]}`."""
    from ai_edge_litert.interpreter import Interpreter

    from asc_keras.export import samples, serving

    trained = serving.load_run(run)
    cfg = _export_cfg(run, export_dir + ".unused")
    manifest = samples.find_features(trained, data_cfg=None, features_dir=None)
    examples = samples.parity_sample(cfg, trained, manifest)
    norm = json.load(open(os.path.join(run, "normalization.json")))
    path = os.path.join(export_dir, "micro", "model.tflite")
    names = _signature_names(path)[0]
    interp = Interpreter(model_path=path)
    out = {}
    for pos, d in enumerate(interp.get_input_details()):
        rep = names[d["index"]]
        mean = np.asarray(norm[rep]["mean"], np.float32)
        std = np.maximum(np.asarray(norm[rep]["std"], np.float32), np.float32(1e-5))
        x = (examples.features[rep] - mean) / std
        scale, zero = d["quantization"]
        out[pos] = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    return path, out


@pytest.mark.slow  # the export fixture: about 20 s on 2 idle cores
def test_micro_outputs_equal_litert_on_the_parity_clips(tau_run, micro_export):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro import runtime

    export_dir, report = micro_export
    record = report["micro"]
    path, inputs = _parity_int8(tau_run[0], export_dir)
    model = open(path, "rb").read()
    micro = runtime.Interpreter.from_bytes(model, arena_size=record["arena_bytes"])
    litert = Interpreter(
        model_path=path,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    litert.allocate_tensors()
    ins, outs = litert.get_input_details(), litert.get_output_details()
    worst = 0
    for k in range(len(inputs[0])):
        for pos, d in enumerate(ins):
            micro.set_input(inputs[pos][k : k + 1], pos)
            litert.set_tensor(d["index"], inputs[pos][k : k + 1])
        micro.invoke()
        litert.invoke()
        for pos, d in enumerate(outs):
            a = micro.get_output(pos).astype(int)
            b = litert.get_tensor(d["index"]).astype(int)
            assert a.dtype == b.dtype and a.shape == b.shape
            worst = max(worst, int(np.abs(a - b).max()))
    assert worst <= 1  # measured: identical
    assert record["parity"]["max_steps"] == worst
    assert record["parity"]["keras"]["passed"]
    # batch 1: the shape arithmetic TFLM lacks (REDUCE_PROD) is folded away
    assert "REDUCE_PROD" not in record["operators"] and "CONV_2D" in record["operators"]


@pytest.mark.slow  # the export fixture: about 20 s on 2 idle cores
def test_arena_size_is_the_smallest_that_runs(tau_run, micro_export):
    from tflite_micro import runtime

    export_dir, report = micro_export
    arena = report["micro"]["arena_bytes"]
    assert arena > 1000
    path, inputs = _parity_int8(tau_run[0], export_dir)
    model = open(path, "rb").read()
    micro = runtime.Interpreter.from_bytes(model, arena_size=arena)
    for pos, x in inputs.items():
        micro.set_input(x[:1], pos)
    micro.invoke()
    assert micro.get_output(0).shape == (1, 10)
    for smaller in (arena - 16, arena // 2):
        with pytest.raises(RuntimeError):
            runtime.Interpreter.from_bytes(model, arena_size=smaller)


@pytest.mark.slow  # the export fixture: about 20 s on 2 idle cores
def test_c_array_and_header_match_the_file(micro_export):
    from ai_edge_litert.interpreter import Interpreter

    export_dir, report = micro_export
    folder = os.path.join(export_dir, "micro")
    model = open(os.path.join(folder, "model.tflite"), "rb").read()
    source = open(os.path.join(folder, "model_data.cc")).read()
    assert "alignas(16) const unsigned char g_model_data[] = {" in source
    body = source.split("g_model_data[] = {", 1)[1].split("};", 1)[0]
    parsed = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert parsed == model
    assert re.search(r"g_model_data_len = (\d+);", source).group(1) == str(len(model))

    header = open(os.path.join(folder, "model_data.h")).read()
    consts = dict(re.findall(r"constexpr \w+ (k\w+) = ([^;]+);", header))
    assert int(consts["kTensorArenaSize"]) == report["micro"]["arena_bytes"]
    in_names, out_names = _signature_names(os.path.join(folder, "model.tflite"))
    interp = Interpreter(model_path=os.path.join(folder, "model.tflite"))
    for side, details, names in (
        ("Input", interp.get_input_details(), in_names),
        ("Output", interp.get_output_details(), out_names),
    ):
        assert int(consts[f"kNum{side}s"]) == len(details)
        for pos, d in enumerate(details):
            key = f"k{side}{names[d['index']].capitalize()}"
            scale, zero = d["quantization"]
            assert np.dtype(d["dtype"]) == np.int8
            assert int(consts[f"{key}Index"]) == pos
            assert np.float32(consts[f"{key}Scale"].rstrip("f")) == np.float32(scale)
            assert int(consts[f"{key}ZeroPoint"]) == zero


@pytest.mark.slow  # the export fixture: about 20 s on 2 idle cores
def test_features_json_is_the_runs_feature_config(tau_run, micro_export):
    run, _, feature_cfg = tau_run
    export_dir, report = micro_export
    folder = os.path.join(export_dir, "micro")
    record = json.load(open(os.path.join(folder, "features.json")))
    config = json.load(open(os.path.join(run, "config.json")))
    assert record["feature_config"] == config["feature_config"]
    assert (record["sample_rate"], record["num_samples"], record["num_frames"]) == (
        44100,
        44100,
        87,
    )
    assert record["stft"]["n_fft"] == 2048 and record["stft"]["hop_length"] == 512
    assert record["layout"] == "[time, freq]"
    norm = json.load(open(os.path.join(run, "normalization.json")))
    assert sorted(record["representations"]) == ["cqt", "gamma", "logmel"]
    for rep, r in record["representations"].items():
        assert r["bins"] == 64
        np.testing.assert_allclose(r["normalization"]["mean"], norm[rep]["mean"], rtol=1e-6)
    assert record["representations"]["logmel"]["fmax"] == 22050.0
    assert record["representations"]["cqt"]["fmin"] == 220.0
    header = open(os.path.join(folder, "features.h")).read()
    assert "static const int kNumFrames = 87;" in header
    assert "static const float kLogmelMean[64] = {" in header
    listed = report["micro"]["files"]
    assert set(listed) == {
        f"micro/{f}"
        for f in ("model.tflite", "model_data.cc", "model_data.h", "features.json", "features.h")
    }


@pytest.mark.slow
def test_rerun_writes_identical_micro_files(tau_run, micro_export, tmp_path):
    from asc_keras.export import exporter

    export_dir, _ = micro_export
    again = tmp_path / "again"
    exporter.run(_export_cfg(tau_run[0], again), log=lambda *_: None)
    for name in os.listdir(os.path.join(export_dir, "micro")):
        first = open(os.path.join(export_dir, "micro", name), "rb").read()
        assert open(again / "micro" / name, "rb").read() == first, name


def _reduce_prod_model(tmp_path) -> bytes:
    """A tiny int8 model with REDUCE_PROD, which TFLM has no kernel for."""
    import keras

    from asc_keras.export import savedmodel, tflite

    x = keras.Input(shape=(8, 4), name="logmel")
    model = keras.Model({"logmel": x}, {"probs": keras.ops.prod(keras.layers.Dense(4)(x), axis=1)})
    src = str(tmp_path / "src")
    savedmodel.export_saved_model(model, src, batch_size=1)
    rng = np.random.default_rng(0)
    return tflite.convert_int8(
        src,
        lambda: ({"logmel": rng.normal(size=(1, 8, 4)).astype(np.float32)} for _ in range(8)),
        int8_inputs=True,
    )


def test_unsupported_operator_is_refused_in_one_line(tmp_path):
    from asc_keras.export import micro

    line = micro.unsupported_operator(_reduce_prod_model(tmp_path), "x/model.tflite")
    assert line == (
        "x/model.tflite: operator REDUCE_PROD is not supported by TensorFlow Lite for "
        "Microcontrollers"
    )


@pytest.mark.slow
def test_export_with_an_unsupported_operator_publishes_nothing(tau_run, tmp_path, monkeypatch):
    from asc_keras.export import exporter, micro
    from asc_keras.export.errors import ExportError

    model = _reduce_prod_model(tmp_path)
    monkeypatch.setattr(micro, "convert", lambda *args, **kwargs: model)
    out = tmp_path / "export"
    with pytest.raises(ExportError) as info:
        exporter.run(_export_cfg(tau_run[0], out), log=lambda *_: None)
    message = str(info.value)
    assert "\n" not in message and "REDUCE_PROD" in message
    assert os.path.join("micro", "model.tflite") in message
    assert not out.exists() and (tmp_path / "export.rejected").is_dir()
    report = json.load(open(tmp_path / "export.rejected" / "export_report.json"))
    assert report["micro"]["arena_bytes"] is None and not report["passed"]
    assert not (tmp_path / "export.rejected" / "micro" / "model_data.cc").exists()


def test_micro_needs_the_int8_export():
    assert ExportConfig(model_dir="m", export_dir="e").micro is False  # off by default
    with pytest.raises(ValueError, match="micro needs the int8 calibration"):
        ExportConfig(model_dir="m", export_dir="e", micro=True, int8=False)
