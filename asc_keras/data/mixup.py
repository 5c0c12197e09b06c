"""Mixup on a batch (Zhang et al. 2018), as the paper trains (alpha 0.2).

`mixup_batch(features, labels, *, alpha, seed)` takes a batch `{rep: float32 [B, T, F]}` with
one-hot labels `float32 [B, C]` and returns the mixed batch of the same shapes:

    lam_i ~ Beta(alpha, alpha)        one sample per example
    j = perm(i)                       a new mix partner per example (a seeded permutation)
    x_i <- lam_i * x_i + (1 - lam_i) * x_j      the same lam_i for every representation
    y_i <- lam_i * y_i + (1 - lam_i) * y_j

All randomness is stateless and comes from `seed` (`int [2]`), so a batch is mixed the same way
whenever it is produced again (the pipeline derives the seed from the run seed and the batch
index, which makes a resumed run see exactly the batches of an uninterrupted one).
`alpha == 0` disables mixup.
"""

from __future__ import annotations

from collections.abc import Mapping


def sample_beta(shape, *, alpha: float, seed):
    """`Beta(alpha, alpha)` samples as float32 `shape`, from two stateless Gamma draws.

    Gamma draws are made in float64: with alpha 0.2, float32 Gamma samples underflow to 0 often
    enough (about 1 in 10^8) to give 0/0 over a long run.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=2)  # [2, 2]
    g1 = tf.random.stateless_gamma(shape, seeds[0], alpha=alpha, dtype=tf.float64)
    g2 = tf.random.stateless_gamma(shape, seeds[1], alpha=alpha, dtype=tf.float64)
    total = g1 + g2
    lam = tf.where(total > 0, g1 / tf.where(total > 0, total, 1.0), 0.5)
    return tf.cast(lam, tf.float32)


def mixup_batch(features: Mapping, labels, *, alpha: float, seed):
    """Mix a batch with itself.

    Args:
      features: `{representation: float32 [B, T, F]}`.
      labels: float32 `[B, C]` one-hot (or already soft) labels.
      alpha: the Beta distribution's parameter; 0 returns the inputs unchanged.
      seed: int32/int64 `[2]` stateless seed of this batch.

    Returns:
      `(features, labels)` with the shapes of the inputs.
    """
    import tensorflow as tf

    if alpha < 0:
        raise ValueError(f"mixup alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return dict(features), labels
    seed_lam, seed_perm = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    batch = tf.shape(labels)[0]
    lam = sample_beta([batch], alpha=alpha, seed=seed_lam)  # [B]
    perm = tf.argsort(tf.random.stateless_uniform([batch], seed_perm))  # [B] partner index
    mixed = {}
    for name, x in features.items():
        lam_x = tf.reshape(lam, [-1] + [1] * (len(x.shape) - 1))  # [B, 1, 1]
        mixed[name] = lam_x * x + (1.0 - lam_x) * tf.gather(x, perm)  # [B, T, F]
    lam_y = lam[:, None]  # [B, 1]
    mixed_labels = lam_y * labels + (1.0 - lam_y) * tf.gather(labels, perm)  # [B, C]
    return mixed, mixed_labels
