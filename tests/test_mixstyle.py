"""Freq-MixStyle: the 2024 baseline's formula (NumPy transcription), one draw shared by every
representation, the per-batch probability, and the training stream (p = 0 unchanged bit for
bit, seeded, resumable)."""

from __future__ import annotations

import numpy as np
import pytest

from asc_keras.data import mixstyle


def _reference(x: np.ndarray, lam: np.ndarray, perm: np.ndarray, eps: float = 1e-6):
    """The baseline's `mixstyle` on `[B, T, F]` (PyTorch's [B, C, F, T] with C = 1): statistics
    over time (and the one channel), unbiased variance, float64."""
    x = x.astype(np.float64)
    mu = x.mean(axis=1, keepdims=True)  # [B, 1, F]
    sig = np.sqrt(x.var(axis=1, ddof=1, keepdims=True) + eps)  # [B, 1, F]
    normed = (x - mu) / sig
    lam = lam.astype(np.float64)[:, None, None]
    mu_mix = mu * lam + mu[perm] * (1 - lam)
    sig_mix = sig * lam + sig[perm] * (1 - lam)
    return normed * sig_mix + mu_mix


def _batch(seed=0, b=8, t=11):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 3.0, (b, 1, 1)).astype(np.float32)  # clips of different "devices"
    return {
        "logmel": (rng.standard_normal((b, t, 6)) * scale + 2.0).astype(np.float32),
        "cqt": (rng.standard_normal((b, t, 4)) * scale - 1.0).astype(np.float32),
    }


def test_matches_the_baseline_formula_with_one_draw_for_every_representation():
    import tensorflow as tf

    feats = _batch()
    seed = tf.constant([3, 4], tf.int64)
    apply, lam, perm = mixstyle.draws(8, p=1.0, alpha=0.3, seed=seed)
    assert bool(apply)
    assert sorted(perm.numpy().tolist()) == list(range(8)) and np.all((lam > 0) & (lam < 1))
    out = mixstyle.freq_mixstyle_batch(feats, p=1.0, alpha=0.3, seed=seed)
    for name, x in feats.items():
        expected = _reference(x, lam.numpy(), perm.numpy())
        np.testing.assert_allclose(out[name].numpy(), expected, rtol=1e-4, atol=1e-4)
        assert out[name].shape == x.shape
    # The output takes on the mixed per-bin statistics.
    got = out["logmel"].numpy().std(axis=1, ddof=1)
    assert not np.allclose(got, feats["logmel"].std(axis=1, ddof=1), rtol=0.05)
    again = mixstyle.freq_mixstyle_batch(feats, p=1.0, alpha=0.3, seed=seed)
    np.testing.assert_array_equal(again["cqt"].numpy(), out["cqt"].numpy())


def test_probability_per_batch_and_off_at_zero():
    import tensorflow as tf

    feats = _batch(1)
    applied = [
        bool(mixstyle.draws(8, p=0.4, alpha=0.3, seed=tf.constant([k, 9], tf.int64))[0])
        for k in range(400)
    ]
    assert abs(np.mean(applied) - 0.4) < 0.08  # 3.3 sigma of a binomial(400, 0.4)
    skipped = next(k for k, a in enumerate(applied) if not a)
    out = mixstyle.freq_mixstyle_batch(
        feats, p=0.4, alpha=0.3, seed=tf.constant([skipped, 9], tf.int64)
    )
    np.testing.assert_array_equal(np.asarray(out["logmel"]), feats["logmel"])
    assert mixstyle.freq_mixstyle_batch(feats, p=0.0, alpha=0.3, seed=None) == feats
    with pytest.raises(ValueError, match="alpha"):
        mixstyle.freq_mixstyle_batch(feats, p=0.5, alpha=0.0, seed=tf.constant([1, 2]))


def _take(ds, n):
    return [(f["logmel"].numpy(), y.numpy()) for f, y in ds.take(n)]


def test_training_stream_off_is_unchanged_and_on_is_resumable(tiny_1a_features):
    from asc_keras.data import pipeline
    from asc_keras.data.manifest import load_manifest

    manifest = load_manifest(tiny_1a_features[0])
    common = dict(representations=("logmel",), batch_size=4, seed=5, mixup_alpha=0.2)
    plain = _take(pipeline.train_dataset(manifest, **common), 6)
    off = _take(pipeline.train_dataset(manifest, **common, freq_mixstyle_p=0.0), 6)
    for (a, ya), (b, yb) in zip(plain, off, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    on = _take(pipeline.train_dataset(manifest, **common, freq_mixstyle_p=0.5), 6)
    changed = [not np.array_equal(a, b) for (a, _), (b, _) in zip(plain, on, strict=True)]
    assert 0 < sum(changed) < 6  # some batches mixed, some not (p = 0.5, this seed)
    for (_, ya), (_, yb) in zip(plain, on, strict=True):
        np.testing.assert_array_equal(ya, yb)  # labels are mixup's only
    resumed = _take(
        pipeline.train_dataset(manifest, **common, freq_mixstyle_p=0.5, skip_batches=3), 3
    )
    for (a, ya), (b, yb) in zip(on[3:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.slow
def test_training_with_freq_mixstyle_resumes_exactly(tiny_1b_features, tmp_path):
    """An EF model (two representations, one shared draw) trained 4 steps with p = 0.5 equals
    the same run stopped at step 2 and resumed; the recorded run names p and alpha."""
    import json

    from asc_keras.config import ModelConfig, TrainConfig
    from asc_keras.models import load_model
    from asc_keras.training import trainer

    _, feature_cfg, data_cfg = tiny_1b_features
    model_cfg = ModelConfig(
        backbone="1b",
        inputs=("logmel", "cqt"),
        fusion="ef",
        input_bins={r: feature_cfg.bins(r) for r in ("logmel", "cqt")},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=0.125,
    )

    def run(name, steps, p=0.5):
        cfg = TrainConfig(
            model_dir=str(tmp_path / name),
            train_steps=steps,
            batch_size=4,
            eval_every=0,
            checkpoint_every=2,
            log_every=2,
            deterministic=True,
            freq_mixstyle_p=p,
        )
        trainer.run(feature_cfg, data_cfg, model_cfg, cfg, progress=False, log=lambda *_: None)
        return load_model(str(tmp_path / name / "model.keras"), compile=False).get_weights()

    whole = run("whole", 4)
    run("resumed", 2)
    resumed = run("resumed", 4)
    for a, b in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    off = run("off", 4, p=0.0)
    assert not all(np.array_equal(a, b) for a, b in zip(whole, off, strict=True))
    record = json.loads((tmp_path / "whole" / "config.json").read_text())["train_config"]
    assert (record["freq_mixstyle_p"], record["freq_mixstyle_alpha"]) == (0.5, 0.3)
