"""Evaluation reports: metrics.json, figures, per-clip predictions and a printed table.

`write_report(out_dir, metrics, classes, *, probs=None, meta=None)` is what `train.py` calls at the
end of training and `evaluate.py` after scoring. It writes into `out_dir`:

- `metrics.json`: `{'classes': [...], 'all': {...}, 'device_a': {...} | null, **extra}` with the
  entries of `metrics.compute_metrics`;
- `confusion.png` (all devices) and, when device `a` is a strict subset of the clips (1A),
  `confusion_device_a.png`;
- `devices.png`: accuracy per device;
- `predictions.tsv` when `probs [N, C]` and `meta` (`{'filename', 'label', 'device'}` arrays of
  `N`) are given: `filename  label  device  scene_label  <class probabilities>`, the true label
  by name (empty when unlabeled), the predicted label as `scene_label`;
- `report.txt`: the table that is also printed (`format_table`).

Probabilities that all lie on the 1/256 grid of an int8 softmax output (a full-integer TFLite
file) get a caveat under the table and as `log_loss_caveat` in metrics.json
(`int8_log_loss_caveat`): such an output has exact zeros, which the log loss clips at 1e-15,
so one confident miss adds 34.5 / N and the int8 log loss is not comparable with a float one;
the DCASE log losses of this project are those of float outputs (Keras, SavedModel, float
TFLite).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asc_keras import atomic
from asc_keras.evaluation import plots

METRICS_NAME = "metrics.json"


def _pct(x) -> str:
    return "     -" if x is None else f"{100.0 * x:6.2f}"


def _loss(x) -> str:
    return "     -" if x is None else f"{x:6.3f}"


def format_table(metrics: Mapping, classes: Sequence[str], *, title: str = "") -> str:
    """A fixed-width table of `compute_metrics` output: overall, per class, per device.

    Columns: accuracy (%) and log loss on all devices and on device `a` alone. Every row says
    which accuracy and which log loss it holds:

    - `DCASE: macro acc, log loss`: macro-average (class-wise) accuracy, the DCASE metric, and
      the log loss averaged over clips (the DCASE log loss);
    - `micro acc (of clips)`: the share of clips classified right (no log loss);
    - `class-mean log loss`: the mean of the class-wise log losses (no accuracy);
    - per class: the class's accuracy (its recall) and the log loss of its clips;
    - per device: the share of that device's clips classified right (micro) and their log
      loss, so device a's row there differs from the macro accuracy of the device-a column;
    - per device group (when the task defines groups: real, seen, unseen): the macro-average
      class accuracy over the clips of the group's devices and their log loss (all devices
      column only).
    """
    subsets = [("all", "all devices"), ("device_a", "device a")]
    subsets = [(k, label) for k, label in subsets if metrics.get(k)]
    groups = [f"{label} (N={metrics[k]['num_examples']})" for k, label in subsets]
    head1 = f"{'':30s}" + "".join(f"  {g:>22s}" for g in groups)
    head2 = f"{'':30s}" + "".join(f"  {'acc %':>12s} {'log loss':>9s}" for _ in subsets)

    def row(label, get):
        cells = []
        for k, _ in subsets:
            entry = get(metrics[k]) or {}
            cells.append(f"  {_pct(entry.get('accuracy')):>12s} {_loss(entry.get('log_loss')):>9s}")
        return f"{label:30s}" + "".join(cells)

    lines = [title] if title else []
    lines += [head1, head2]
    lines.append(row("DCASE: macro acc, log loss", lambda m: m))
    lines.append(row("  micro acc (of clips)", lambda m: {"accuracy": m["micro_accuracy"]}))
    lines.append(row("  class-mean log loss", lambda m: {"log_loss": m.get("macro_log_loss")}))
    lines.append("per class (accuracy = recall)")
    for name in classes:
        lines.append(row(f"  {name}", lambda m, name=name: m["class_wise"].get(name)))
    devices = list(metrics["all"]["device_wise"])
    if devices:
        lines.append("per device (micro accuracy)")
        for dev in devices:
            lines.append(row(f"  {dev}", lambda m, dev=dev: m["device_wise"].get(dev)))
    groups = metrics["all"].get("device_groups") or {}
    if groups:
        lines.append("per device group (macro acc over the group's clips)")
        for name, entry in groups.items():
            label = f"  {name} ({', '.join(entry['devices'])})"
            lines.append(row(label, lambda m, name=name: (m.get("device_groups") or {}).get(name)))
    return "\n".join(lines)


def write_predictions(path: str, probs: np.ndarray, meta: Mapping, classes: Sequence[str]) -> str:
    """Per-clip predictions TSV (see the module docstring); returns `path`."""
    p = np.asarray(probs, dtype=np.float64)  # [N, C]
    pred = np.argmax(p, axis=1) if len(p) else np.zeros(0, np.int64)  # [N]
    lines = ["\t".join(["filename", "label", "device", "scene_label", *classes])]
    labels = np.asarray(meta["label"]).astype(np.int64)
    for fname, y, dev, k, row in zip(
        meta["filename"], labels, meta["device"], pred, p, strict=True
    ):
        true = classes[int(y)] if y >= 0 else ""
        lines.append(
            "\t".join([str(fname), true, str(dev), classes[int(k)], *(f"{v:.8g}" for v in row)])
        )
    atomic.write_text(path, "\n".join(lines) + "\n")
    return path


def write_report(
    out_dir: str,
    metrics: Mapping,
    classes: Sequence[str],
    *,
    probs: np.ndarray | None = None,
    meta: Mapping | None = None,
    extra: Mapping | None = None,
    title: str = "",
    print_fn: Callable[[str], None] | None = print,
) -> str:
    """Write metrics.json, the PNGs, predictions.tsv (with probs and meta) and report.txt.

    Args:
      out_dir: output folder (created).
      metrics: output of `metrics.compute_metrics`.
      classes: the class names.
      probs: optional float `[N, C]` probabilities, with `meta`, for predictions.tsv.
      meta: optional `{'filename': [N] str, 'label': [N] int, 'device': [N] str}`.
      extra: more JSON-ready entries for metrics.json (split, models, ...).
      title: first line of the printed table and figure titles.
      print_fn: where the table goes (None: not printed).

    Returns:
      The table text.
    """
    os.makedirs(out_dir, exist_ok=True)
    caveat = (
        None
        if probs is None
        else int8_log_loss_caveat(probs, None if meta is None else meta.get("label"))
    )
    payload = {"classes": list(classes), **dict(extra or {}), **dict(metrics)}
    if caveat:
        payload["log_loss_caveat"] = caveat
    atomic.write_json(os.path.join(out_dir, METRICS_NAME), payload)
    prefix = f"{title}: " if title else ""
    everything = metrics["all"]
    plots.write_png(
        os.path.join(out_dir, "confusion.png"),
        plots.confusion_png(everything["confusion_matrix"], classes, title=f"{prefix}all devices"),
    )
    device_a = metrics.get("device_a")
    if device_a and device_a["num_examples"] < everything["num_examples"]:
        plots.write_png(
            os.path.join(out_dir, "confusion_device_a.png"),
            plots.confusion_png(device_a["confusion_matrix"], classes, title=f"{prefix}device a"),
        )
    plots.write_png(
        os.path.join(out_dir, "devices.png"),
        plots.devices_png(everything["device_wise"], title=f"{prefix}accuracy per device"),
    )
    if probs is not None and meta is not None:
        write_predictions(os.path.join(out_dir, "predictions.tsv"), probs, meta, classes)
    table = format_table(metrics, classes, title=title)
    if caveat:
        table += "\n" + caveat
    with open(os.path.join(out_dir, "report.txt"), "w") as f:
        f.write(table + "\n")
    if print_fn is not None:
        print_fn(table)
    return table


def _grid_step(values: np.ndarray) -> float | None:
    """The step of the grid of at most 256 levels that sorted distinct `values` lie on, or None.

    The step divides the smallest gap between two values (`min gap / m`); the largest such step
    that puts every value on the grid within 1e-3 of a level is the grid's.
    """
    gap = float(np.min(np.diff(values)))
    span = float(values[-1] - values[0])
    for m in range(1, 2**8):
        step = gap / m
        if span / step > 2**8 - 1 + 1e-3:
            return None
        k = (values - values[0]) / step
        if np.allclose(k, np.round(k), atol=1e-3):
            return step
    return None


def int8_log_loss_caveat(probs: np.ndarray, labels: np.ndarray | None = None) -> str | None:
    """A caveat for the log loss of int8 probabilities, or None for float ones.

    Args:
      probs: float `[N, C]` probabilities as scored.
      labels: optional int `[N]` true classes (-1 unlabeled): counts the clips whose true class
        got exactly 0.

    Returns:
      One line when the probabilities sit on a grid of at most 256 evenly spaced values (an
      int8 output, whatever its scale: 1/256 for a softmax, another step for a fused output),
      else None.
    """
    p = np.asarray(probs, np.float64)
    values = np.unique(p)
    if len(values) < 2 or len(values) > 2**8:
        return None
    step = _grid_step(values)
    if step is None:
        return None
    zeros = ""
    if labels is not None:
        y = np.asarray(labels, np.int64)
        ok = y >= 0
        hit = int(np.sum(p[np.flatnonzero(ok), y[ok]] == 0.0))
        zeros = f" ({hit} of {int(ok.sum())} clips here)"
    return (
        f"note: int8 output (probabilities in steps of {step:.4g}): a true class at exactly 0"
        f"{zeros} is clipped to 1e-15 and costs 34.5, so this log loss is inflated and not "
        "comparable with a float model's; compare accuracy, and take the log loss from the "
        "float model (the DCASE numbers use float outputs)"
    )


def summary_line(metrics: Mapping) -> str:
    """`all devices: acc 90.00 %, log loss 0.624; device a: ...` from `compute_metrics` output."""
    parts = []
    for key, label in (("all", "all devices"), ("device_a", "device a")):
        entry = metrics.get(key)
        if entry:
            parts.append(
                f"{label}: acc {100 * entry['accuracy']:.2f} %, log loss {entry['log_loss']:.3f}"
            )
    return "; ".join(parts)
