"""int8 files of raw-MFCC models: the normalized features are quantized, not the raw ones.

Raw MFCC span hundreds of units in c0 and a few in the higher coefficients. An int8 input
quantized per tensor on the raw values gives every bin one step of about 2.6 units, most of a
higher coefficient's standard deviation. `tflite.convert_int8` keeps the input and the
normalization in float32 and quantizes the normalized features instead.

- A probe network (normalization, then an identity 1x1 convolution) shows the resolution the
  int8 network sees, in units of each bin's standard deviation: the converter's plain int8
  input (the control) is far coarser than ours.
- A tiny 1A MFCC run exported end to end passes its parity checks with float inputs.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from export_helpers import make_model_dir, tiny_model_config

from asc_keras.config import ExportConfig
from asc_keras.export import calibration, checks, exporter, savedmodel, serving, tflite, verify
from asc_keras.inference import tflite_runner
from asc_keras.models.frontend import FeatureNormalization

FRAMES, BINS = 20, 40
# MFCC-like statistics: c0 near -300 with spread 50, the other coefficients a few units.
MFCC_STATS = {
    "mfcc": {
        "mean": np.r_[-300.0, np.linspace(60.0, -5.0, BINS - 1)],
        "std": np.r_[50.0, np.linspace(20.0, 3.5, BINS - 1)],
    }
}


def _probe_saved_model(path: str) -> None:
    """Raw mfcc -> normalization -> identity 1x1 convolution, output `probs` [b, T, F, 1]."""
    raw = keras.Input((FRAMES, BINS), name="mfcc")
    mean, std = serving.normalization_arrays(MFCC_STATS, "mfcc")
    x = FeatureNormalization(mean=mean, std=std, name="mfcc_normalization")(raw)
    x = keras.layers.Reshape((FRAMES, BINS, 1))(x)
    conv = keras.layers.Conv2D(1, 1, use_bias=False, name="identity")
    y = conv(x)
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32)])
    savedmodel.export_saved_model(keras.Model({"mfcc": raw}, {"probs": y}), path)


def _plain_int8(saved_model_dir: str, representative) -> bytes:
    """The converter's own full-integer conversion: int8 input quantized on raw values."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def test_normalized_features_keep_their_resolution(tmp_path):
    sm = str(tmp_path / "probe")
    _probe_saved_model(sm)
    examples = calibration.synthetic_examples({"mfcc": (FRAMES, BINS)}, MFCC_STATS, 24, seed=0)
    calib = lambda: examples.batches(batch_size=1)  # noqa: E731
    truth = checks.normalized(examples.features, MFCC_STATS)["mfcc"]  # [N, T, F]
    errors = {}
    for kind, content in (
        ("ours", tflite.convert_int8(sm, calib)),
        ("plain", _plain_int8(sm, calib)),
    ):
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(content)
        got = verify.tflite_outputs(str(path), examples.features)["probs"][..., 0]
        errors[kind] = np.abs(got - truth).max()
    ins, _ = tflite_runner.tflite_io(str(tmp_path / "ours.tflite"))
    assert ins["mfcc"]["dtype"] == np.float32
    # Normalized values span about +-4.5: one int8 step is about 0.035 std, the output's
    # own step included the error stays under 0.05 std; on raw values it is about 0.4 std.
    assert errors["ours"] < 0.05, errors
    assert errors["plain"] > 0.2, errors


def test_int8_refuses_float_ops_outside_the_normalization(tmp_path):
    """An op without an int8 kernel would stay float32: a one-line error, not a slow file."""
    raw = keras.Input((FRAMES, BINS), name="mfcc")
    y = keras.layers.Lambda(keras.ops.sin, name="sin")(raw)  # SIN: float only
    sm = str(tmp_path / "sm")
    savedmodel.export_saved_model(keras.Model({"mfcc": raw}, {"probs": y}), sm)
    examples = calibration.synthetic_examples({"mfcc": (FRAMES, BINS)}, MFCC_STATS, 4, seed=0)
    with pytest.raises(tflite.Int8ConversionError, match="no int8 kernel"):
        tflite.convert_int8(sm, lambda: examples.batches(batch_size=1))


def test_export_1a_mfcc_int8(tmp_path, tiny_1a_features):
    folder, feature_cfg, _ = tiny_1a_features
    model_cfg = tiny_model_config(
        feature_cfg, task="1a", backbone="1a", inputs=("mfcc",), width=0.125
    )
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1a", feature_cfg=feature_cfg, features=folder
    )
    cfg = ExportConfig(
        model_dir=run_dir,
        export_dir=str(tmp_path / "export"),
        calibration_examples=40,
        parity_examples=12,
        audio_frontend=False,
    )
    report = exporter.run(cfg, log=lambda *_: None)
    assert report["passed"], report["failures"]
    int8 = next(a for a in report["artifacts"] if a["name"] == "model_int8.tflite")
    assert (int8["input_dtype"], int8["output_dtype"]) == ("float32", "int8")
    litert = int8["parity"][0]
    assert litert["max_abs_diff"] < 0.1 and litert["argmax_agreement"] >= 0.9
