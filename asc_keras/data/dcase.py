"""Read a DCASE 2020 Task 1 dataset folder (official layout) into checked pandas tables.

Inputs (SPEC.md section 1): `meta.csv` (`filename scene_label identifier source_label`),
`evaluation_setup/fold1_train.csv` and `fold1_evaluate.csv` (`filename scene_label`),
`evaluation_setup/fold1_test.csv` (`filename`), all tab-separated; audio under `audio/`.

Output: one table per split with columns `filename` (relative to the dataset folder), `label`
(the task's class name, or "" when unlabeled), `label_index` (-1 when unlabeled), `device`,
`city`, `identifier`. Every problem is a `DatasetError` whose message is one line naming the file.
"""

from __future__ import annotations

import glob
import hashlib
import os

import pandas as pd

from asc_keras import labels as labels_lib

SPLITS = ("train", "evaluate", "test")
LABELED_SPLITS = ("train", "evaluate")
TEST_CSV = "evaluation_setup/fold1_test.csv"
META_CSV = "meta.csv"
COLUMNS = ("filename", "label", "label_index", "device", "city", "identifier")


class DatasetError(ValueError):
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
            f"got {chr(9).join(header)!r}")
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
            f"{path}: {name} is listed more than once (lines {rows[0]} and {rows[1]})")


def _check_files_exist(df: pd.DataFrame, data_dir: str, path: str) -> None:
    for i, name in enumerate(df["filename"]):
        if not os.path.isfile(os.path.join(data_dir, name)):
            raise DatasetError(
                f"{path}: line {i + 2}: {name} is listed but missing from {data_dir}")


def _metadata(data_dir: str) -> dict[str, tuple[str, str, str]]:
    """`{filename: (device, city, identifier)}` from meta.csv, or {} when there is none."""
    path = os.path.join(data_dir, META_CSV)
    if not os.path.exists(path):
        return {}
    df = _read_tsv(path, ("filename", "scene_label", "identifier", "source_label"))
    out = {}
    for name, ident, device in zip(df["filename"], df["identifier"], df["source_label"],
                                   strict=True):
        out[name] = (device, ident.split("-")[0], ident)
    return out


def _attach_metadata(df: pd.DataFrame, meta: dict) -> pd.DataFrame:
    devices, cities, idents = [], [], []
    for name in df["filename"]:
        if name in meta:
            device, city, ident = meta[name]
        else:
            parsed = labels_lib.parse_filename(name)
            device, city, ident = (
                (parsed.device, parsed.city, parsed.identifier) if parsed else ("", "", ""))
        devices.append(device)
        cities.append(city)
        idents.append(ident)
    df = df.assign(device=devices, city=cities, identifier=idents)
    return df[list(COLUMNS)].reset_index(drop=True)


def read_split(data_dir: str, csv_path: str, task: str, *, labeled: bool = True) -> pd.DataFrame:
    """Read one split list and check it.

    Args:
      data_dir: the dataset folder.
      csv_path: the list, relative to `data_dir` (or absolute).
      task: '1a' or '1b'. For 1b, 10-scene labels are mapped to the 3 classes.
      labeled: whether the list has a `scene_label` column.

    Returns:
      A table with columns `COLUMNS`, in list order.
    """
    path = os.path.join(data_dir, csv_path)
    df = _read_tsv(path, ("filename", "scene_label") if labeled else ("filename",))
    _check_duplicates(df, path)
    if labeled:
        names = labels_lib.classes(task)
        indices = []
        for i, label in enumerate(df["scene_label"]):
            try:
                indices.append(labels_lib.label_index(label, task))
            except ValueError:
                raise DatasetError(
                    f"{path}: line {i + 2}: unknown label {label!r} for task {task} "
                    f"(expected one of {', '.join(names)})") from None
        df = df.assign(label_index=indices, label=[names[i] for i in indices])
    else:
        df = df.assign(label_index=-1, label="")
    _check_files_exist(df, data_dir, path)
    return _attach_metadata(df, _metadata(data_dir))


def read_unlabeled(data_dir: str) -> pd.DataFrame:
    """The clips to predict: `evaluation_setup/fold1_test.csv`, or every `audio/*.wav`."""
    if os.path.exists(os.path.join(data_dir, TEST_CSV)):
        return read_split(data_dir, TEST_CSV, "1a", labeled=False)
    names = sorted(
        os.path.relpath(p, data_dir) for p in glob.glob(os.path.join(data_dir, "audio", "*.wav")))
    if not names:
        raise DatasetError(f"{data_dir}: no {TEST_CSV} and no audio/*.wav files")
    df = pd.DataFrame({"filename": names, "label_index": -1, "label": ""})
    return _attach_metadata(df, _metadata(data_dir))


def check_folder(data_dir: str) -> None:
    """Raise DatasetError unless `data_dir` is an existing folder (checked before its layout)."""
    if not os.path.exists(data_dir):
        raise DatasetError(f"{data_dir}: dataset folder not found")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"{data_dir}: not a folder (the dataset folder is expected)")


def read_dataset(data_dir: str, task: str, *, splits=LABELED_SPLITS,
                 train_csv: str = "evaluation_setup/fold1_train.csv",
                 eval_csv: str = "evaluation_setup/fold1_evaluate.csv") -> dict[str, pd.DataFrame]:
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
            tables[split] = read_split(data_dir, csv, task)
    if "train" in tables and "evaluate" in tables:
        shared = set(tables["train"]["filename"]) & set(tables["evaluate"]["filename"])
        if shared:
            raise DatasetError(
                f"{os.path.join(data_dir, train_csv)}: shares {len(shared)} files with "
                f"{eval_csv}, e.g. {sorted(shared)[0]}; train and evaluate must be disjoint")
    return tables


def available_splits(data_dir: str, *, train_csv: str = "evaluation_setup/fold1_train.csv",
                     eval_csv: str = "evaluation_setup/fold1_evaluate.csv") -> tuple[str, ...]:
    """The splits a folder offers: train/evaluate where their lists exist, and test (unlabeled)."""
    found = tuple(s for s, csv in (("train", train_csv), ("evaluate", eval_csv))
                  if os.path.exists(os.path.join(data_dir, csv)))
    return found + ("test",)


def fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    """A short hash naming a dataset by its split lists (not its path, so that machines that
    mount the same dataset at different paths share one features folder)."""
    h = hashlib.sha256()
    for split in sorted(tables):
        df = tables[split]
        h.update(split.encode())
        h.update("\n".join(df["filename"] + "\t" + df["label"]).encode())
    return h.hexdigest()[:16]
