"""Read a dataset folder (official DCASE layout, or class subfolders) into checked tables.

Inputs: `meta.csv` (`filename scene_label identifier source_label`),
`evaluation_setup/fold1_train.csv` and `fold1_evaluate.csv` (`filename scene_label`),
`evaluation_setup/fold1_test.csv` (`filename`), all tab-separated; audio under `audio/`. A list
with only a `filename` column (the TAU 2022 train subsets `split_setup/split5.csv` ...
`split100.csv` of the DCASE 2024/25 baselines) takes its labels from `meta.csv`. A `custom` task
may instead hold class subfolders, `train/<class>/*.wav` and `evaluate/<class>/*.wav`.

Output: one table per split with columns `filename` (relative to the dataset folder), `label`
(the task's class name, or "" when unlabeled), `label_index` (-1 when unlabeled), `device`,
`city`, `identifier`. Every problem is a `DatasetError` whose message is one line naming the file.
"""

from __future__ import annotations

import collections
import glob
import hashlib
import os

import pandas as pd

from asc_keras import audio
from asc_keras import labels as labels_lib
from asc_keras import tasks as tasks_lib
from asc_keras.errors import AscError

SPLITS = ("train", "evaluate", "test")
LABELED_SPLITS = ("train", "evaluate")
TEST_CSV = "evaluation_setup/fold1_test.csv"
META_CSV = "meta.csv"
COLUMNS = ("filename", "label", "label_index", "device", "city", "identifier")


class DatasetError(AscError, ValueError):
    """A dataset folder or list that cannot be used; the message names the file and the cause."""


