"""int8 probabilities (steps of 1/256, exact zeros) get a log-loss caveat; float ones do not."""

from __future__ import annotations

import json

import numpy as np

from asc_keras.evaluation import metrics, report

CLASSES = ("a", "b", "c")


def _int8_probs(probs: np.ndarray) -> np.ndarray:
    """What a full-integer softmax gives back: scale 1/256, zero point -128, dequantized."""
    q = np.clip(np.round(probs * 256) - 128, -128, 127)  # int8
    return ((q + 128) / 256).astype(np.float32)


def test_int8_log_loss_is_flagged_and_explained(tmp_path):
    labels = np.array([0, 1, 2, 0])
    probs = np.array(
        [[0.90, 0.05, 0.05], [0.20, 0.70, 0.10], [0.30, 0.69, 0.01], [0.999, 0.0005, 0.0005]],
        np.float32,
    )
    probs[2] = [0.5, 0.4999, 0.0001]  # a confident miss: the true class rounds to 0 in int8
    quantized = _int8_probs(probs)
    assert quantized[2, 2] == 0.0
    # The clipped zero alone adds -log(1e-15) / N to the int8 log loss.
    gap = metrics.log_loss(labels, quantized) - metrics.log_loss(labels, probs)
    assert gap > (34.5 - 10) / len(labels)
    assert report.int8_log_loss_caveat(probs, labels) is None
    caveat = report.int8_log_loss_caveat(quantized, labels)
    assert caveat is not None and "(1 of 4 clips here)" in caveat and "34.5" in caveat

    meta = {
        "filename": np.array([f"f{i}.wav" for i in range(4)]),
        "label": labels,
        "device": np.array(["a"] * 4),
    }
    m = metrics.compute_metrics(labels, quantized, meta["device"], CLASSES)
    table = report.write_report(
        str(tmp_path / "int8"), m, CLASSES, probs=quantized, meta=meta, print_fn=None
    )
    assert table.splitlines()[-1] == caveat
    with open(tmp_path / "int8" / report.METRICS_NAME) as f:
        assert json.load(f)["log_loss_caveat"] == caveat
    m = metrics.compute_metrics(labels, probs, meta["device"], CLASSES)
    table = report.write_report(
        str(tmp_path / "float"), m, CLASSES, probs=probs, meta=meta, print_fn=None
    )
    assert "int8" not in table
    with open(tmp_path / "float" / report.METRICS_NAME) as f:
        assert "log_loss_caveat" not in json.load(f)


def test_a_fused_int8_output_with_its_own_scale_is_flagged_too():
    """An SPSMR / SPSMF int8 export's fused `probs` has its own scale, not 1/256."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    probs = rng.dirichlet([0.3, 0.3, 0.3], size=40)
    scale = 0.9921 / 255
    quantized = (np.clip(np.round(probs / scale), 0, 255) * scale).astype(np.float32)
    assert report.int8_log_loss_caveat(probs, labels) is None
    caveat = report.int8_log_loss_caveat(quantized, labels)
    assert caveat is not None and f"steps of {scale:.4g}" in caveat
