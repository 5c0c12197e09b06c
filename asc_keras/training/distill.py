"""Knowledge distillation: the student's loss against labels and a teacher's soft targets.

With a teacher (`TrainConfig.teacher`), each trained output's per-clip loss is

    loss = kd_lambda * CE(y, p_s) + (1 - kd_lambda) * T^2 * KL(q_t || softmax(z_s / T))

where `y` is the (mixed) one-hot label `[b, C]`, `p_s` the student's probabilities, `z_s = log
(clip(p_s, epsilon, 1))` its logits (the models end in a softmax; softmax is shift-invariant,
so log-probabilities are logits), `q_t = softmax(z_t / T)` the teacher's soft targets at
temperature T (computed on the host from the teacher file, `data.teacher`) and `KL(q || r) =
sum_c q_c (log q_c - log r_c)`, as the DCASE 2023 winner (cpjku_dcase23: lambda 0.02, T 2).
A 'frames' output (SPSMT, `[b, T', C]`) gets the mean over its frames of this loss, every frame
against its clip's label and soft targets, as its cross-entropy is applied.

Mixup mixes `q_t` like the label (same weight, same partner; the pipeline carries `[y, q_t]`
as one `[b, 2C]` tensor). Because the KL is linear in its first argument up to the entropy of
`q`, which does not depend on the student, the gradient of the KL against the mixed targets
`lam q_i + (1 - lam) q_j` equals that of `lam KL(q_i || r) + (1 - lam) KL(q_j || r)`, the mix of
the two losses that cpjku computes; only the reported loss value differs by that entropy.

- `split_targets(labels, num_classes) -> (y [b, C], q [b, C])`;
- `kd_terms(kind, y, q, y_pred, temperature) -> (ce [b], kd [b])`: the unweighted per-clip
  cross-entropy and `T^2 * KL`;
- `Distillation(kd_lambda, temperature, num_classes)`: what the training step needs.
"""

from __future__ import annotations

import dataclasses

CE, KD = "ce", "kd"  # the loss terms logged beside the total (TensorBoard `loss/ce`, `loss/kd`)


@dataclasses.dataclass(frozen=True)
class Distillation:
    """The distillation settings of a training step (`TrainConfig.kd_lambda`, `kd_temperature`)."""

    kd_lambda: float
    temperature: float
    num_classes: int


def split_targets(labels, num_classes: int):
    """`[b, 2C]` -> `(labels [b, C], teacher soft targets [b, C])`."""
    return labels[:, :num_classes], labels[:, num_classes:]


def student_log_probs(y_pred, temperature: float):
    """`log softmax(log(clip(p, epsilon, 1)) / T)` of student probabilities `[..., C]`."""
    import keras
    import tensorflow as tf

    logits = tf.math.log(tf.clip_by_value(y_pred, keras.config.epsilon(), 1.0))
    return tf.nn.log_softmax(logits / temperature, axis=-1)


def kd_terms(kind: str, labels, targets, y_pred, *, temperature: float):
    """Per-clip cross-entropy and `T^2 * KL(targets || student_T)` of one output.

    Args:
      kind: 'clip' (`y_pred` `[b, C]`) or 'frames' (`[b, T', C]`, the mean over frames).
      labels: (mixed) one-hot labels float32 `[b, C]`.
      targets: (mixed) teacher soft targets at temperature T, float32 `[b, C]`.
      y_pred: the student's probabilities.
      temperature: T.

    Returns:
      `(ce [b], kd [b])`, float32.
    """
    import keras
    import tensorflow as tf

    from asc_keras.models.losses import framewise_categorical_crossentropy

    if kind == "frames":
        ce = framewise_categorical_crossentropy(labels, y_pred)  # [b]
        targets = tf.broadcast_to(targets[:, None, :], tf.shape(y_pred))  # [b, T', C]
    else:
        ce = keras.losses.categorical_crossentropy(labels, y_pred)  # [b]
    log_r = student_log_probs(y_pred, temperature)  # [b, (T',) C]
    kl = tf.reduce_sum(tf.math.xlogy(targets, targets) - targets * log_r, axis=-1)
    if kind == "frames":
        kl = tf.reduce_mean(kl, axis=-1)  # [b]
    return ce, (temperature**2) * kl
