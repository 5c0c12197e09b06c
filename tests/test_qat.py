"""Quantization-aware training: BatchNorm folding, the weight and activation fake quantization
against NumPy transcriptions of their formulas, the QAT model against the float model,
`--qat_from` training and the export of a QAT run (int8 file against the QAT Keras model)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
from export_helpers import spread_probabilities

from asc_keras.config import ExportConfig, ModelConfig, TrainConfig
from asc_keras.models.qat_layers import ActivationQuantizer, weight_fake_quant
from asc_keras.quantize import build as qat_build
from asc_keras.quantize import start as qat_start


def _conv_same(x, w):
    """NumPy 'same' 2-D convolution (cross-correlation, Keras's), stride 1: x [h, w, cin],
    w [kh, kw, cin, cout] -> [h, w, cout]."""
    kh, kw = w.shape[:2]
    pt, pl = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((pt, kh - 1 - pt), (pl, kw - 1 - pl), (0, 0)))
    out = np.zeros((x.shape[0], x.shape[1], w.shape[-1]))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = np.einsum("abc,abcd->d", xp[i : i + kh, j : j + kw], w)
    return out


def test_batchnorm_folding_equals_conv_then_batchnorm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 2))
    w = rng.standard_normal((3, 3, 2, 4))
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    mean, var, eps = rng.standard_normal(4), rng.uniform(0.1, 3, 4), 1e-5
    unfolded = gamma * (_conv_same(x, w) - mean) / np.sqrt(var + eps) + beta  # BN(conv(x))
    kernel, bias = qat_build.fold_batchnorm(w, None, gamma, beta, mean, var, eps)
    np.testing.assert_allclose(_conv_same(x, kernel) + bias, unfolded, rtol=1e-5, atol=1e-5)
    # Keras's own Conv2D + BatchNormalization (inference) agree with the folded conv.
    inp = keras.Input((6, 5, 2))
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
    bn = keras.layers.BatchNormalization(epsilon=eps)
    model = keras.Model(inp, keras.layers.ReLU()(bn(conv(inp))))
    conv.set_weights([w.astype(np.float32)])
    bn.set_weights([a.astype(np.float32) for a in (gamma, beta, mean, var)])
    np.testing.assert_allclose(
        np.asarray(model(x[None].astype(np.float32), training=False))[0],
        np.maximum(unfolded, 0),
        rtol=1e-4,
        atol=1e-4,
    )
    # The QAT model folds it and drops the BatchNorm layer; only weight rounding is left.
    qat = qat_build.qat_model(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in qat.layers)
    np.testing.assert_allclose(qat.get_layer(conv.name).get_weights()[1], bias, rtol=1e-6)


def test_weight_fake_quant_is_per_channel_symmetric_int8():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3, 4, 5)).astype(np.float32) * np.array([1, 0.1, 3, 0.01, 1])
    scale = np.abs(w).max(axis=(0, 1, 2)) / 127  # per output channel
    q = np.clip(np.floor(w / scale + 0.5), -127, 127)  # TF rounds half up
    np.testing.assert_allclose(np.asarray(weight_fake_quant(w)), q * scale, rtol=1e-5, atol=1e-9)
    assert len(np.unique(np.asarray(weight_fake_quant(w))[..., 3])) <= 255
    # Exact ties, scale 1: half up (2.5 -> 3, -2.5 -> -2, -0.5 -> 0), not half to even.
    ties = np.array([[127.0], [2.5], [-2.5], [0.5], [-0.5], [-127.0]], np.float32)
    np.testing.assert_array_equal(
        np.asarray(weight_fake_quant(ties))[:, 0], [127, 3, -2, 1, 0, -127]
    )


def _fake_quant(x, lo, hi):
    """NumPy transcription of asymmetric 8-bit quantization with zero exactly on the grid."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255
    zero = np.round(-lo / scale)
    return (np.clip(np.floor(x / scale + 0.5) + zero, 0, 255) - zero) * scale


def test_activation_ranges_track_the_batch_ranges_and_freeze_at_inference():
    rng = np.random.default_rng(2)
    layer = ActivationQuantizer(ema_decay=0.9)
    x0 = rng.uniform(-1, 3, (4, 10)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layer(x0, training=False)), x0)  # no range yet
    batches = [rng.uniform(-a, 2 * a, (4, 10)).astype(np.float32) for a in (1.0, 2.0, 0.5)]
    lo, hi = batches[0].min(), batches[0].max()  # the first batch sets the range
    layer(batches[0], training=True)
    for b in batches[1:]:
        lo, hi = 0.9 * lo + 0.1 * b.min(), 0.9 * hi + 0.1 * b.max()
        layer(b, training=True)
    assert float(layer.range_min.numpy()) == pytest.approx(lo, rel=1e-5)
    assert float(layer.range_max.numpy()) == pytest.approx(hi, rel=1e-5)
    out = np.asarray(layer(x0, training=False))
    assert float(layer.range_max.numpy()) == pytest.approx(hi, rel=1e-5)  # frozen
    np.testing.assert_allclose(out, _fake_quant(x0, lo, hi), atol=1e-5)
    assert len(np.unique(out)) <= 256


def _model_cfg(feature_cfg, **kw):
    inputs = kw.pop("inputs", ("logmel",))
    return ModelConfig(
        backbone="1b",
        inputs=inputs,
        input_bins={r: feature_cfg.bins(r) for r in inputs},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=0.125,
        **kw,
    )


