"""Teacher logits files for knowledge distillation: write, read, check, align (pure NumPy).

A teacher file maps clip names (as the split lists write them, `audio/<name>.wav`) to the
teacher's logits. Two forms are read:

- NPZ: `filenames` (str `[N]`), `logits` (float `[N, C]`), optionally `classes` (str `[C]`, the
  column order; default the task's) and `config` (a JSON string: how the teacher was made).
  `teach.py` writes this form (`write_teacher`), rows sorted by clip name, as a zip whose bytes
  depend only on the content, so a rerun writes the same bytes.
- CSV (comma or tab separated): a `filename` column and one column per class, named by the
  class (any order; other columns such as `scene_label` are ignored).

`read_teacher(path, classes)` returns a `Teacher` whose logits columns follow the task's class
order; a file whose classes are not the task's is one `TeacherError` line.
`Teacher.targets(filenames, temperature)` gives the soft targets `softmax(logits / T)` float32
`[len(filenames), C]` of the given clips in that order; a clip without an entry is one line
naming it. `make_lookup` serves the targets to the tf.data pipeline by file name (TensorFlow
is imported there only). A name missing as written is looked up by its base name (`x.wav` for
`audio/x.wav`) when the file's base names are unique.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras import atomic
from asc_keras.data import schema
from asc_keras.errors import AscError

FILENAMES, LOGITS, CLASSES, CONFIG = "filenames", "logits", "classes", "config"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the bytes depend on the content


class TeacherError(AscError, ValueError):
    """A teacher file that cannot teach this task: unreadable, other classes, missing clips."""


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A teacher's logits: `filenames` str `[N]`, `logits` float32 `[N, C]` (columns in `classes`
    order), `config` (how it was made; {} when the file does not say)."""

    path: str
    filenames: np.ndarray
    logits: np.ndarray
    classes: tuple[str, ...]
    config: Mapping = dataclasses.field(default_factory=dict)

    def rows(self, filenames: Sequence[str]) -> np.ndarray:
        """Row index `[len(filenames)]` of each clip; `TeacherError` naming the first missing."""
        index = {str(n): i for i, n in enumerate(self.filenames)}
        bases = {os.path.basename(str(n)): i for i, n in enumerate(self.filenames)}
        unique_bases = len(bases) == len(index)
        rows, missing = [], []
        for name in filenames:
            i = index.get(str(name))
            if i is None and unique_bases:
                i = bases.get(os.path.basename(str(name)))
            if i is None:
                missing.append(str(name))
            else:
                rows.append(i)
        if missing:
            raise TeacherError(
                f"{self.path}: no teacher logits for training clip {missing[0]} "
                f"({len(missing)} of {len(filenames)} training clips missing)"
            )
        return np.asarray(rows, np.int64)

    def targets(self, filenames: Sequence[str], *, temperature: float) -> np.ndarray:
        """`softmax(logits / temperature)` float32 `[len(filenames), C]` of the given clips."""
        z = self.logits[self.rows(filenames)].astype(np.float64) / float(temperature)  # [N, C]
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def logits_from_probs(probs: np.ndarray, *, epsilon: float) -> np.ndarray:
    """Teacher logits of (fused) probabilities: `log(clip(p, epsilon, 1))` float32 `[N, C]`.

    A softmax of these gives back `p` renormalized after the clip, which is all distillation
    uses (softmax is shift-invariant, so log-probabilities serve as logits).
    """
    p = np.clip(np.asarray(probs, np.float64), epsilon, 1.0)
    return np.log(p).astype(np.float32)


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An `np.load`-able NPZ whose bytes depend on the arrays only (fixed zip timestamps)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, buffer.getvalue())
    return out.getvalue()


