"""EF, MF and LF numerics, not only shapes: channel order, frequency resizing, concatenation.

Each check reads a fusion layer's output from the built model (a sub-model over the layer
names) and recomputes it in numpy from the layer's sources: the inputs (EF) or each branch's
own feature map (MF, LF). The resize oracle is a numpy bilinear interpolation with half-pixel
centres and no antialiasing (what `keras.layers.Resizing(interpolation="bilinear")` promises).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from asc_keras.config import ModelConfig
from asc_keras.strategies import build_model

BINS = {"logmel": 40, "cqt": 64, "gamma": 48, "mfcc": 40}
ORDER = ("gamma", "logmel", "mfcc", "cqt")  # not the canonical order: the order is the config's
TINY = dict(width=0.125, num_frames=32, input_bins=BINS, inputs=ORDER)


def bilinear_freq(x: np.ndarray, bins: int) -> np.ndarray:
    """Resize axis 2 of `[b, t, f, c]` to `bins` (half-pixel centres, edge clamped)."""
    size = x.shape[2]
    src = np.clip((np.arange(bins) + 0.5) * size / bins - 0.5, 0, size - 1)  # [bins]
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, size - 1)
    frac = (src - lo)[None, None, :, None]
    return x[:, :, lo, :] * (1 - frac) + x[:, :, hi, :] * frac


def test_bilinear_oracle_is_tf_image_resize():
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(2, 5, 40, 3)).astype(np.float32)
    for bins in (64, 40, 23):
        want = tf.image.resize(x, (5, bins), method="bilinear", antialias=False).numpy()
        np.testing.assert_allclose(bilinear_freq(x, bins), want, rtol=1e-5, atol=1e-5)


def _inputs(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        n: (rng.normal(size=(2, cfg.num_frames, cfg.bins(n))) + 3 * k).astype(np.float32)
        for k, n in enumerate(cfg.inputs)
    }  # each input offset: channels are recognisable


def _tap(model, names: dict[str, str], x) -> dict[str, np.ndarray]:
    sub = keras.Model(model.inputs, {k: model.get_layer(v).output for k, v in names.items()})
    return {k: keras.ops.convert_to_numpy(v) for k, v in sub(x, training=False).items()}


def _last_layer(model, prefix: str) -> str:
    """The last layer of a conv block (its pooling, or its last ReLU when it has none)."""
    return [layer.name for layer in model.layers if layer.name.startswith(prefix)][-1]


@pytest.mark.parametrize("ef_bins", [64, 32])
def test_ef_stacks_the_resized_inputs_in_input_order(ef_bins):
    cfg = ModelConfig(backbone="1b", fusion="ef", ef_bins=ef_bins, **TINY)
    x = _inputs(cfg)
    stack = _tap(build_model(cfg), {"stack": "ef_stack"}, x)["stack"]
    assert stack.shape == (2, cfg.num_frames, ef_bins, len(ORDER))
    for k, name in enumerate(ORDER):
        want = bilinear_freq(x[name][..., None], ef_bins)[..., 0]
        np.testing.assert_allclose(stack[..., k], want, rtol=1e-5, atol=1e-5, err_msg=name)
        if BINS[name] == ef_bins:
            np.testing.assert_array_equal(stack[..., k], x[name])  # no resize at all


def test_mf_resizes_each_first_block_and_concatenates_channels_in_input_order():
    cfg = ModelConfig(backbone="1b", fusion="mf", **TINY)
    model = build_model(cfg)
    x = _inputs(cfg, seed=1)
    names = {n: _last_layer(model, f"mf_{n}_block1_") for n in ORDER}
    got = _tap(model, {"concat": "mf_concat", **names}, x)
    common = max(got[n].shape[2] for n in ORDER)
    assert common == got["cqt"].shape[2] > got["logmel"].shape[2]
    channels = got[ORDER[0]].shape[3]
    assert got["concat"].shape[2:] == (common, channels * len(ORDER))
    for k, name in enumerate(ORDER):
        assert np.abs(got[name]).max() > 0, name
        part = got["concat"][..., k * channels : (k + 1) * channels]
        np.testing.assert_allclose(
            part, bilinear_freq(got[name], common), rtol=1e-5, atol=1e-5, err_msg=name
        )


def test_lf_concatenates_the_final_maps_along_frequency_in_input_order():
    cfg = ModelConfig(backbone="1b", fusion="lf", **TINY)
    model = build_model(cfg)
    # Weights that make each branch recognisable: the last BatchNorm of branch k outputs k + 1
    # everywhere (gamma 0, beta k + 1), so its final map is the constant k + 1.
    last_block = max(
        int(layer.name.split("_block")[1].split("_")[0])
        for layer in model.layers
        if layer.name.startswith("lf_gamma_block")
    )
    for k, name in enumerate(ORDER):
        bn = model.get_layer(_last_layer(model, f"lf_{name}_block{last_block}_bn"))
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([np.zeros_like(gamma), np.full_like(beta, k + 1.0), mean, var])
    x = _inputs(cfg, seed=2)
    names = {n: _last_layer(model, f"lf_{n}_block{last_block}_") for n in ORDER}
    got = _tap(model, {"concat": "lf_concat", **names}, x)
    widths = [got[n].shape[2] for n in ORDER]
    assert got["concat"].shape[2] == sum(widths) and len(set(widths)) > 1
    start = 0
    for k, (name, w) in enumerate(zip(ORDER, widths, strict=True)):
        part = got["concat"][:, :, start : start + w, :]
        np.testing.assert_array_equal(part, got[name], err_msg=name)
        np.testing.assert_allclose(part, k + 1.0, err_msg=name)
        start += w
