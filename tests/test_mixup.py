"""Mixup: Beta samples, same mix for features and labels, seeded, alpha 0 disables."""

from __future__ import annotations

import numpy as np
import pytest

from asc_keras.data import mixup


def _batch(n=32, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]  # [B, C]
    # Features that encode the label: mixing them must mix the labels the same way.
    feats = {
        "logmel": np.repeat(labels[:, None, :], 3, axis=1),  # [B, 3, C]
        "cqt": np.tile(labels[:, None, :], (1, 2, 2)) * 5.0,
    }  # [B, 2, 2C]
    return feats, labels


def test_features_and_labels_mixed_alike():
    import tensorflow as tf

    feats, labels = _batch()
    seed = tf.constant([1, 2], tf.int64)
    mixed, mixed_labels = mixup.mixup_batch(feats, labels, alpha=0.2, seed=seed)
    mixed_labels = mixed_labels.numpy()
    np.testing.assert_allclose(
        mixed["logmel"].numpy(), np.repeat(mixed_labels[:, None, :], 3, 1), atol=1e-6
    )
    np.testing.assert_allclose(
        mixed["cqt"].numpy(), np.tile(mixed_labels[:, None, :], (1, 2, 2)) * 5.0, atol=1e-5
    )
    np.testing.assert_allclose(mixed_labels.sum(1), 1.0, atol=1e-6)
    again = mixup.mixup_batch(feats, labels, alpha=0.2, seed=seed)[1].numpy()
    np.testing.assert_array_equal(mixed_labels, again)
    other = mixup.mixup_batch(feats, labels, alpha=0.2, seed=tf.constant([1, 3], tf.int64))[1]
    assert not np.array_equal(mixed_labels, other.numpy())


def test_partner_is_a_permutation():
    import tensorflow as tf

    n = 16
    labels = np.eye(n, dtype=np.float32)  # every example its own class
    _, mixed = mixup.mixup_batch(
        {"x": labels[:, None, :]}, labels, alpha=1.0, seed=tf.constant([5, 6], tf.int64)
    )
    mixed = mixed.numpy()
    partners = []
    for i in range(n):
        others = [j for j in np.flatnonzero(mixed[i] > 1e-7) if j != i]
        assert len(others) <= 1
        partners.append(others[0] if others else i)
    assert len(set(partners)) >= n - 1  # (a self-partner shows as itself)


def test_beta_samples():
    import tensorflow as tf

    lam = mixup.sample_beta([20000], alpha=0.2, seed=tf.constant([0, 1], tf.int64)).numpy()
    assert lam.dtype == np.float32 and np.isfinite(lam).all()
    assert lam.min() >= 0 and lam.max() <= 1
    assert abs(lam.mean() - 0.5) < 0.02
    # Beta(0.2, 0.2) is U-shaped; compare with its CDF (float32 rounds about 2 % to exactly 1).
    from scipy import stats

    points = np.array([0.001, 0.1, 0.5, 0.9, 0.999])
    empirical = (lam[:, None] <= points).mean(0)
    np.testing.assert_allclose(empirical, stats.beta(0.2, 0.2).cdf(points), atol=0.015)


def test_alpha_zero_is_identity_and_negative_fails():
    import tensorflow as tf

    feats, labels = _batch()
    mixed, mixed_labels = mixup.mixup_batch(
        feats, labels, alpha=0.0, seed=tf.constant([0, 0], tf.int64)
    )
    np.testing.assert_array_equal(np.asarray(mixed["logmel"]), feats["logmel"])
    np.testing.assert_array_equal(np.asarray(mixed_labels), labels)
    with pytest.raises(ValueError, match="alpha"):
        mixup.mixup_batch(feats, labels, alpha=-1.0, seed=tf.constant([0, 0], tf.int64))
