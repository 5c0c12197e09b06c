"""The features cache over reruns: verification of finished shards, changed audio, clips skipped
by --skip_bad_files, leftovers of earlier runs (byte-identical output across processes is checked
in test_precompute.py's prepare.py test)."""

import hashlib
import os

import numpy as np
import pytest
from conftest import SMALL_ROWS_1A, shard_logmel, write_wav

from asc_keras import audio
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, manifest, precompute
from asc_keras.features import compute_features

CFG = FeatureConfig(clip_seconds=1.0, representations=("logmel",))
SHARD0, SHARD1 = "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"


def _data_cfg(data_dir, features_dir, **kw):
    kw.setdefault("num_workers", 1)
    kw.setdefault("clips_per_shard", 2)
    return DataConfig(data_dir=data_dir, features_dir=str(features_dir), task="1a", **kw)


def _run(data_cfg, cfg=CFG, **kw):
    """Run the precompute; returns `(folder, logged lines)`."""
    lines = []
    folder = precompute.ensure_features(cfg, data_cfg, progress=False, log=lines.append, **kw)
    return folder, lines


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _mtime(folder, name):
    return os.stat(os.path.join(folder, name)).st_mtime_ns


def _recomputed(lines):
    """Shard names the log says were recomputed for a reason."""
    return sorted(ln.split()[2].rstrip(":") for ln in lines if "recomputing" in ln)


def _clip(data_dir, i):
    return os.path.join(data_dir, SMALL_ROWS_1A[i][0])


def test_strict_run_refuses_shards_that_skipped_files(small_1a_dir, tmp_path):
    bad = _clip(small_1a_dir, 1)
    good = open(bad, "rb").read()
    with open(bad, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    skip = _data_cfg(small_1a_dir, tmp_path, skip_bad_files=True)
    folder, lines = _run(skip)
    note = f"1 clip(s) skipped by --skip_bad_files (train 1), listed in {folder}"
    assert any(note in ln for ln in lines)
    mtime = _mtime(folder, SHARD0)
    _, lines = _run(skip)  # reused, and still says so (train.py and evaluate.py log this)
    assert _mtime(folder, SHARD0) == mtime and any(note in ln for ln in lines)
    assert ", 1 skipped" in precompute.summarize(manifest.load_manifest(folder))

    strict = _data_cfg(small_1a_dir, tmp_path)
    lines = []
    with pytest.raises(dcase.DatasetError, match=SMALL_ROWS_1A[1][0]):
        precompute.ensure_features(CFG, strict, progress=False, log=lines.append)
    assert _recomputed(lines) == [SHARD0] and "skipped by a --skip_bad_files run" in lines[0]
    with open(bad, "wb") as f:
        f.write(good)
    folder, lines = _run(strict)
    m = manifest.load_manifest(folder)
    assert m.splits["train"].num_examples == 4 and m.skipped == ()
    assert SMALL_ROWS_1A[1][0] in m.splits["train"].files
    assert not any("skipped by --skip_bad_files" in ln for ln in lines)


def test_changed_audio_recomputes_its_shard(small_1a_dir, tmp_path):
    d = _data_cfg(small_1a_dir, tmp_path)
    folder, _ = _run(d)
    kept = _mtime(folder, SHARD1)
    write_wav(_clip(small_1a_dir, 0), seed=99)  # same size, new content and time
    folder, lines = _run(d)
    assert _recomputed(lines) == [SHARD0] and SMALL_ROWS_1A[0][0] in lines[0]
    assert _mtime(folder, SHARD1) == kept
    want = compute_features(audio.load_clip(_clip(small_1a_dir, 0), CFG), CFG)["logmel"]
    np.testing.assert_array_equal(shard_logmel(folder)[SMALL_ROWS_1A[0][0]], want)
    assert _recomputed(_run(d)[1]) == []


def _rewrite_keeping_time(path, seed):
    st = os.stat(path)
    write_wav(path, seed=seed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size


def test_content_hash_on_request(small_1a_dir, tmp_path):
    by_hash = _data_cfg(small_1a_dir, tmp_path, fingerprint="sha256")
    folder, _ = _run(by_hash)
    os.utime(_clip(small_1a_dir, 2), ns=(1, 1))  # touched, content unchanged
    assert _recomputed(_run(by_hash)[1]) == []
    _rewrite_keeping_time(_clip(small_1a_dir, 0), seed=99)  # same size and time, new content
    assert _recomputed(_run(by_hash)[1]) == [SHARD0]
    _rewrite_keeping_time(_clip(small_1a_dir, 0), seed=98)
    by_stat = _data_cfg(small_1a_dir, tmp_path)
    assert _recomputed(_run(by_stat)[1]) == [SHARD1]  # stat sees the touch, not the content


def test_truncated_shard_is_recomputed(small_1a_dir, tmp_path):
    d = _data_cfg(small_1a_dir, tmp_path)
    folder, _ = _run(d)
    path = os.path.join(folder, SHARD1)
    sha = _sha(path)
    data = open(path, "rb").read()
    for cut in (data[:-100], data[: len(data) // 2 + 8]):  # inside a record; the first record
        with open(path, "wb") as f:
            f.write(cut)
        _, lines = _run(d)
        assert _recomputed(lines) == [SHARD1] and "truncated" in lines[0]
        assert _sha(path) == sha


def test_leftovers_are_removed_and_nothing_else(small_1a_dir, tmp_path):
    d = _data_cfg(small_1a_dir, tmp_path)
    folder, _ = _run(d)
    os.remove(os.path.join(folder, SHARD1))  # a run killed while writing the second shard
    os.remove(os.path.join(folder, SHARD1 + ".json"))
    dead = 1 << 23  # above Linux's largest pid
    leftovers = [f".{SHARD1}.tmp-{dead}", f"{SHARD1}.json.tmp-{dead}", f"manifest.json.tmp-{dead}"]
    foreign = [
        "notes.txt",
        f".{SHARD1}.tmp-x",
        f"{SHARD0}.bak",
        f"{SHARD1}.tmp-{dead}",
        "train-0-of-2.tfrecord",
    ]
    for name in leftovers + foreign:
        with open(os.path.join(folder, name), "w") as f:
            f.write("x")
    _, lines = _run(d)
    names = set(os.listdir(folder))
    assert not names & set(leftovers) and set(foreign) <= names
    assert any("removed 3 leftover file(s)" in ln for ln in lines)
    four = _data_cfg(small_1a_dir, tmp_path, clips_per_shard=4)
    _, lines = _run(four)  # the complete shards of another clips_per_shard are used as they are
    names = set(os.listdir(folder))
    assert lines == [] and {SHARD0, SHARD1, SHARD0 + ".json", SHARD1 + ".json"} <= names
    assert "train-00000-of-00001.tfrecord" not in names
    assert set(foreign) <= names
    assert manifest.load_manifest(folder).splits["train"].shards == (SHARD0, SHARD1)


def test_missing_data_dir_says_folder_not_found(tmp_path):
    missing = str(tmp_path / "nothing")
    with pytest.raises(dcase.DatasetError) as e:
        _run(_data_cfg(missing, tmp_path / "f"))
    assert str(e.value) == f"{missing}: dataset folder not found"
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    with pytest.raises(dcase.DatasetError, match="not a folder"):
        _run(_data_cfg(str(not_dir), tmp_path / "f"))
