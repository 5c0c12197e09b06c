"""Complexity counted on the deployed `.tflite` file (`asc_keras.export.tflite_complexity`).

- a hand-built Keras model (one convolution, one depthwise, one dense) converted to TFLite:
  per-op MACs against the layer-shape formulas worked by hand, parameter bytes against the
  file's buffers as TensorFlow's own flatbuffer reader sees them;
- a flatbuffer written by hand (four ops, a shared buffer): the peak arena worked by hand;
- every flagfile that exports: the Keras count and the file's count agree, up to the
  differences the export makes and the docs state (average pools become depthwise
  convolutions; BatchNorm folds into one bias per channel; the normalization's mean and
  1 / std are constants of the file; a fusion average multiplies by one constant 1 / n);
- `--weights=float16` export: 2 bytes per parameter, parity with Keras, the rule judged on it;
  the rule refusing a file just over its limit, with one line naming the file.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from types import MappingProxyType

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import flagfile_params
from export_helpers import make_model_dir, tiny_model_config

from asc_keras import tasks
from asc_keras.config import ExportConfig
from asc_keras.export import errors, exporter, file_rule, savedmodel, serving, tflite
from asc_keras.export import tflite_complexity as tc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = sorted(
    os.path.basename(p)[: -len(".flags")]
    for p in glob.glob(os.path.join(REPO, "configs", "*.flags"))
    if not os.path.basename(p).startswith("base_")
)


def _hand_model():
    import keras

    x = keras.Input((12, 10, 3), name="logmel")
    y = keras.layers.Conv2D(5, (3, 3), name="conv")(x)  # [10, 8, 5]
    y = keras.layers.DepthwiseConv2D((3, 3), padding="same", name="dw")(y)  # [10, 8, 5]
    y = keras.layers.Flatten(name="flat")(y)  # [400]
    y = keras.layers.Dense(7, name="dense")(y)
    model = keras.Model({"logmel": x}, {"probs": y})
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.weights:  # non-zero biases: the converter drops all-zero ones
            layer.set_weights([rng.uniform(0.1, 1.0, w.shape) for w in layer.get_weights()])
    return model


def _tflite_of(model, tmp_path, *, int8: bool = False) -> bytes:
    path = savedmodel.export_saved_model(model, str(tmp_path / "sm"))
    if not int8:
        return tflite.convert_float(path)
    rng = np.random.default_rng(1)
    return tflite.convert_int8(
        path,
        lambda: (
            {"logmel": rng.uniform(-1, 1, (1, 12, 10, 3)).astype(np.float32)} for _ in range(8)
        ),
    )


def _buffer_bytes(content: bytes) -> int:
    """Bytes of the distinct buffers the file's tensors hold, through TensorFlow's flatbuffer
    reader (the model's metadata buffers, such as the minimum runtime version, left out)."""
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    used = {t.buffer for t in flat.subgraphs[0].tensors}
    return sum(len(flat.buffers[b].data) for b in used if flat.buffers[b].data is not None)


def test_hand_built_model_macs_and_bytes(tmp_path):
    model = _hand_model()
    from asc_keras.models import complexity

    # By hand: conv 10 x 8 positions x 5 filters x 3 x 3 x 3 taps; depthwise 10 x 8 x 5
    # outputs x 3 x 3 taps; dense 400 inputs x 7 units.
    conv, dw, dense = 10 * 8 * 5 * 27, 10 * 8 * 5 * 9, 400 * 7
    assert complexity.layer_macs(model) == {"conv": conv, "dw": dw, "dense": dense}
    params = {"conv": 3 * 3 * 3 * 5 + 5, "dw": 3 * 3 * 5 + 5, "dense": 400 * 7 + 7}
    biases = 5 + 5 + 7
    for int8 in (False, True):
        content = _tflite_of(model, tmp_path / str(int8), int8=int8)
        fc = tc.analyze(content)
        rows = {r.kind: r for r in fc.rows if r.macs}
        assert {k: r.macs for k, r in rows.items()} == {
            "CONV_2D": conv,
            "DEPTHWISE_CONV_2D": dw,
            "FULLY_CONNECTED": dense,
        }
        assert [rows[k].params for k in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")] == [
            params["conv"],
            params["dw"],
            params["dense"],
        ]
        assert fc.params == sum(params.values()) and fc.macs == conv + dw + dense
        weights = sum(params.values()) - biases
        # float32: 4 bytes each; int8: int8 weights, int32 biases.
        assert fc.param_bytes == (weights + 4 * biases if int8 else 4 * sum(params.values()))
        assert fc.precision == ("int8" if int8 else "float32")
        assert fc.param_bytes + fc.index_bytes == _buffer_bytes(content)
        assert fc.index_bytes > 0  # Flatten's shape: index data, not a parameter


def _hand_flatbuffer() -> bytes:
    """x [1, 10] float32 -> ADD(x, w) t1 [1, 20] f32 -> ADD(t1, t1) t2 [1, 30] f32 ->
    ADD(t1, t2) t3 [1, 5] f32 -> ADD(t3, w2) y [1, 5] int8; w and w2 share one buffer."""
    f32, i8 = schema.TensorType.FLOAT32, schema.TensorType.INT8

    def tensor(name, shape, kind, buffer=0):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), kind, buffer
        return t

    def op(ins, outs):
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = 0, list(ins), list(outs)
        return o

    graph = schema.SubGraphT()
    graph.tensors = [
        tensor("x", (1, 10), f32),  # 0: 40 bytes
        tensor("w", (10,), i8, buffer=1),  # 1: constant
        tensor("t1", (1, 20), f32),  # 2: 80 bytes
        tensor("t2", (1, 30), f32),  # 3: 120 bytes
        tensor("t3", (1, 5), f32),  # 4: 20 bytes
        tensor("w2", (10,), i8, buffer=1),  # 5: the same buffer
        tensor("y", (1, 5), i8),  # 6: 5 bytes
    ]
    graph.inputs, graph.outputs = [0], [6]
    graph.operators = [op([0, 1], [2]), op([2, 2], [3]), op([2, 3], [4]), op([4, 5], [6])]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    empty, weights = schema.BufferT(), schema.BufferT()
    weights.data = list(range(1, 11))
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [empty, weights]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_peak_arena_of_a_hand_worked_sequence():
    fc = tc.analyze(_hand_flatbuffer())
    # Live ranges: x op 0; t1 ops 0-2; t2 ops 1-2; t3 ops 2-3; y op 3 (an output).
    assert [r.live_bytes for r in fc.rows] == [40 + 80, 80 + 120, 80 + 120 + 20, 20 + 5]
    assert fc.peak_arena_bytes == 220 and fc.peak_op == 2
    # The shared buffer counts once, at the first op that reads it.
    assert [r.params for r in fc.rows] == [10, 0, 0, 0]
    assert fc.params == fc.param_bytes == 10 and fc.bytes_by_dtype == {"int8": 10}
    assert fc.macs == 0 and fc.precision == "float32"
    lines = tc.table_lines(fc, title="hand")
    assert any("peak activation memory: 220 bytes at op 2" in line for line in lines)


