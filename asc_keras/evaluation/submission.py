"""DCASE 2020 Task 1 submission files (system outputs).

A submission is a tab-separated text file with a header row:

    filename	scene_label	<class 1>	...	<class C>
    0.wav	bus	0.0125	0.91	...

one row per clip: its file name (without the `audio/` folder, as in the challenge's examples),
the predicted class (`argmax` of the probabilities) and one probability per class, in the order
of the task's class list. `write_submission(path, filenames [N], probs [N, C], classes)` writes
one; `read_submission(path)` reads it back (for checks and later fusion).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from asc_keras import atomic


def write_submission(
    path: str,
    filenames: Sequence[str],
    probs: np.ndarray,
    classes: Sequence[str],
    *,
    keep_dirs: bool = False,
) -> str:
    """Write a DCASE submission TSV.

    Args:
      path: output file; its folder is created.
      filenames: `[N]` clip names (`audio/0.wav` ...).
      probs: float `[N, C]` class probabilities.
      classes: the `C` class names.
      keep_dirs: keep the folder part of the file names (default: base name only).

    Returns:
      `path`.
    """
    p = np.asarray(probs, dtype=np.float64)  # [N, C]
    if p.ndim != 2 or p.shape != (len(filenames), len(classes)):
        raise ValueError(
            f"probs {p.shape} do not match {len(filenames)} files x {len(classes)} classes"
        )
    for name in classes:
        if "\t" in name or "\n" in name:
            raise ValueError(f"class name {name!r} contains a tab or newline")
    pred = np.argmax(p, axis=1) if len(p) else np.zeros(0, np.int64)  # [N]
    lines = ["\t".join(["filename", "scene_label", *classes])]
    for fname, k, row in zip(filenames, pred, p, strict=True):
        name = str(fname) if keep_dirs else os.path.basename(str(fname))
        lines.append("\t".join([name, classes[int(k)], *(f"{v:.8g}" for v in row)]))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    atomic.write_text(path, "\n".join(lines) + "\n")
    return path


def read_submission(path: str) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """Read a submission TSV; returns `(filenames [N], scene_labels [N], probs [N, C], classes)`."""
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not rows or rows[0][:2] != ["filename", "scene_label"]:
        raise ValueError(f"{path}: header must start with 'filename<TAB>scene_label'")
    classes = rows[0][2:]
    body = rows[1:]
    bad = [i + 2 for i, r in enumerate(body) if len(r) != 2 + len(classes)]
    if bad:
        raise ValueError(f"{path}: wrong number of columns on lines {bad[:5]}")
    probs = np.array([[float(v) for v in r[2:]] for r in body], dtype=np.float64)
    probs = probs.reshape(len(body), len(classes))  # [N, C]
    return [r[0] for r in body], [r[1] for r in body], probs, classes
