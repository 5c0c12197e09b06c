"""BatchNorm: the saved model's inference-mode statistics must describe the data it was fit on.

A reduced-width 1A model trained for 100 steps on the synthetic 1A set must classify its own
training clips in inference mode (moving statistics) about as well as in training mode (batch
statistics), and far above chance. With Keras's BatchNorm defaults (momentum 0.99, epsilon 1e-3)
the moving averages still remember their initial values after 100 steps and this fails (about
50 % in inference mode against 87 % in training mode for the single CNN); with the authors'
PyTorch settings (momentum 0.9, epsilon 1e-5), or after `recalibrate_bn`, it passes.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from asc_keras.config import ModelConfig, TrainConfig
from asc_keras.data import pipeline
from asc_keras.data.manifest import load_manifest
from asc_keras.training import batchnorm, trainer

STEPS = 100


def _quiet(*_):
    pass


def _train_split_accuracy(model, manifest, reps, *, training: bool) -> float:
    correct = total = 0
    for features, meta in pipeline.eval_dataset(
        manifest, "train", representations=reps, batch_size=16
    ):
        probs = keras.ops.convert_to_numpy(model(features, training=training)["probs"])
        correct += int(np.sum(probs.argmax(axis=1) == meta["label"].numpy()))
        total += len(probs)
    return correct / total


def _train(features, tmp_path, *, model_kw=None, **train_kw):
    folder, feature_cfg, data_cfg = features
    inputs = ("logmel",)
    model_cfg = ModelConfig(
        backbone="1a",
        inputs=inputs,
        input_bins={"logmel": 40},
        num_frames=feature_cfg.num_frames,
        num_classes=10,
        width=0.125,
        **(model_kw or {}),
    )
    train_cfg = TrainConfig(
        model_dir=str(tmp_path / "run"),
        train_steps=STEPS,
        batch_size=16,
        eval_every=0,
        checkpoint_every=STEPS,
        log_every=STEPS,
        **train_kw,
    )
    out = trainer.run(feature_cfg, data_cfg, model_cfg, train_cfg, progress=False, log=_quiet)
    model = keras.saving.load_model(out["model_path"], safe_mode=True)
    manifest = load_manifest(folder)
    return (
        _train_split_accuracy(model, manifest, inputs, training=False),
        _train_split_accuracy(model, manifest, inputs, training=True),
    )


@pytest.mark.slow
@pytest.mark.parametrize("strategies", [(), ("spsmf",), ("spsmt",)], ids=["cnn", "spsmf", "spsmt"])
def test_inference_mode_fits_like_training_mode(tiny_1a_features, tmp_path, strategies):
    inference, training = _train(tiny_1a_features, tmp_path, model_kw={"strategies": strategies})
    assert inference >= 0.6, (inference, training)  # chance is 0.1
    assert inference >= training - 0.1, (inference, training)


def test_defaults_follow_the_authors_framework():
    from asc_keras.strategies import build_model
    from asc_keras.training import optimizer as optimizer_lib

    model = build_model(
        ModelConfig(backbone="1b", num_classes=3, width=0.125, input_bins={"logmel": 64})
    )
    bns = batchnorm.batchnorm_layers(model)
    assert len(bns) == 4
    assert all(b.momentum == pytest.approx(0.9) and b.epsilon == pytest.approx(1e-5) for b in bns)
    weighted = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    assert all(type(layer.kernel_initializer).__name__ == "HeUniform" for layer in weighted)
    assert all(not np.any(layer.bias.numpy()) for layer in weighted if layer.use_bias)
    assert optimizer_lib.make_optimizer(TrainConfig()).epsilon == pytest.approx(1e-8)


def test_he_uniform_bound():
    """Kernels are U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)) like PyTorch's kaiming_uniform_."""
    from asc_keras.strategies import build_model

    model = build_model(ModelConfig(backbone="1a", width=0.25, num_frames=64))
    kernel = model.get_layer("logmel_block2_conv1").kernel.numpy()  # [3, 3, 16, 32]
    bound = np.sqrt(6.0 / (3 * 3 * kernel.shape[2]))
    assert np.abs(kernel).max() <= bound
    assert np.abs(kernel).max() > 0.9 * bound  # Glorot's bound would be sqrt(6/(144+288))
    assert np.std(kernel) == pytest.approx(bound / np.sqrt(3), rel=0.1)


def test_recalibrate_sets_plain_average_of_batch_statistics():
    """One BatchNorm after the input: its statistics are the mean of the batches' moments."""
    inputs = keras.Input((6, 4, 3), name="x")
    outputs = keras.layers.BatchNormalization(name="bn")(inputs)
    model = keras.Model({"x": inputs}, {"probs": outputs})
    rng = np.random.default_rng(0)
    batches = [
        {"x": (rng.standard_normal((5, 6, 4, 3)) * (i + 1) + i).astype(np.float32)}
        for i in range(3)
    ]
    assert batchnorm.recalibrate(model, iter(batches), 10) == 3
    bn = model.get_layer("bn")
    means = [b["x"].reshape(-1, 3).mean(axis=0) for b in batches]
    variances = [b["x"].reshape(-1, 3).var(axis=0) for b in batches]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean(variances, axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="no batches"):
        batchnorm.recalibrate(model, iter([]), 2)


@pytest.mark.slow
def test_recalibrate_bn_rescues_keras_defaults(tiny_1a_features, tmp_path):
    """Keras's BatchNorm defaults with `recalibrate_bn`: inference mode fits again."""
    inference, training = _train(
        tiny_1a_features,
        tmp_path,
        model_kw={"bn_momentum": 0.99, "bn_epsilon": 1e-3},
        recalibrate_bn=4,
    )
    assert inference >= 0.6, (inference, training)
    assert inference >= training - 0.1, (inference, training)