def test_qat_model_at_init_is_close_to_the_float_model():
    from conftest import TINY_FEATURES_1B

    from asc_keras.strategies import build_model

    cfg = _model_cfg(
        TINY_FEATURES_1B, inputs=("logmel", "cqt", "gamma"), fusion="ef", strategies=("spsmt",)
    )
    model = build_model(cfg)
    spread_probabilities(model, 10.0)
    rng = np.random.default_rng(3)
    for layer in model.layers:  # BatchNorm statistics of a trained model, not the identity
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape))
    qat = qat_build.qat_model(model)
    assert set(qat.output) == set(model.output)
    x = {r: rng.standard_normal((8, *cfg.input_shapes[r])).astype(np.float32) for r in cfg.inputs}
    ref = model(x, training=False)
    out = qat(x, training=False)  # no ranges yet: only the weights are quantized
    assert np.abs(np.asarray(out["probs"]) - np.asarray(ref["probs"])).max() < 0.02
    qat(x, training=True)  # the ranges of this batch
    out = qat(x, training=False)
    diff = np.abs(np.asarray(out["probs"]) - np.asarray(ref["probs"]))
    assert 0 < diff.max() < 0.05
    assert np.mean(np.argmax(out["probs"], -1) == np.argmax(ref["probs"], -1)) >= 0.875
    assert qat_build.is_qat_model(qat) and not qat_build.is_qat_model(qat_build.deploy_model(qat))


@pytest.fixture(scope="module")
def qat_runs(tiny_1b_features, tmp_path_factory):
    """A tiny float run (6 steps) and a QAT run fine-tuned from it (4 steps): SPSMR of Log-Mel
    and CQT SPSMT networks, so the int8 file has fixed (softmax), tracked and fused outputs."""
    from asc_keras.training import trainer

    _, feature_cfg, data_cfg = tiny_1b_features
    root = tmp_path_factory.mktemp("qat")
    cfg = _model_cfg(feature_cfg, inputs=("logmel", "cqt"), fusion="spsmr", strategies=("spsmt",))
    common = dict(batch_size=4, eval_every=0, log_every=2, checkpoint_every=100)
    float_dir, qat_dir = str(root / "float"), str(root / "qat")
    for model_dir, extra in ((float_dir, {"train_steps": 6}), (qat_dir, {"train_steps": 4})):
        if model_dir == qat_dir:
            extra["qat_from"] = float_dir
            extra["learning_rate"] = 1e-4
        train_cfg = TrainConfig(model_dir=model_dir, **common, **extra)
        trainer.run(feature_cfg, data_cfg, cfg, train_cfg, progress=False, log=lambda *_: None)
    return float_dir, qat_dir, cfg, root


@pytest.mark.slow
def test_train_qat_from_a_run(qat_runs, tiny_1b_features):
    from asc_keras.models import load_model
    from asc_keras.training import trainer

    float_dir, qat_dir, cfg, root = qat_runs
    record = json.loads(open(os.path.join(qat_dir, "config.json")).read())
    assert record["train_config"]["qat_from"] == float_dir
    start = load_model(os.path.join(float_dir, "model.keras"), compile=False)
    assert record["qat_from"]["weights_sha256"] == qat_start.weights_sha256(start)
    assert record["qat_from"]["path"] == os.path.abspath(float_dir)
    qat = load_model(os.path.join(qat_dir, "model.keras"), compile=False)  # safe mode
    assert qat_build.is_qat_model(qat)
    ranges = qat_build.activation_ranges(qat)
    assert "logmel_normalization" in ranges and "logmel_block1_relu1" in ranges
    assert all(hi > lo for lo, hi in ranges.values())
    folded = qat.get_layer("logmel_block1_conv1").get_weights()
    assert len(folded) == 2  # kernel and the folded BatchNorm's bias
    assert json.loads(open(os.path.join(qat_dir, "metrics.json")).read())["all"]["accuracy"] >= 0
    _, feature_cfg, data_cfg = tiny_1b_features
    other = _model_cfg(feature_cfg, inputs=("logmel",), strategies=("spsmt",))
    with pytest.raises(qat_start.QATStartError, match="same model config"):
        trainer.run(
            feature_cfg,
            data_cfg,
            other,
            TrainConfig(model_dir=str(root / "bad"), train_steps=1, qat_from=float_dir),
            progress=False,
            log=lambda *_: None,
        )


@pytest.mark.slow
def test_export_of_a_qat_run(qat_runs, tmp_path):
    from asc_keras.export import exporter, verify
    from asc_keras.models import load_model

    _, qat_dir, _, _ = qat_runs
    lines = []
    cfg = ExportConfig(
        model_dir=qat_dir,
        export_dir=str(tmp_path / "export"),
        calibration_examples=12,
        parity_examples=16,
        audio_frontend=False,
    )
    report = exporter.run(cfg, log=lines.append)
    assert report["passed"], report["failures"]
    int8 = next(a for a in report["artifacts"] if a["name"] == "model_int8.tflite")
    # Both runtimes against the QAT Keras model (9 clips: one near tie may flip).
    for parity in int8["parity"][:2]:
        assert parity["max_abs_diff"] <= 0.05 and parity["argmax_agreement"] >= 0.85
    # The int8 file against the QAT model, recomputed here on the comparison clips.
    qat = report["qat"]
    assert qat["int8_vs_qat"]["max_abs_diff"] <= 0.05
    assert qat["int8_vs_qat"]["argmax_agreement"] >= 0.85
    assert set(qat["rows"]) == {"float", "PTQ int8", "QAT", "QAT int8"}
    text = open(os.path.join(cfg.export_dir, "report.txt")).read()
    for name in ("float (the starting", "PTQ int8 (", "QAT int8 (model_int8.tflite)"):
        assert name in text and name in "\n".join(lines)
    # The float files hold the QAT weights without activation quantization (the deploy form).
    model = load_model(os.path.join(qat_dir, "model.keras"), compile=False)
    assert not qat_build.is_qat_model(qat_build.deploy_model(model))
    assert verify.RUNTIMES
