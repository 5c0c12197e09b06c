"""Evaluation figures as PNG bytes, drawn with matplotlib's Agg canvas (no pyplot state).

- `confusion_png(confusion [C, C] counts, classes)`: counts in every cell, cells coloured by the
  row-normalised rate (rows = true class, columns = predicted class);
- `devices_png(device_wise {device: {'accuracy', 'num_examples', ...}})`: one accuracy bar per
  device, labelled with the accuracy and the number of clips.

Both return PNG bytes (also usable as a TensorBoard image via `tf.image.decode_png`);
`write_png(path, data)` stores them.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np

MIN_DEVICES_WIDTH = 5.0  # inches of devices.png, so that one bar leaves room for the title


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def confusion_png(confusion: np.ndarray, classes: Sequence[str], *, title: str = "") -> bytes:
    """Confusion matrix figure.

    Args:
      confusion: int `[C, C]` counts, rows true class, columns predicted class.
      classes: the `C` class names.
      title: figure title.

    Returns:
      PNG bytes.
    """
    cm = np.asarray(confusion, dtype=np.int64)  # [C, C]
    n = len(classes)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix {cm.shape} does not match {n} classes")
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # [C, C] row-normalised
    size = 2.5 + 0.6 * n
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _png_bytes(fig)


def devices_png(device_wise: Mapping[str, Mapping], *, title: str = "") -> bytes:
    """Per-device accuracy bar chart.

    Args:
      device_wise: `{device: {'accuracy': float, 'num_examples': int, ...}}` (as in
        `metrics.subset_metrics(...)['device_wise']`), in display order.
      title: figure title.

    Returns:
      PNG bytes.
    """
    names = list(device_wise)
    acc = [100.0 * (device_wise[d].get("accuracy") or 0.0) for d in names]
    counts = [int(device_wise[d].get("num_examples", 0)) for d in names]
    width = max(MIN_DEVICES_WIDTH, 2.5 + 0.7 * len(names))  # inches; one device fits a title
    fig = _figure(width, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    bars = ax.bar(range(len(names)), acc, color="tab:blue")
    for bar, a, c in zip(bars, acc, counts, strict=True):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() + 1.0,
            f"{a:.1f}\n({c})",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(names)), labels=names)
    ax.set_ylim(0, 115)
    ax.set_xlabel("device")
    ax.set_ylabel("accuracy (%) of the device's clips")
    if title:  # wrapped to the figure: about 9 characters per inch at the default size
        ax.set_title(textwrap.fill(title, width=int(9 * width)), fontsize=10)
    fig.tight_layout()
    return _png_bytes(fig)


def write_png(path: str, data: bytes) -> str:
    """Write PNG bytes to `path` (folder created); returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path