def write_teacher(
    path: str,
    filenames: Sequence[str],
    logits: np.ndarray,
    classes: Sequence[str],
    config: Mapping,
) -> str:
    """Write a teacher NPZ atomically, rows sorted by clip name; returns `path`.

    Args:
      path: the file to write (`.npz`).
      filenames: `N` clip names.
      logits: float `[N, C]`.
      classes: `C` class names, the column order.
      config: how the teacher was made (runs, weights, fusion), stored as sorted JSON.
    """
    names = np.asarray([str(n) for n in filenames])
    logits = np.asarray(logits, np.float32)
    if logits.shape != (len(names), len(classes)):
        raise ValueError(f"logits {logits.shape} for {len(names)} clips and {len(classes)} classes")
    if len(set(names.tolist())) != len(names):
        raise ValueError(f"{path}: duplicate clip names")
    order = np.argsort(names, kind="stable")
    arrays = {
        FILENAMES: names[order],
        LOGITS: logits[order],
        CLASSES: np.asarray([str(c) for c in classes]),
        CONFIG: np.asarray(json.dumps(dict(config), sort_keys=True)),
    }
    atomic.write_bytes(path, _npz_bytes(arrays))
    return path


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray, tuple | None, dict]:
    with np.load(path, allow_pickle=False) as z:
        if FILENAMES not in z.files or LOGITS not in z.files:
            raise TeacherError(
                f"{path}: a teacher NPZ needs arrays {FILENAMES!r} and {LOGITS!r}, has {z.files}"
            )
        names = np.asarray([_text(n) for n in z[FILENAMES].tolist()])
        logits = np.asarray(z[LOGITS], np.float64)
        classes = tuple(_text(c) for c in z[CLASSES].tolist()) if CLASSES in z.files else None
        config = json.loads(str(z[CONFIG])) if CONFIG in z.files else {}
    return names, logits, classes, config


def _read_csv(path: str, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, tuple, dict]:
    with open(path, newline="") as f:
        text = f.read()
    header = text.split("\n", 1)[0]
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if "\t" in header else ","))
    head = [h.strip() for h in rows[0]] if rows else []
    if "filename" not in head:
        raise TeacherError(f"{path}: a teacher CSV needs a 'filename' column and one per class")
    columns = [c for c in head if c in set(classes)]
    missing = [c for c in classes if c not in columns]
    if missing:
        raise TeacherError(
            f"{path}: classes {missing} of the task have no column (columns: {head})"
        )
    at = {h: i for i, h in enumerate(head)}
    names, values = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            values.append([float(row[at[c]]) for c in classes])
        except (IndexError, ValueError):
            raise TeacherError(f"{path}: line {line}: expected a number per class") from None
        names.append(row[at["filename"]].strip())
    logits = np.asarray(values, np.float64).reshape(-1, len(classes))
    return np.asarray(names), logits, tuple(classes), {}


def read_teacher(path: str, classes: Sequence[str]) -> Teacher:
    """Read a teacher file (NPZ or CSV, see the module doc) for a task with `classes`.

    Raises:
      TeacherError: unreadable, classes other than the task's, non-finite logits or duplicate
        clip names; one line naming the file.
    """
    classes = tuple(classes)
    if not os.path.isfile(path):
        raise TeacherError(f"{path}: no such teacher file")
    try:
        if path.lower().endswith(".csv") or path.lower().endswith(".tsv"):
            names, logits, have, config = _read_csv(path, classes)
        else:
            names, logits, have, config = _read_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, TeacherError):
            raise
        raise TeacherError(
            f"{path}: unreadable teacher file ({' '.join(str(e).split())})"
        ) from None
    have = classes if have is None else have
    if logits.ndim != 2 or logits.shape != (len(names), len(have)):
        raise TeacherError(
            f"{path}: logits {logits.shape} for {len(names)} clips and {len(have)} classes"
        )
    if sorted(have) != sorted(classes) or len(set(have)) != len(have):
        raise TeacherError(
            f"{path}: teacher classes {list(have)} differ from the task's {list(classes)}"
        )
    if not np.all(np.isfinite(logits)):
        raise TeacherError(f"{path}: non-finite teacher logits")
    if len(set(names.tolist())) != len(names):
        raise TeacherError(f"{path}: duplicate clip names")
    order = [have.index(c) for c in classes]
    return Teacher(
        path=path,
        filenames=names,
        logits=logits[:, order].astype(np.float32),
        classes=classes,
        config=config,
    )


def make_lookup(names: Sequence[str], targets: np.ndarray, *, split: str):
    """For the tf.data pipeline: `lookup(example) -> float32 [C]`, the soft targets of the
    example's clip (`example['filename']`), from a static hash table over `names`."""
    import tensorflow as tf

    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant([str(n) for n in names]), tf.range(len(names), dtype=tf.int64)
        ),
        default_value=-1,
    )
    values = tf.constant(np.asarray(targets, np.float32))  # [N, C]

    def lookup(example):
        row = table.lookup(example[schema.FILENAME])
        ok = tf.debugging.Assert(
            row >= 0,
            [f"no teacher logits for a clip of split {split!r}:", example[schema.FILENAME]],
        )
        with tf.control_dependencies([ok]):
            return tf.gather(values, tf.maximum(row, 0))  # [C]

    return lookup