def _read_tsv(path: str, expected: tuple[str, ...]) -> pd.DataFrame:
    """Read a tab-separated list whose header starts with `expected` columns."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise DatasetError(f"{path}: empty file (expected a header {chr(9).join(expected)!r})")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetError(f"{path}: malformed tab-separated file ({first})") from None
    header = tuple(df.columns)
    if header[: len(expected)] != expected:
        raise DatasetError(
            f"{path}: expected header {chr(9).join(expected)!r} (tab-separated), "
            f"got {chr(9).join(header)!r}"
        )
    if df.empty:
        raise DatasetError(f"{path}: no rows after the header")
    blank = df[list(expected)].eq("").any(axis=1)
    if blank.any():
        line = int(blank.to_numpy().nonzero()[0][0]) + 2
        raise DatasetError(f"{path}: line {line}: empty field")
    return df


def _check_duplicates(df: pd.DataFrame, path: str) -> None:
    dup = df["filename"].duplicated(keep=False)
    if dup.any():
        rows = df.index[dup].to_numpy()[:2] + 2
        name = df.loc[dup, "filename"].iloc[0]
        raise DatasetError(
            f"{path}: {name} is listed more than once (lines {rows[0]} and {rows[1]})"
        )


def _check_files_exist(df: pd.DataFrame, data_dir: str, path: str) -> None:
    for i, name in enumerate(df["filename"]):
        if not os.path.isfile(os.path.join(data_dir, name)):
            raise DatasetError(
                f"{path}: line {i + 2}: {name} is listed but missing from {data_dir}"
            )


def _meta_labels(data_dir: str, path: str) -> dict[str, str]:
    """`{filename: scene_label}` of meta.csv, for a list that has only file names."""
    meta = os.path.join(data_dir, META_CSV)
    if not os.path.exists(meta):
        raise DatasetError(f"{path}: has no scene_label column and {meta} is missing")
    df = _read_tsv(meta, ("filename", "scene_label"))
    return dict(zip(df["filename"], df["scene_label"], strict=True))


def _metadata(data_dir: str) -> dict[str, tuple[str, str, str]]:
    """`{filename: (device, city, identifier)}` from meta.csv, or {} when there is none."""
    path = os.path.join(data_dir, META_CSV)
    if not os.path.exists(path):
        return {}
    df = _read_tsv(path, ("filename", "scene_label", "identifier", "source_label"))
    out = {}
    for name, ident, device in zip(
        df["filename"], df["identifier"], df["source_label"], strict=True
    ):
        out[name] = (device, ident.split("-")[0], ident)
    return out


def _attach_metadata(
    df: pd.DataFrame, meta: dict, fields: tuple[str, ...] | None = None, *, where=None
) -> pd.DataFrame:
    """Device, city and identifier of every row: meta.csv's, else parsed from the file name.

    `where(i)` (a labeled split of a task with a file-name pattern) says where row i comes
    from; a name that neither meta.csv nor the pattern explains is then an error naming it.
    """
    devices, cities, idents = [], [], []
    for i, name in enumerate(df["filename"]):
        if name in meta:
            device, city, ident = meta[name]
        else:
            parsed = labels_lib.parse_filename(name, fields)
            if parsed is None and where is not None and fields:
                pattern = "-".join(f"<{f}>" for f in fields)
                raise DatasetError(
                    f"{where(i)}: {name}: no row in {META_CSV} and the name does not follow "
                    f"{pattern}.wav, so its device is unknown"
                )
            device, city, ident = (
                (parsed.device, parsed.city, parsed.identifier) if parsed else ("", "", "")
            )
        devices.append(device)
        cities.append(city)
        idents.append(ident)
    df = df.assign(device=devices, city=cities, identifier=idents)
    return df[list(COLUMNS)].reset_index(drop=True)


def _spec(task: str | tasks_lib.Task) -> tasks_lib.Task:
    return tasks_lib.get(task) if isinstance(task, str) else task


def is_class_folder(data_dir: str, split: str) -> bool:
    """Whether `data_dir/<split>/` holds class subfolders (the `custom` folder layout)."""
    root = os.path.join(data_dir, split)
    return os.path.isdir(root) and any(e.is_dir() for e in os.scandir(root))


def _list_labels(data_dir: str, csv_path: str, split: str):
    """`(table, where)`: `filename`, `scene_label` of a split, from its list or its class
    subfolders, and `where(i)`, the place row i comes from (`list: line N`, or the clip file)."""
    path = os.path.join(data_dir, csv_path)
    if not os.path.exists(path) and is_class_folder(data_dir, split):
        root = os.path.join(data_dir, split)
        names = sorted(glob.glob(os.path.join(root, "*", "*.wav")))
        if not names:
            raise DatasetError(f"{root}: class subfolders hold no .wav files")
        rel = [os.path.relpath(p, data_dir).replace(os.sep, "/") for p in names]
        df = pd.DataFrame({"filename": rel, "scene_label": [r.split("/")[-2] for r in rel]})
        return df, lambda i: os.path.join(data_dir, rel[i])
    df = _read_tsv(path, ("filename",))
    if "scene_label" not in df.columns:
        meta = _meta_labels(data_dir, path)
        missing = [n for n in df["filename"] if n not in meta]
        if missing:
            raise DatasetError(
                f"{path}: {missing[0]} has no row in {META_CSV} ({len(missing)} such files)"
            )
        df = df.assign(scene_label=[meta[n] for n in df["filename"]])
    blank = df["scene_label"].eq("")
    if blank.any():
        raise DatasetError(f"{path}: line {int(blank.to_numpy().nonzero()[0][0]) + 2}: empty field")
    return df, lambda i: f"{path}: line {i + 2}"


def resolve_classes(
    data_dir: str, task: str, *, train_csv: str = "evaluation_setup/fold1_train.csv"
) -> tuple[str, ...]:
    """The class list of `task`: the table's, or (`custom`) the sorted labels of the training
    list (or of the `train/` class subfolders)."""
    spec = tasks_lib.get(task)
    if spec.classes is not None:
        return spec.classes
    check_folder(data_dir)
    table, _ = _list_labels(data_dir, train_csv, "train")
    labels = sorted(set(table["scene_label"]))
    if len(labels) < 2:
        where = os.path.join(data_dir, train_csv)
        if not os.path.exists(where):
            where = os.path.join(data_dir, "train")
        raise DatasetError(f"{where}: a custom task needs at least two labels, found {labels}")
    return tuple(labels)


def read_split(
    data_dir: str,
    csv_path: str,
    task: str | tasks_lib.Task,
    *,
    labeled: bool = True,
    split: str = "",
) -> pd.DataFrame:
    """Read one split list (or, for `split`, its class subfolders) and check it.

    Args:
      data_dir: the dataset folder.
      csv_path: the list, relative to `data_dir` (or absolute).
      task: a task name with fixed classes, or a `tasks.Task` (a custom task with its classes).
        Labels are mapped by the task's class map (1B: 10 scenes to 3 classes).
      labeled: whether the list has labels (a `scene_label` column, or meta.csv's).
      split: `train` or `evaluate`: read `data_dir/<split>/<class>/*.wav` when the list is
        missing and that folder has class subfolders.

    Returns:
      A table with columns `COLUMNS`, in list order.
    """
    spec = _spec(task)
    path = os.path.join(data_dir, csv_path)
    if labeled:
        df, where = _list_labels(data_dir, csv_path, split)
        names = spec.classes
        if names is None:
            raise DatasetError(f"{path}: task {spec.name} needs its classes read first")
        _check_duplicates(df, path)
        indices = []
        for i, label in enumerate(df["scene_label"]):
            try:
                indices.append(spec.label_index(label))
            except ValueError:
                raise DatasetError(
                    f"{where(i)}: unknown label {label!r} for task {spec.name} "
                    f"(expected one of {', '.join(names)})"
                ) from None
        df = df.assign(label_index=indices, label=[names[i] for i in indices])
    else:
        df = _read_tsv(path, ("filename",))
        _check_duplicates(df, path)
        df = df.assign(label_index=-1, label="")
        where = None
    _check_files_exist(df, data_dir, path)
    return _attach_metadata(df, _metadata(data_dir), spec.filename_fields, where=where)


def read_unlabeled(data_dir: str) -> pd.DataFrame:
    """The clips to predict: `evaluation_setup/fold1_test.csv`, or every `audio/*.wav`."""
    path = os.path.join(data_dir, TEST_CSV)
    if os.path.exists(path):
        df = _read_tsv(path, ("filename",))
        _check_duplicates(df, path)
        df = df.assign(label_index=-1, label="")
        _check_files_exist(df, data_dir, path)
    else:
        names = sorted(
            os.path.relpath(p, data_dir)
            for p in glob.glob(os.path.join(data_dir, "audio", "*.wav"))
        )
        if not names:
            raise DatasetError(f"{data_dir}: no {TEST_CSV} and no audio/*.wav files")
        df = pd.DataFrame({"filename": names, "label_index": -1, "label": ""})
    return _attach_metadata(df, _metadata(data_dir))  # either file-name pattern


def check_folder(data_dir: str) -> None:
    """Raise DatasetError unless `data_dir` is an existing folder (checked before its layout)."""
    if not os.path.exists(data_dir):
        raise DatasetError(f"{data_dir}: dataset folder not found")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"{data_dir}: not a folder (the dataset folder is expected)")


def read_dataset(
    data_dir: str,
    task: str | tasks_lib.Task,
    *,
    splits=LABELED_SPLITS,
    train_csv: str = "evaluation_setup/fold1_train.csv",
    eval_csv: str = "evaluation_setup/fold1_evaluate.csv",
) -> dict[str, pd.DataFrame]:
    """Read the requested splits (`train`, `evaluate`, `test`) and check train/evaluate overlap."""
    check_folder(data_dir)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise DatasetError(f"unknown splits {unknown}; expected some of {SPLITS}")
    tables = {}
    for split in splits:
        if split == "test":
            tables[split] = read_unlabeled(data_dir)
        else:
            csv = train_csv if split == "train" else eval_csv
            tables[split] = read_split(data_dir, csv, task, split=split)
    if "train" in tables and "evaluate" in tables:
        shared = set(tables["train"]["filename"]) & set(tables["evaluate"]["filename"])
        if shared:
            raise DatasetError(
                f"{os.path.join(data_dir, train_csv)}: shares {len(shared)} files with "
                f"{eval_csv}, e.g. {sorted(shared)[0]}; train and evaluate must be disjoint"
            )
    return tables


def available_splits(
    data_dir: str,
    *,
    train_csv: str = "evaluation_setup/fold1_train.csv",
    eval_csv: str = "evaluation_setup/fold1_evaluate.csv",
) -> tuple[str, ...]:
    """The splits a folder offers: train/evaluate where their lists exist, and test (unlabeled)."""
    found = tuple(
        s
        for s, csv in (("train", train_csv), ("evaluate", eval_csv))
        if os.path.exists(os.path.join(data_dir, csv)) or is_class_folder(data_dir, s)
    )
    return found + ("test",)


def shared_clip_seconds(
    data_dir: str,
    task: str,
    *,
    tolerance: float,
    train_csv: str = "evaluation_setup/fold1_train.csv",
    eval_csv: str = "evaluation_setup/fold1_evaluate.csv",
) -> tuple[float, int]:
    """`(seconds, clips)`: the length the clips of a folder's labeled splits share.

    The length is the most common duration (to 10 ms, read from the file headers); every clip
    must lie within `tolerance` (a fraction of it) of it. Clips whose header cannot be read are
    left for the precompute to report.

    Raises:
      DatasetError: the clips differ in length (naming one clip of each length), or none can be
        read.
    """
    spec = tasks_lib.get(task)
    if spec.data_defined:
        spec = spec.with_classes(resolve_classes(data_dir, task, train_csv=train_csv))
    splits = [
        s for s in available_splits(data_dir, train_csv=train_csv, eval_csv=eval_csv) if s != "test"
    ]
    tables = read_dataset(data_dir, spec, splits=splits, train_csv=train_csv, eval_csv=eval_csv)
    lengths = {}  # {file name: seconds}
    for table in tables.values():
        for name in table["filename"]:
            try:
                lengths[name] = audio.duration(os.path.join(data_dir, name))
            except audio.AudioError:
                continue
    if not lengths:
        raise DatasetError(f"{data_dir}: no clip of {', '.join(splits)} could be read")
    counts = collections.Counter(round(x, 2) for x in lengths.values())
    seconds = max(counts, key=lambda x: (counts[x], -x))
    far = [n for n, x in lengths.items() if abs(x - seconds) > tolerance * seconds]
    if far:
        usual = next(n for n, x in lengths.items() if round(x, 2) == seconds)
        raise DatasetError(
            f"{data_dir}: the clips differ in length: {usual} is {seconds:.2f} s, {far[0]} is "
            f"{lengths[far[0]]:.2f} s ({len(far)} of {len(lengths)} clips differ by more than "
            f"{tolerance:.0%})"
        )
    return seconds, len(lengths)


def fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    """A short hash naming a dataset by its split lists (not its path, so that machines that
    mount the same dataset at different paths share one features folder)."""
    h = hashlib.sha256()
    for split in sorted(tables):
        df = tables[split]
        h.update(split.encode())
        h.update("\n".join(df["filename"] + "\t" + df["label"]).encode())
    return h.hexdigest()[:16]
