"""Freq-MixStyle on a training batch (Schmid et al., DCASE 2022; the DCASE 2024/25 baselines).

`freq_mixstyle_batch(features, *, p, alpha, seed)` takes a batch `{rep: float32 [B, T, F]}` and
returns a batch of the same shapes. With probability `p` (one draw per batch) every example's
input is normalized per frequency bin and re-scaled with per-bin statistics mixed with a
shuffled partner's:

    mu_bf  = mean_t x_btf,  sig_bf = sqrt(var_t x_btf + eps)     [B, 1, F], var with 1 / (T - 1)
    lam_b ~ Beta(alpha, alpha)                                  one sample per example
    j = perm(b)                                                 a seeded permutation
    mu_mix  = lam_b * mu_b  + (1 - lam_b) * mu_j
    sig_mix = lam_b * sig_b + (1 - lam_b) * sig_j
    x_btf <- (x_btf - mu_bf) / sig_bf * sig_mix_bf + mu_mix_bf

eps is 1e-6 and the variance is the unbiased one, as the 2024 baseline's `mixstyle` (PyTorch's
`var`) computes them; its statistics are over time and channels of a one-channel spectrogram,
which here is time (the features carry no channel axis). Labels are not changed.

Several representations (EF, MF, SPSMR inputs) share one draw: the same coin, the same
`lam_b` and the same partner for every representation of an example (as mixup shares its
`lam`), while each representation is normalized with its own per-bin statistics, so every view
of a clip takes on the style of the same partner clip. Applied to normalized features it is the
same as on raw ones (a per-bin affine map commutes with it, up to eps).

All randomness is stateless and comes from `seed` (`int [2]`): the pipeline folds the run seed
and the batch index into it, so a resumed run sees exactly the batches of an uninterrupted one.
`p == 0` returns the inputs untouched.
"""

from __future__ import annotations

from collections.abc import Mapping

from asc_keras.data import mixup as mixup_lib

EPS = 1e-6  # the 2024 baseline's eps


def draws(batch, *, p: float, alpha: float, seed):
    """The random choices of one batch: `(apply: bool [], lam: float32 [B], perm: int32 [B])`.

    `apply` is one uniform draw < p, `lam` one Beta(alpha, alpha) sample per example, `perm` a
    permutation (the partner of example b is perm[b]); all stateless from `seed` (`int [2]`).
    """
    import tensorflow as tf

    seed_coin, seed_lam, seed_perm = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
    lam = mixup_lib.sample_beta([batch], alpha=alpha, seed=seed_lam)  # [B]
    perm = tf.argsort(tf.random.stateless_uniform([batch], seed_perm))  # [B] partner index
    return tf.random.stateless_uniform([], seed_coin) < p, lam, perm


def freq_mixstyle_batch(features: Mapping, *, p: float, alpha: float, seed, eps: float = EPS):
    """Freq-MixStyle on a batch (see the module docstring).

    Args:
      features: `{representation: float32 [B, T, F]}`.
      p: probability that this batch is mixed; 0 returns the inputs unchanged.
      alpha: the Beta distribution's parameter (> 0).
      seed: int32/int64 `[2]` stateless seed of this batch.
      eps: added to the variance.

    Returns:
      `{representation: float32 [B, T, F]}`.
    """
    import tensorflow as tf

    if not 0 <= p <= 1:
        raise ValueError(f"freq_mixstyle p must be in [0, 1], got {p}")
    if p == 0:
        return dict(features)
    if not alpha > 0:
        raise ValueError(f"freq_mixstyle alpha must be positive, got {alpha}")
    batch = tf.shape(next(iter(features.values())))[0]
    apply, lam, perm = draws(batch, p=p, alpha=alpha, seed=seed)
    lam = lam[:, None, None]  # [B, 1, 1]

    def mixed():
        out = {}
        for name, x in features.items():
            frames = tf.cast(tf.shape(x)[1], x.dtype)
            mu = tf.reduce_mean(x, axis=1, keepdims=True)  # [B, 1, F]
            var = tf.reduce_sum(tf.square(x - mu), axis=1, keepdims=True) / (frames - 1.0)
            sig = tf.sqrt(var + eps)  # [B, 1, F]
            mu_mix = lam * mu + (1.0 - lam) * tf.gather(mu, perm)  # [B, 1, F]
            sig_mix = lam * sig + (1.0 - lam) * tf.gather(sig, perm)  # [B, 1, F]
            out[name] = (x - mu) / sig * sig_mix + mu_mix  # [B, T, F]
        return out

    return tf.cond(apply, mixed, lambda: dict(features))
