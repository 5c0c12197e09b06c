"""asc_keras.inference: what a model path is (loader) and the shared TFLite runner's batch loop."""

import json
import os
import shutil

import numpy as np
import pytest

from asc_keras.inference import loader, tflite_runner


def _tflite(path, *, batch):
    """A tiny `.tflite` file: `x [batch, 3]` -> `{'probs': softmax(2 x), 'double': 2 x}`."""
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([batch, 3], tf.float32, name="x")])
        def serve(self, x):
            return {"probs": tf.nn.softmax(2.0 * x), "double": 2.0 * x}

    module = Module()
    fn = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    with open(path, "wb") as f:
        f.write(converter.convert())
    return str(path)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner")
    return {
        "fixed": _tflite(root / "fixed.tflite", batch=3),
        "free": _tflite(root / "free.tflite", batch=None),
    }


def test_fixed_batch_file_runs_in_padded_chunks(files):
    runner = tflite_runner.TFLiteRunner(files["fixed"])
    assert runner.fixed_batch == 3 and runner.input_names == ("x",)
    assert runner.output_names == ("double", "probs") and not runner.quantized
    x = np.arange(21, dtype=np.float32).reshape(7, 3) / 10  # 7 clips: chunks of 3, 3, 1 + pad
    out = runner.run({"x": x, "unused": np.zeros(1)})
    np.testing.assert_allclose(out["double"], 2 * x, rtol=1e-6)
    np.testing.assert_allclose(out["probs"], _softmax(2 * x), atol=1e-6)
    only = runner.run({"x": x}, outputs=("probs",))
    assert set(only) == {"probs"} and only["probs"].shape == (7, 3)


def test_free_batch_clip_by_clip_equals_one_call(files):
    runner = tflite_runner.TFLiteRunner(files["free"])
    assert runner.fixed_batch is None
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    whole = runner.run({"x": x})
    one_by_one = runner.run({"x": x}, batch_size=1)
    np.testing.assert_allclose(one_by_one["probs"], whole["probs"], atol=1e-6)
    np.testing.assert_allclose(whole["probs"], _softmax(2 * x), atol=1e-6)
    assert runner.output_name("probs") == "probs"
    with pytest.raises(KeyError, match="no output 'logits'"):
        runner.output_name("logits")
    with pytest.raises(KeyError, match="needs inputs"):
        runner.run({"y": x})
    with pytest.raises(ValueError, match="runtime must be one of"):
        tflite_runner.make_interpreter(files["free"], runtime="onnx")


def test_artifact_kinds_and_export_config(tmp_path, files):
    run_dir, export_dir, sm = tmp_path / "run", tmp_path / "export", tmp_path / "export" / "sm"
    for d in (run_dir, export_dir, sm):
        d.mkdir()
    (run_dir / "model.keras").write_bytes(b"")
    (sm / "saved_model.pb").write_bytes(b"")
    (export_dir / "export_config.json").write_text(json.dumps({"task": "1b"}))
    assert loader.artifact_kind(str(run_dir)) == "keras"
    assert loader.artifact_kind(str(run_dir / "model.keras")) == "keras"
    assert loader.artifact_kind(files["free"]) == "tflite"
    assert loader.artifact_kind(str(sm)) == "saved_model"
    assert loader.artifact_kind(str(export_dir)) == "export"
    assert loader.artifact_kind(str(tmp_path)) is None
    # An artifact's settings: next to it, or one folder up (the SavedModel inside an export).
    cfg, where = loader.export_config(str(sm))
    assert cfg == {"task": "1b"} and where == os.path.join(str(export_dir), "export_config.json")
    with pytest.raises(FileNotFoundError, match="export_config.json"):
        loader.export_config(str(run_dir / "model.keras"))
    with pytest.raises(ValueError, match="not a .tflite file"):
        loader.load_predictor(str(tmp_path))
    lite = loader.load_predictor(files["free"], name="lite", output="probs")
    assert lite.name == "lite" and lite.input_names == ("x",) and lite.raw_features
    np.testing.assert_allclose(lite({"x": np.ones((2, 3), np.float32)}), np.full((2, 3), 1 / 3))
    # An export folder stands for its model.tflite.
    shutil.copy(files["free"], export_dir / "model.tflite")
    lite = loader.load_predictor(str(export_dir))
    assert lite.name == os.path.join(str(export_dir), "model.tflite")
    np.testing.assert_allclose(lite({"x": np.ones((2, 3), np.float32)}), np.full((2, 3), 1 / 3))
