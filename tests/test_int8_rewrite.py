"""The export-time rewrites (`asc_keras.export.rewrite`) keep the numbers and the int8 file
runs every pool as a depthwise convolution, the EF stack as rows and one transpose, and the
split first convolution as stacked frequency neighbours and a `k_t x 1` convolution."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import spread_probabilities, tiny_model_config

from asc_keras.config import FeatureConfig
from asc_keras.export import calibration, checks, rewrite, savedmodel, serving, tflite, verify
from asc_keras.inference import tflite_runner
from asc_keras.strategies import build_model

INPUTS = ("logmel", "cqt", "gamma")
FEATURES = FeatureConfig(clip_seconds=2.0, logmel_bins=64, representations=INPUTS)


def _op_counts(path: str) -> dict[str, int]:
    interpreter = tflite_runner.make_interpreter(path)
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


@pytest.fixture(scope="module")
def ef_model():
    import keras

    keras.utils.set_random_seed(1)
    model = build_model(
        tiny_model_config(FEATURES, inputs=INPUTS, fusion="ef", strategies=("spsmt",))
    )
    spread_probabilities(model, 50.0)
    # Random BatchNorm statistics, so that a wrong weight order cannot hide behind identity BN.
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, var.shape),
                ]
            )
    return model


def test_rewrite_keeps_the_numbers_and_names(tmp_path, ef_model):
    fast = rewrite.for_tflite(ef_model)
    kinds = {type(layer).__name__ for layer in fast.layers}
    assert "AveragePooling2D" not in kinds and "TimeDistributed" not in kinds
    assert isinstance(fast.get_layer("ef_stack"), rewrite.ChannelStack)
    assert isinstance(fast.get_layer("ef_block1_conv1_shift"), rewrite.FrequencyNeighbours)
    assert fast.get_layer("ef_block1_conv1").kernel.shape == (7, 1, 21, 8)
    assert fast.get_layer("ef_block2_conv1").kernel.shape == (7, 7, 8, 8)  # 8 channels: kept
    assert [t.name for t in fast.inputs] == [t.name for t in ef_model.inputs]
    # The rewritten graph is for the TFLite converter (TensorFlow's own depthwise kernel takes
    # no 4 x 2 strides): its numbers are checked in the float TFLite file it converts to.
    identity = {r: {"mean": np.zeros(64), "std": np.ones(64)} for r in INPUTS}
    sm_dir = str(tmp_path / "sm")
    savedmodel.export_saved_model(
        serving.feature_serving_model(ef_model, identity, rewrite=True), sm_dir
    )
    path = str(tmp_path / "fast.tflite")
    with open(path, "wb") as f:
        f.write(tflite.convert_float(sm_dir))
    assert _op_counts(path)["DEPTHWISE_CONV_2D"] == 3
    rng = np.random.default_rng(2)
    x = {r: rng.standard_normal((4, *FEATURES.shapes[r])).astype(np.float32) for r in INPUTS}
    want = verify.keras_outputs(ef_model, x)
    got = verify.tflite_outputs(path, x)
    assert set(got) == set(want) == {"probs", "frames"}
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, err_msg=name)
    assert np.ptp(want["frames"]) > 0.1  # the outputs differ between frames and classes


def test_split_convolution_with_bias_and_activation():
    import keras

    keras.utils.set_random_seed(3)
    x = keras.Input((12, 10, 2))
    y = keras.layers.Conv2D(5, (3, 5), padding="same", activation="relu", name="wide")(x)
    y = keras.layers.Conv2D(3, 3, padding="same", name="narrow")(y)  # 3 wide: kept
    model = keras.Model(x, y)
    model.get_layer("wide").bias.assign(np.linspace(-0.5, 0.5, 5))
    fast = rewrite.for_tflite(model)
    assert fast.get_layer("wide").kernel.shape == (3, 1, 10, 5)
    assert fast.get_layer("narrow").kernel.shape == (3, 3, 5, 3)
    data = np.random.default_rng(4).standard_normal((3, 12, 10, 2)).astype(np.float32)
    np.testing.assert_allclose(fast(data), model(data), atol=1e-5)
    # An even width: 'same' pads (width - 1) // 2 bins in front, the rest behind.
    x = keras.Input((9, 11, 3))
    even = keras.Model(x, keras.layers.Conv2D(4, (2, 6), padding="same", name="even")(x))
    fast = rewrite.for_tflite(even)
    assert fast.get_layer("even").kernel.shape == (2, 1, 18, 4)
    data = np.random.default_rng(5).standard_normal((2, 9, 11, 3)).astype(np.float32)
    np.testing.assert_allclose(fast(data), even(data), atol=1e-5)
    # A free time axis: left as it is (the stacks reshape to static shapes).
    x = keras.Input((None, 11, 1))
    free = keras.Model(x, keras.layers.Conv2D(4, 7, padding="same", name="free")(x))
    assert rewrite.for_tflite(free).get_layer("free").kernel.shape == (7, 7, 1, 4)
    seq = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 7, padding="same")])
    assert rewrite.for_tflite(seq) is seq  # only functional models are rewritten


def test_rewritten_int8_file_has_no_average_pool(tmp_path, ef_model):
    normalization = {r: {"mean": np.full(64, -40.0), "std": np.linspace(5, 15, 64)} for r in INPUTS}
    examples = calibration.synthetic_examples(FEATURES.shapes, normalization, 6, seed=0)
    reference = verify.keras_outputs(ef_model, checks.normalized(examples.features, normalization))
    frames = reference["frames"].reshape(-1, 3)  # [N * t, classes]
    top2 = np.sort(frames, axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.05  # int8 may flip near-ties only
    counts, probs = {}, {}
    for kind in ("baseline", "current"):
        sm_dir = str(tmp_path / f"sm_{kind}")
        savedmodel.export_saved_model(
            serving.feature_serving_model(ef_model, normalization, rewrite=kind == "current"),
            sm_dir,
        )
        path = str(tmp_path / f"{kind}.tflite")
        with open(path, "wb") as f:
            f.write(tflite.convert_int8(sm_dir, lambda: examples.batches(batch_size=1)))
        counts[kind] = _op_counts(path)
        out = verify.tflite_outputs(path, examples.features)
        check = verify.compare(reference, out, tolerance=0.05, artifact=kind)
        assert check.passed, check
        got = out["frames"].reshape(-1, 3)
        np.testing.assert_array_equal(got[clear].argmax(-1), frames[clear].argmax(-1))
        probs[kind] = got
    assert clear.any()
    np.testing.assert_allclose(probs["current"], probs["baseline"], atol=0.02)
    assert counts["baseline"]["AVERAGE_POOL_2D"] == 3
    assert "AVERAGE_POOL_2D" not in counts["current"]
    assert counts["current"]["DEPTHWISE_CONV_2D"] == 3
    assert counts["current"]["CONV_2D"] == counts["baseline"]["CONV_2D"]  # split, not added
    assert counts["current"]["TRANSPOSE"] == 1  # the stack's and the split's transposes fold