def _trained_like(model, rng) -> None:
    """BatchNorm statistics and biases away from their initial values (the converter drops
    all-zero biases and shares equal buffers, which would hide what the test counts)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.8, 1.2, c),
                    rng.normal(0, 0.1, c),
                    rng.normal(0, 0.1, c),
                    rng.uniform(0.8, 1.2, c),
                ]
            )
        elif isinstance(layer, keras.layers.Dense) or isinstance(
            getattr(layer, "layer", None), keras.layers.Dense
        ):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])


def expected_file_counts(model, input_bins) -> dict:
    """What the file should hold, from the Keras layers alone (see the module docstring)."""
    import keras

    from asc_keras.models import complexity

    pools = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.AveragePooling2D)
        and layer.padding == "valid"
        and tuple(layer.strides) == tuple(layer.pool_size)
    ]
    pool_macs = sum(
        int(np.prod(p.output.shape[1:])) * p.pool_size[0] * p.pool_size[1] for p in pools
    )
    # One weight buffer per distinct (pool size, channels): equal pools share it.
    pool_weights = sum(
        pt * pf * c for (pt, pf), c in {(tuple(p.pool_size), p.output.shape[-1]) for p in pools}
    )
    bn_channels = sum(
        layer.gamma.shape[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    # A fusion `Average` of n outputs becomes n - 1 ADDs and one MUL by the constant 1 / n.
    averages = sum(isinstance(layer, keras.layers.Average) for layer in model.layers)
    keras_params = complexity.parameter_memory(model, None)["params"]
    return {
        "macs": complexity.macs(model) + pool_macs,
        "pool_macs": pool_macs,
        "params": keras_params
        - 3 * bn_channels
        + pool_weights
        + 2 * sum(input_bins.values())
        + averages,
    }


def _agreement_params():
    """Every row, one per family in the fast set; 1a_logmel_spsmf's five band networks take
    about 30 s to convert on two cores, so it runs with the slow rows."""
    params = flagfile_params(ROWS)
    return [
        pytest.param(p.values[0], marks=pytest.mark.slow) if p.values[0] == "1a_logmel_spsmf" else p
        for p in params
    ]


@pytest.mark.parametrize("row", _agreement_params())
def test_every_flagfile_keras_and_file_counts_agree(row, tmp_path):
    from asc_keras.strategies import build_model
    from asc_keras.summary import model_config_from_args

    cfg = model_config_from_args([f"--flagfile={REPO}/configs/{row}.flags", "--width=0.04"])
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    _trained_like(model, rng)
    normalization = {
        r: {"mean": rng.normal(-30, 5, bins), "std": rng.uniform(5, 15, bins)}
        for r, bins in cfg.input_bins.items()
    }
    source = savedmodel.export_saved_model(
        serving.feature_serving_model(model, normalization, rewrite=True), str(tmp_path / "sm")
    )
    fc = tc.analyze(tflite.convert_float(source))
    want = expected_file_counts(model, cfg.input_bins)
    assert fc.macs == want["macs"], (fc.macs, want)
    assert fc.nonzero_params == want["params"], (fc.nonzero_params, want)
    assert fc.param_bytes == 4 * fc.params and fc.precision == "float32"
    assert fc.nonzero_params <= fc.params  # the converter adds zero depthwise biases


def _limited(monkeypatch, task: str, **changes) -> None:
    spec = tasks.TASKS[task]
    changed = dataclasses.replace(spec, limits=dataclasses.replace(spec.limits, **changes))
    monkeypatch.setattr(tasks, "TASKS", MappingProxyType({**tasks.TASKS, task: changed}))


def test_float16_export_and_the_rule_on_file_numbers(tmp_path, tiny_1b_features, monkeypatch):
    folder, feature_cfg, _ = tiny_1b_features
    model_cfg = tiny_model_config(feature_cfg, inputs=("logmel",), width=0.125)
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder
    )
    cfg = ExportConfig(
        model_dir=run_dir,
        export_dir=str(tmp_path / "export"),
        calibration_examples=8,
        parity_examples=4,
        audio_frontend=False,
        weights="float16",
    )
    lines = []
    report = exporter.run(cfg, log=lines.append)
    assert report["passed"], report["failures"]
    counted = report["complexity"]
    assert set(counted) == {"model.tflite", "model_int8.tflite", "model_float16.tflite"}
    f32, i8, f16 = (
        tc.from_dict(counted[n]["complexity"])
        for n in ("model.tflite", "model_int8.tflite", "model_float16.tflite")
    )
    assert f16.precision == "float16" and f16.bytes_by_dtype.keys() == {"float16"}
    assert f16.param_bytes == 2 * f16.params
    assert f16.dequantized_bytes >= 4 * f16.params  # one copy per DEQUANTIZE of a shared one
    assert f16.macs == f32.macs == i8.macs
    assert i8.bytes_by_dtype["float32"] == 2 * 4 * 64  # the normalization stays float
    parity = next(a for a in report["artifacts"] if a["name"] == "model_float16.tflite")
    assert parity["dtype"] == "float16" and all(p["passed"] for p in parity["parity"])
    assert max(p["max_abs_diff"] for p in parity["parity"]) < cfg.float16_tolerance
    assert os.path.exists(os.path.join(cfg.export_dir, "model_float16.tflite"))
    saved = json.load(open(os.path.join(cfg.export_dir, "export_report.json")))
    assert saved["complexity"]["model_int8.tflite"]["rule"]["judged"] is True
    printed = "\n".join(lines)
    assert "complexity of model_float16.tflite (float16 weights)" in printed
    assert "peak activation memory:" in printed

    # The 1B rule counts each parameter at its dtype: the float32 file is judged too. A limit
    # one byte under the float32 file's count passes the Keras pre-check (the file adds the
    # folded biases, pool weights and normalization constants) and is refused on the file.
    file_bytes = counted["model.tflite"]["rule"]["memory_bytes"]
    assert report["size"]["memory_bytes"] < file_bytes - 1
    _limited(monkeypatch, "1b", max_bytes=file_bytes - 1)
    over = dataclasses.replace(
        cfg, export_dir=str(tmp_path / "over"), int8=False, weights="float32"
    )
    with pytest.raises(errors.SizeRuleError) as caught:
        exporter.run(over, log=lambda *_: None)
    message = str(caught.value)
    assert "\n" not in message and os.path.join(over.export_dir, "model.tflite") in message
    assert f"{file_bytes:,} parameter bytes, over {file_bytes - 1:,} bytes" in message
    assert not os.path.exists(over.export_dir)
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p]


def test_the_tau2022_rule_on_an_int8_file_at_its_boundary(tmp_path):
    content = _tflite_of(_hand_model(), tmp_path, int8=True)
    fc = tc.analyze(content)
    limits = tasks.LIMITS_2022_2025
    at = dataclasses.replace(limits, max_bytes=fc.param_bytes)
    assert file_rule.file_rule(fc, at)["within_limit"]
    over = dataclasses.replace(limits, max_bytes=fc.param_bytes - 1)
    verdict = file_rule.file_rule(fc, over)
    assert verdict["memory_within"] is False and verdict["macs_within"] is True
    with pytest.raises(ValueError, match=r"x\.tflite: the file breaks .*, over "):
        file_rule.check_file_rule("x.tflite", verdict, over)
    few_macs = dataclasses.replace(limits, max_macs=fc.macs - 1)
    assert file_rule.file_rule(fc, few_macs)["macs_within"] is False
    # A float32 file is not judged by the int8 rule (it is not the deployed model).
    f32 = tc.analyze(_tflite_of(_hand_model(), tmp_path / "f", int8=False))
    assert not file_rule.file_rule(f32, over)["judged"]


def test_summary_counts_a_tflite_file(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "hand.tflite"
    path.write_bytes(_hand_flatbuffer())
    proc = subprocess.run(
        [sys.executable, "-m", "asc_keras.summary", f"--tflite={path}", "--task=1b"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "peak activation memory: 220 bytes at op 2" in proc.stdout
    assert f"{path}: 10 parameter bytes (limit 512,000): within" in proc.stdout
