"""Exported TFLite files run in the LiteRT interpreter and in TensorFlow's, with equal outputs."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import spread_probabilities, tiny_model_config

from asc_keras.config import FeatureConfig
from asc_keras.export import calibration, checks, savedmodel, serving, tflite, verify
from asc_keras.inference import tflite_runner
from asc_keras.strategies import build_model

FEATURES = FeatureConfig(clip_seconds=0.5, logmel_bins=64, representations=("logmel", "cqt"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A tiny 1B EF + SPSMT model: SavedModel, float and int8 TFLite, and raw test features."""
    import keras

    root = tmp_path_factory.mktemp("litert")
    keras.utils.set_random_seed(0)
    model = build_model(
        tiny_model_config(FEATURES, inputs=("logmel", "cqt"), fusion="ef", strategies=("spsmt",))
    )
    spread_probabilities(model, factor=3.0)
    normalization = {
        r: {"mean": np.full(64, -40.0), "std": np.linspace(5, 15, 64)} for r in ("logmel", "cqt")
    }
    examples = calibration.synthetic_examples(FEATURES.shapes, normalization, 8, seed=0)
    sm_dir = str(root / "saved_model")
    savedmodel.export_saved_model(serving.feature_serving_model(model, normalization), sm_dir)
    paths = {"float": str(root / "model.tflite"), "int8": str(root / "model_int8.tflite")}
    with open(paths["float"], "wb") as f:
        f.write(tflite.convert_float(sm_dir))
    with open(paths["int8"], "wb") as f:
        f.write(tflite.convert_int8(sm_dir, lambda: examples.batches(batch_size=1)))
    reference = verify.keras_outputs(model, checks.normalized(examples.features, normalization))
    return paths, examples, reference


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_litert_and_tensorflow_interpreters_agree(artifacts, kind):
    paths, examples, reference = artifacts
    outs = {
        rt: verify.tflite_outputs(paths[kind], examples.features, runtime=rt)
        for rt in verify.RUNTIMES
    }
    assert set(outs["litert"]) == set(outs["tensorflow"]) == {"probs", "frames"}
    for name in outs["litert"]:
        np.testing.assert_allclose(
            outs["tensorflow"][name], outs["litert"][name], atol=1e-6, err_msg=name
        )
    tolerance = 1e-5 if kind == "float" else 0.05
    check = verify.compare(reference, outs["litert"], tolerance=tolerance, artifact=kind)
    assert check.passed, check
    # int8 may flip near-ties; every clip whose top two classes differ by more than the
    # tolerance must keep its decision.
    top2 = np.sort(reference["probs"], axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > tolerance
    assert clear.any()
    np.testing.assert_array_equal(
        outs["litert"]["probs"][clear].argmax(-1), reference["probs"][clear].argmax(-1)
    )


def test_litert_resizes_the_batch(artifacts):
    """A batch of clips in one call equals clip-by-clip runs (what evaluate.py relies on)."""
    paths, examples, _ = artifacts
    one_by_one = verify.tflite_outputs(paths["float"], examples.features)
    runner = tflite_runner.make_interpreter(paths["float"]).get_signature_runner("serving_default")
    batched = runner(**examples.features)
    np.testing.assert_allclose(batched["probs"], one_by_one["probs"], atol=1e-6)


def test_int8_file_takes_raw_floats_and_dequantizes_with_the_tensor_scale(artifacts):
    """Raw float features in (the normalization runs in float inside the file), int8 outputs:
    read with the tensor's scale and zero point they give float's answers, read as plain
    numbers they do not."""
    paths, examples, reference = artifacts
    ins, outs = tflite_runner.tflite_io(paths["int8"])
    assert {d["dtype"] for d in ins.values()} == {np.float32}
    assert outs["probs"]["dtype"] == np.int8
    runner = tflite_runner.make_interpreter(paths["int8"]).get_signature_runner("serving_default")
    x = examples.features
    q = runner(**{k: tflite_runner.quantize(v, ins[k]) for k, v in x.items()})
    probs = tflite_runner.dequantize(q["probs"], outs["probs"])
    assert np.abs(probs - reference["probs"]).max() < 0.05
    naive_probs = q["probs"].astype(np.float32)
    assert np.abs(naive_probs - probs).max() > np.abs(probs - reference["probs"]).max()
