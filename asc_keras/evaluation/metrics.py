"""DCASE 2020 Task 1 metrics in pure numpy.

`compute_metrics(y_true [N] int, probs [N, C] float, devices [N] str, classes)` returns a
JSON-ready dict with two entries, because 1A results are reported both ways:

- `'all'`: every clip;
- `'device_a'`: only the clips recorded with device `a` (None when there are none).

Each entry (see `subset_metrics`) holds:

- `num_examples`;
- `accuracy`: macro-average (class-wise) accuracy, the DCASE ranking metric = mean over the
  classes present of the per-class accuracy;
- `micro_accuracy`: fraction of all clips classified correctly;
- `log_loss`: multiclass cross-entropy with the natural log, mean over clips, probabilities
  clipped to `[eps, 1 - eps]` and renormalised per row as `sklearn.metrics.log_loss` (eps 1e-15)
  did in 2020; `macro_log_loss`: mean of the class-wise log losses;
- `class_wise`: `{class: {'accuracy', 'log_loss', 'num_examples'}}` (metrics None for a class
  without clips);
- `device_wise`: `{device: {'accuracy', 'log_loss', 'num_examples'}}` for the devices present,
  in the order of `device_order` (then any other device name, sorted). Device accuracy is micro
  (clips of that device classified correctly), as in the DCASE result tables;
- `confusion_matrix`: `[C, C]` counts, rows = true class, columns = predicted class.

With `device_groups` (`{group: devices}`, the task's `asc_keras.tasks.Task.device_groups`:
real a, b, c; seen s1-s3; unseen s4-s6, D, S7-S11), the `'all'` entry also holds
`device_groups`: `{group: {'accuracy', 'micro_accuracy', 'log_loss', 'num_examples',
'devices'}}` for every group with clips. A group's `accuracy` is the DCASE metric on the
group's clips: the macro-average class accuracy over the clips of its devices (as `device_a`
is scored), not the mean of its devices' accuracies; `micro_accuracy` is the share of its clips
classified right (what the 2024 baseline logs per group). Device names match case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_EPS = 1e-15
REFERENCE_DEVICE = "a"


def clip_probs(probs: np.ndarray, *, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Clip `[N, C]` probabilities to `[eps, 1 - eps]` and renormalise every row to sum to 1."""
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0 - eps)  # [N, C]
    return p / p.sum(axis=1, keepdims=True)  # [N, C]


