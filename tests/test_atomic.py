"""asc_keras.atomic: the bytes each writer produces and what a failing write leaves behind."""

import errno
import json
import os

import numpy as np
import pytest

from asc_keras import atomic


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_write_json_bytes_match_the_record_format(tmp_path):
    obj = {"b": [1, 2.5, None], "a": {"z": "é", "y": True}, "c": "text"}
    path = tmp_path / "record.json"
    atomic.write_json(str(path), obj)
    # The format every record has been written in: 1-space indent, sorted keys, ASCII escapes,
    # no trailing newline.
    assert path.read_bytes() == json.dumps(obj, indent=1, sort_keys=True).encode("ascii")
    assert not path.read_bytes().endswith(b"\n")
    assert json.loads(path.read_text()) == obj
    assert _listing(tmp_path) == ["record.json"]


def test_write_text_and_bytes_round_trip_and_replace(tmp_path):
    path = tmp_path / "a.tsv"
    atomic.write_text(str(path), "x\ty\n1\t2\n")
    assert path.read_bytes() == b"x\ty\n1\t2\n"
    atomic.write_text(str(path), "ünïcode\n")
    assert path.read_bytes() == "ünïcode\n".encode()
    atomic.write_bytes(str(path), b"\x00\x01raw")
    assert path.read_bytes() == b"\x00\x01raw"
    assert _listing(tmp_path) == ["a.tsv"]


def test_unserializable_object_touches_no_file(tmp_path):
    path = tmp_path / "record.json"
    path.write_text('{"old": 1}')
    with pytest.raises(TypeError):
        atomic.write_json(str(path), {"array": np.zeros(2)})
    assert path.read_text() == '{"old": 1}'
    assert _listing(tmp_path) == ["record.json"]


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_failing_write_keeps_existing_file_whole_and_removes_temporary(
    tmp_path, monkeypatch, fail_at
):
    path = tmp_path / "metrics.json"
    atomic.write_json(str(path), {"accuracy": 0.5})
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, fail_at, full_disk)
    with pytest.raises(OSError) as info:
        atomic.write_json(str(path), {"accuracy": 0.75, "pad": "x" * 100_000})
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["metrics.json"]


def test_failing_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError, match="boom"):
        atomic.write_text(str(tmp_path / "new.txt"), "content")
    assert _listing(tmp_path) == []


def test_temporary_path_is_recognised_as_this_process_temporary(tmp_path):
    from asc_keras import oom

    tmp = atomic.temporary_path(str(tmp_path / "x.json"))
    assert os.path.dirname(tmp) == str(tmp_path)
    assert oom.own_temporary(os.path.basename(tmp))
