"""Backbones (paper Table 1), heads, the frame-wise loss, and full-size forward passes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from asc_keras.config import ModelConfig
from asc_keras.models import (
    FramewiseCategoricalCrossentropy,
    framewise_categorical_crossentropy,
    model_size,
)
from asc_keras.strategies import build_model


def feature_model(model, layer_name):
    return keras.Model(model.inputs, model.get_layer(layer_name).output)


def test_1a_single_cnn_parameter_count():
    model = build_model(ModelConfig())
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == 4_953_930
    assert model.count_params() == 4_957_770  # + BatchNorm moving statistics
    assert model_size(model).mib_float32 == pytest.approx(18.91, abs=0.005)


# Paper Table 1 ("Network Architectures"), transcribed row by row; "k x k @ n" is a k x k
# convolution with n filters, "Avg Pooling 4x2" pools 4 frames and 2 frequency bins (862 frames
# x 40 bins end as 26 x 5 after the three poolings).
TABLE_1 = {
    "1a": (
        "Conv 3x3 @ 64, BN, ReLU",
        "Conv 3x3 @ 64, BN, ReLU",
        "Avg Pooling 4x2",
        "Conv 3x3 @ 128, BN, ReLU",
        "Conv 3x3 @ 128, BN, ReLU",
        "Avg Pooling 4x2",
        "Conv 3x3 @ 256, BN, ReLU",
        "Conv 3x3 @ 256, BN, ReLU",
        "Avg Pooling 2x2",
        "Conv 3x3 @ 512, BN, ReLU",
        "Conv 3x3 @ 512, BN, ReLU",
        "Global Pooling",
        "FC 512, ReLU",
        "FC 10, softmax",
    ),
    "1b": (
        "Conv 7x7 @ 32, BN, ReLU",
        "Avg Pooling 4x2",
        "Conv 7x7 @ 32, BN, ReLU",
        "Avg Pooling 4x2",
        "Conv 3x3 @ 64, BN, ReLU",
        "Avg Pooling 2x2",
        "Conv 3x3 @ 64, BN, ReLU",
        "Global Pooling",
        "FC 200, ReLU",
        "FC 3, softmax",
    ),
}
# Section 4.2: 1A Log-Mel has 40 bins, 1B representations 64; section 3: dropout 0.5 between
# the fully connected layers. Tables 2 and 4: the single Log-Mel CNN is 18.9 MB (1A) and 468 KB
# (1B, the DCASE 2020 count: non-zero weights outside BatchNorm, KB = 1024 bytes, limit 500 KB).
PAPER_INPUT_BINS = {"1a": 40, "1b": 64}
PAPER_CLASSES = {"1a": 10, "1b": 3}  # Table 1's last FC
PAPER_DROPOUT = 0.5
PAPER_MB_1A = 18.9
PAPER_KB_1B = 468
LIMIT_KB_1B = 500


def paper_log_mel_cnn(task: str) -> keras.Model:
    """The full-size single Log-Mel CNN of `task` ("1a" or "1b")."""
    return build_model(
        ModelConfig(
            backbone=task,
            input_bins={"logmel": PAPER_INPUT_BINS[task]},
            num_classes=PAPER_CLASSES[task],
        )
    )


def table_rows(model: keras.Model) -> list[str]:
    """The model's layers, in order, written as Table 1 writes them (input plumbing and dropout
    left out; any other layer shows up as itself, so it cannot hide)."""
    layers = [
        layer
        for layer in model.layers
        if not isinstance(
            layer, keras.layers.InputLayer | keras.layers.Reshape | keras.layers.Dropout
        )
    ]
    kinds = [type(layer).__name__ for layer in layers]
    rows, i = [], 0
    while i < len(layers):
        layer, after = layers[i], kinds[i + 1 : i + 3]
        if isinstance(layer, keras.layers.Conv2D) and after == ["BatchNormalization", "ReLU"]:
            k = layer.kernel_size
            rows.append(f"Conv {k[0]}x{k[1]} @ {layer.filters}, BN, ReLU")
            i += 3
        elif isinstance(layer, keras.layers.AveragePooling2D):
            rows.append(f"Avg Pooling {layer.pool_size[0]}x{layer.pool_size[1]}")
            i += 1
        elif kinds[i : i + 2] == ["FrequencyMean", "GlobalMaxPooling1D"]:
            rows.append("Global Pooling")
            i += 2
        elif isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.relu:
            rows.append(f"FC {layer.units}, ReLU")
            i += 1
        elif isinstance(layer, keras.layers.Dense) and after[:1] == ["Softmax"]:
            assert layer.activation is keras.activations.linear, layer.name
            rows.append(f"FC {layer.units}, softmax")
            i += 2
        else:
            rows.append(f"{kinds[i]} {layer.name}")
            i += 1
    return rows


@pytest.mark.parametrize("task", ["1a", "1b"])
def test_network_is_the_papers_table_1(task):
    model = paper_log_mel_cnn(task)
    assert table_rows(model) == list(TABLE_1[task])
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in dropouts] == [PAPER_DROPOUT]
    dense = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    names = [layer.name for layer in model.layers]
    assert names.index(dense[0]) < names.index(dropouts[0].name) < names.index(dense[1])
    assert model.output["probs"].shape == (None, PAPER_CLASSES[task])


def test_model_sizes_are_the_papers():
    size_1a = model_size(paper_log_mel_cnn("1a"))
    assert round(size_1a.mib_float32, 1) == PAPER_MB_1A
    size_1b = model_size(paper_log_mel_cnn("1b"))
    assert size_1b.dcase_kb == pytest.approx(PAPER_KB_1B, rel=0.01)  # zero biases not counted
    assert size_1b.dcase_bytes <= LIMIT_KB_1B * 1024 and size_1b.within_1b_limit


def test_table_rows_sees_a_changed_layer():
    """The comparison can fail: a narrower 1A model no longer reads as Table 1."""
    rows = table_rows(build_model(ModelConfig(width=0.5, num_frames=64)))
    assert rows != list(TABLE_1["1a"])
    assert rows[0] == "Conv 3x3 @ 32, BN, ReLU" and rows[-2] == "FC 256, ReLU"


def test_1a_pooling_reduces_time_by_4_and_frequency_by_2():
    model = build_model(ModelConfig(width=0.125))
    assert model.get_layer("logmel_block1_pool").output.shape[1:3] == (215, 20)
    assert model.get_layer("logmel_block2_pool").output.shape[1:3] == (53, 10)
    assert model.get_layer("logmel_block3_pool").output.shape[1:3] == (26, 5)


def test_global_pooling_is_mean_over_frequency_then_max_over_time():
    cfg = ModelConfig(width=0.125, num_frames=64)
    model = build_model(cfg)
    x = {"logmel": np.random.default_rng(0).standard_normal((2, 64, 40)).astype("float32")}
    fmap = keras.ops.convert_to_numpy(feature_model(model, "logmel_block4_relu2")(x))
    pooled = keras.ops.convert_to_numpy(feature_model(model, "logmel_time_max")(x))
    np.testing.assert_allclose(pooled, fmap.mean(axis=2).max(axis=1), rtol=1e-5, atol=1e-6)


def test_width_scales_filters_and_hidden_units():
    model = build_model(ModelConfig(width=0.125))
    assert model.get_layer("logmel_block1_conv1").filters == 8
    assert model.get_layer("logmel_block4_conv2").filters == 64
    assert model.get_layer("logmel_fc1").units == 64


def test_spsmt_frame_head_shares_the_clip_head_weights():
    cfg = ModelConfig(strategies=("spsmt",), width=0.125, num_frames=64)
    model = build_model(cfg)
    assert isinstance(model.get_layer("logmel_fc1"), keras.layers.TimeDistributed)
    x = {"logmel": np.random.default_rng(1).standard_normal((2, 64, 40)).astype("float32")}
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}
    assert out["frames"].shape == (2, 2, 10)  # 64 frames -> 16 -> 4 -> 2
    np.testing.assert_allclose(out["probs"], out["frames"].mean(axis=1), atol=1e-6)


def test_framewise_loss_is_mean_of_per_frame_cross_entropy():
    rng = np.random.default_rng(0)
    y_true = np.eye(4, dtype="float32")[[0, 3, 1]] * 0.7 + 0.075  # mixup-like soft labels
    logits = rng.standard_normal((3, 5, 4)).astype("float32")
    y_pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = np.mean(
        [[-np.sum(y_true[b] * np.log(y_pred[b, t])) for t in range(5)] for b in range(3)], axis=1
    )
    got = keras.ops.convert_to_numpy(framewise_categorical_crossentropy(y_true, y_pred))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    per_frame = keras.ops.convert_to_numpy(
        keras.losses.categorical_crossentropy(np.repeat(y_true[:, None], 5, 1), y_pred)
    )
    np.testing.assert_allclose(got, per_frame.mean(axis=1), rtol=1e-6)
    loss = FramewiseCategoricalCrossentropy()
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected.mean(), rtol=1e-5)


def test_framewise_loss_serializes():
    fn = keras.losses.deserialize(keras.losses.serialize(framewise_categorical_crossentropy))
    assert fn is framewise_categorical_crossentropy
    loss = keras.losses.deserialize(keras.losses.serialize(FramewiseCategoricalCrossentropy()))
    assert isinstance(loss, FramewiseCategoricalCrossentropy)


def test_full_size_1a_single_cnn_forward():
    """Every block's output shape is paper Table 1's, and the head computes its numbers."""
    cfg = ModelConfig(num_frames=128)  # full width, short clip
    model = build_model(cfg)
    x = {"logmel": np.random.default_rng(0).standard_normal((1, 128, 40)).astype("float32")}
    names = [
        "logmel_block1_relu2",
        "logmel_block1_pool",
        "logmel_block2_relu2",
        "logmel_block2_pool",
        "logmel_block3_relu2",
        "logmel_block3_pool",
        "logmel_block4_relu2",
        "probs",
    ]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = dict(
        zip(names, (keras.ops.convert_to_numpy(o) for o in probe(x, training=False)), strict=True)
    )
    # [batch, time, freq, channels]: Conv3x3@64 x2, AvgPool(4,2), @128 x2, AvgPool(4,2),
    # @256 x2, AvgPool(2,2), @512 x2.
    expected = [
        (1, 128, 40, 64),
        (1, 32, 20, 64),
        (1, 32, 20, 128),
        (1, 8, 10, 128),
        (1, 8, 10, 256),
        (1, 4, 5, 256),
        (1, 4, 5, 512),
        (1, 10),
    ]
    assert [outs[n].shape for n in names] == expected
    # Head from the last block: mean over frequency, max over time, Dense 512 + ReLU, Dense 10
    # + softmax (dropout is off at inference).
    w1, b1 = model.get_layer("logmel_fc1").get_weights()
    w2, b2 = model.get_layer("logmel_fc2").get_weights()
    assert w1.shape == (512, 512) and w2.shape == (512, 10)
    pooled = outs["logmel_block4_relu2"].mean(axis=2).max(axis=1)  # [1, 512]
    logits = np.maximum(pooled @ w1 + b1, 0) @ w2 + b2
    expected_probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(outs["probs"], expected_probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(outs["probs"].sum(), 1.0, atol=1e-5)


def test_summary_applies_the_1b_rule_to_1b_only(capsys):
    from asc_keras import summary

    text_1a = summary.run(ModelConfig(num_frames=128, width=1 / 16), task="1a", layers=False)
    assert "OVER" not in text_1a and "task 1a: no complexity rule" in text_1a
    text_1b = summary.run(
        ModelConfig(backbone="1b", num_frames=128, num_classes=3, width=1 / 4),
        task="1b",
        layers=False,
    )
    assert "limit 512,000 bytes (500 KB): within" in text_1b
    assert "non-zero values" in text_1b  # why export.py (trained weights) shows more


def test_full_size_1b_ef_spsmt_forward():
    cfg = ModelConfig(
        backbone="1b",
        inputs=("logmel", "cqt", "gamma"),
        fusion="ef",
        strategies=("spsmt",),
        input_bins={"logmel": 64, "cqt": 64, "gamma": 64},
        num_classes=3,
    )
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    x = {n: rng.standard_normal((2, 862, 64)).astype("float32") for n in cfg.inputs}
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}
    assert out["probs"].shape == (2, 3) and out["frames"].shape == (2, 26, 3)
    np.testing.assert_allclose(out["probs"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["probs"], out["frames"].mean(axis=1), atol=1e-6)