def per_example_log_loss(
    y_true: np.ndarray, probs: np.ndarray, *, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """`-log p[i, y_true[i]]` after sklearn-style clipping; `[N]` float64."""
    p = clip_probs(probs, eps=eps)  # [N, C]
    y = np.asarray(y_true, dtype=np.int64)  # [N]
    return -np.log(p[np.arange(len(y)), y])  # [N]


def log_loss(y_true: np.ndarray, probs: np.ndarray, *, eps: float = DEFAULT_EPS) -> float:
    """Multiclass log loss (natural log), mean over examples, sklearn-style clipping."""
    return float(np.mean(per_example_log_loss(y_true, probs, eps=eps)))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """`[C, C]` int64 counts; rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def _none_if_nan(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _check_inputs(y_true, probs, devices, num_classes):
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)  # [N]
    p = np.asarray(probs, dtype=np.float64)  # [N, C]
    d = np.asarray([str(x) for x in devices], dtype=object)  # [N]
    if p.ndim != 2 or p.shape[1] != num_classes:
        raise ValueError(f"probs must be [N, {num_classes}], got {p.shape}")
    if not len(y) == len(p) == len(d):
        raise ValueError(f"lengths differ: y_true {len(y)}, probs {len(p)}, devices {len(d)}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}); got min {y.min()}, max {y.max()} "
            "(unlabeled clips, label -1, cannot be scored)"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contain NaN or inf")
    return y, p, d


def subset_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    devices: Sequence[str],
    classes: Sequence[str],
    *,
    eps: float = DEFAULT_EPS,
    device_order: Sequence[str] = (),
) -> dict:
    """Every metric of one set of clips (see the module docstring for the keys).

    Args:
      y_true: int `[N]` class indices into `classes`.
      probs: float `[N, C]` class probabilities.
      devices: `[N]` device names.
      classes: the `C` class names, in the order of the model's outputs.
      eps: probability clipping for the log loss.
      device_order: preferred order of the device-wise entries.

    Returns:
      A JSON-ready dict of python floats, ints and lists.
    """
    num_classes = len(classes)
    y, p, d = _check_inputs(y_true, probs, devices, num_classes)
    pred = np.argmax(p, axis=1) if len(y) else np.zeros(0, np.int64)  # [N]
    correct = pred == y  # [N]
    losses = per_example_log_loss(y, p, eps=eps) if len(y) else np.zeros(0)  # [N]

    class_wise = {}
    for c, name in enumerate(classes):
        m = y == c
        n = int(m.sum())
        class_wise[name] = {
            "accuracy": float(correct[m].mean()) if n else None,
            "log_loss": float(losses[m].mean()) if n else None,
            "num_examples": n,
        }
    present = [v for v in class_wise.values() if v["num_examples"]]

    seen = set(d.tolist())
    ordered = [x for x in device_order if x in seen] + sorted(seen - set(device_order))
    device_wise = {}
    for dev in ordered:
        m = d == dev
        device_wise[dev] = {
            "accuracy": float(correct[m].mean()),
            "log_loss": float(losses[m].mean()),
            "num_examples": int(m.sum()),
        }

    def mean_of(key):
        return _none_if_nan(np.mean([v[key] for v in present])) if present else None

    return {
        "num_examples": int(len(y)),
        "accuracy": mean_of("accuracy"),
        "micro_accuracy": float(correct.mean()) if len(y) else None,
        "log_loss": float(losses.mean()) if len(y) else None,
        "macro_log_loss": mean_of("log_loss"),
        "class_wise": class_wise,
        "device_wise": device_wise,
        "confusion_matrix": confusion_matrix(y, pred, num_classes).tolist(),
    }


def group_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    devices: Sequence[str],
    classes: Sequence[str],
    device_groups: Mapping[str, Sequence[str]],
    *,
    eps: float = DEFAULT_EPS,
) -> dict:
    """`{group: {'accuracy', 'micro_accuracy', 'log_loss', 'num_examples', 'devices'}}`.

    Args:
      y_true: int `[N]` class indices.
      probs: float `[N, C]` class probabilities.
      devices: `[N]` device names.
      classes: the `C` class names.
      device_groups: `{group: devices}`; a group without clips is left out.
      eps: probability clipping for the log loss.

    Returns:
      Per group the macro-average class accuracy over the group's clips (`accuracy`), the share
      of them classified right, their mean log loss, their count and the devices present.
    """
    y, p, d = _check_inputs(y_true, probs, devices, len(classes))
    lower = np.asarray([x.lower() for x in d.tolist()], dtype=object)  # [N]
    out = {}
    for group, members in device_groups.items():
        mask = np.isin(lower, [m.lower() for m in members])  # [N]
        if not mask.any():
            continue
        sub = subset_metrics(y[mask], p[mask], d[mask], classes, eps=eps, device_order=members)
        out[group] = {
            "accuracy": sub["accuracy"],
            "micro_accuracy": sub["micro_accuracy"],
            "log_loss": sub["log_loss"],
            "num_examples": sub["num_examples"],
            "devices": list(sub["device_wise"]),
        }
    return out


def compute_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    devices: Sequence[str],
    classes: Sequence[str],
    *,
    eps: float = DEFAULT_EPS,
    device_order: Sequence[str] = (),
    device_groups: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """DCASE metrics for all clips and for device `a` alone.

    Args:
      y_true: int `[N]` class indices (no unlabeled -1 entries).
      probs: float `[N, C]` class probabilities (rows need not sum exactly to 1).
      devices: `[N]` device names (`a`, `b`, `c`, `s1` ...).
      classes: the `C` class names.
      eps: probability clipping for the log loss.
      device_order: preferred order of device-wise entries, e.g. `labels.devices(task)`.
      device_groups: `{group: devices}` scored together (`group_metrics`), into
        `'all'['device_groups']`; None or empty: no groups.

    Returns:
      `{'all': subset_metrics(...), 'device_a': subset_metrics(...) or None}`.
    """
    y, p, d = _check_inputs(y_true, probs, devices, len(classes))
    kw = dict(eps=eps, device_order=device_order)
    mask = d == REFERENCE_DEVICE
    out = {
        "all": subset_metrics(y, p, d, classes, **kw),
        "device_a": subset_metrics(y[mask], p[mask], d[mask], classes, **kw)
        if mask.any()
        else None,
    }
    if device_groups:
        out["all"]["device_groups"] = group_metrics(y, p, d, classes, device_groups, eps=eps)
    return out
