"""The DCASE folder reader: tables, metadata, and one-line errors for bad lists."""

import os

import pytest
from conftest import SMALL_ROWS_1A, make_layout

from asc_keras.data import dcase


def test_reads_splits_with_metadata(small_1a_dir):
    tables = dcase.read_dataset(small_1a_dir, "1a")
    train, ev = tables["train"], tables["evaluate"]
    assert list(train.columns) == list(dcase.COLUMNS)
    assert len(train) == 4 and len(ev) == 2
    row = train.iloc[1]
    assert (row.filename, row.label, row.label_index) == (
        "audio/bus-lyon-1001-40001-b.wav",
        "bus",
        1,
    )
    assert (row.device, row.city, row.identifier) == ("b", "lyon", "lyon-1001")
    assert ev.iloc[0].device == "s4"


def test_1b_maps_scenes_and_accepts_three_classes(tmp_path):
    rows = [
        ("audio/airport-lisbon-1000-1-a.wav", "indoor", "train"),
        ("audio/bus-lyon-1001-2-a.wav", "bus", "train"),  # a 10-scene label is mapped
        ("audio/park-paris-1002-3-a.wav", "outdoor", "evaluate"),
    ]
    root = make_layout(tmp_path, rows)
    tables = dcase.read_dataset(root, "1b")
    assert list(tables["train"].label) == ["indoor", "transportation"]
    assert list(tables["train"].label_index) == [0, 2]


def test_unlabeled_split_from_test_list_or_audio_folder(small_1a_dir, tmp_path):
    test = dcase.read_dataset(small_1a_dir, "1a", splits=("test",))["test"]
    assert list(test.label_index) == [-1, -1] and test.iloc[0].device == "s4"
    # A challenge evaluation folder: audio/0.wav ... and no lists at all.
    from conftest import write_wav

    for i in range(3):
        write_wav(str(tmp_path / "ev" / "audio" / f"{i}.wav"))
    test = dcase.read_unlabeled(str(tmp_path / "ev"))
    assert list(test.filename) == [f"audio/{i}.wav" for i in range(3)]


def _rewrite(path, text):
    with open(path, "w") as f:
        f.write(text)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file"),
        ("filename,scene_label\naudio/a.wav,bus\n", "expected header"),
        ("filename\tscene_label\n", "no rows after the header"),
        (
            "filename\tscene_label\naudio/airport-lisbon-1000-40000-a.wav\tspaceship\n",
            "line 2: unknown label 'spaceship'",
        ),
        (
            "filename\tscene_label\naudio/nope-x-1-2-a.wav\tbus\n",
            "line 2: audio/nope-x-1-2-a.wav is listed but missing",
        ),
        (
            "filename\tscene_label\naudio/airport-lisbon-1000-40000-a.wav\tairport\n"
            "audio/airport-lisbon-1000-40000-a.wav\tairport\n",
            "listed more than once (lines 2 and 3)",
        ),
    ],
)
def test_bad_lists_give_one_line_errors_naming_the_file(small_1a_dir, content, message):
    path = os.path.join(small_1a_dir, "evaluation_setup", "fold1_train.csv")
    _rewrite(path, content)
    with pytest.raises(dcase.DatasetError) as e:
        dcase.read_dataset(small_1a_dir, "1a")
    text = str(e.value)
    assert "\n" not in text and text.startswith(path) and message in text


def test_train_and_evaluate_must_be_disjoint(tmp_path):
    rows = SMALL_ROWS_1A + [(SMALL_ROWS_1A[0][0], "airport", "evaluate")]
    root = make_layout(tmp_path, rows)
    with pytest.raises(dcase.DatasetError, match="must be disjoint"):
        dcase.read_dataset(root, "1a")


def test_missing_folder(tmp_path):
    with pytest.raises(dcase.DatasetError, match="dataset folder not found"):
        dcase.read_dataset(str(tmp_path / "nothing"), "1a")


def test_fingerprint_follows_lists_not_paths(small_1a_dir):
    t = dcase.read_dataset(small_1a_dir, "1a")
    fp = dcase.fingerprint(t)
    t2 = dict(t, train=t["train"].iloc[:3])
    assert fp == dcase.fingerprint(dict(t)) and fp != dcase.fingerprint(t2)
