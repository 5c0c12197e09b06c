"""Precompute: TFRecord round trip, normalization, resume, machine split, and bad input."""

import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import SMALL_ROWS_1A, write_wav

from asc_keras import audio
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, manifest, precompute, schema
from asc_keras.features import compute_features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = FeatureConfig(clip_seconds=1.0)


def _data_cfg(data_dir, features_dir, **kw):
    kw.setdefault("num_workers", 1)
    kw.setdefault("clips_per_shard", 2)
    return DataConfig(data_dir=data_dir, features_dir=str(features_dir), task="1a", **kw)


def _run(data_cfg, cfg=CFG, **kw):
    return precompute.ensure_features(cfg, data_cfg, progress=False, log=lambda *_: None, **kw)


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _records(m, split):
    import tensorflow as tf

    parse = schema.make_parser(m.shapes, dtype=m.dtype)
    return [
        {k: v.numpy() for k, v in parse(r).items()}
        for r in tf.data.TFRecordDataset(m.shard_paths(split))
    ]


def _leftovers(folder):
    return [p for p in os.listdir(folder) if ".tmp" in p]


def test_round_trip_matches_direct_computation(small_1a_dir, tmp_path):
    folder = _run(_data_cfg(small_1a_dir, tmp_path / "f"))
    m = manifest.load_manifest(folder)
    assert m.splits["train"].num_examples == 4 and len(m.shard_paths("train")) == 2
    assert dict(m.shapes) == {
        "logmel": (87, 40),
        "cqt": (87, 64),
        "gamma": (87, 64),
        "mfcc": (87, 40),
    }
    recs = _records(m, "train")
    tables = dcase.read_dataset(small_1a_dir, "1a")
    direct = {r: [] for r in CFG.representations}
    for rec, row in zip(recs, tables["train"].itertuples(), strict=True):
        assert rec["filename"].decode() == row.filename
        assert rec["label"] == row.label_index
        assert rec["device"].decode() == row.device and rec["city"].decode() == row.city
        want = compute_features(audio.load_clip(os.path.join(small_1a_dir, row.filename), CFG), CFG)
        for rep, x in want.items():
            assert rec[rep].shape == x.shape and rec[rep].dtype == np.float32
            np.testing.assert_array_equal(rec[rep], x)
            direct[rep].append(x)
    for rep, xs in direct.items():  # statistics over the train split only
        allx = np.concatenate(xs).astype(np.float64)
        np.testing.assert_allclose(m.normalization[rep]["mean"], allx.mean(0), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(m.normalization[rep]["std"], allx.std(0), rtol=1e-4, atol=1e-4)
    assert [r["label"] for r in _records(m, "evaluate")] == [2, 4]
    assert not _leftovers(folder)


@pytest.mark.slow
def test_two_workers_write_identical_records_and_float16(small_1a_dir, tmp_path):
    one = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path / "a")))
    two = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path / "b", num_workers=2)))
    for a, b in zip(_records(one, "train"), _records(two, "train"), strict=True):
        assert a["filename"] == b["filename"]
        for rep in CFG.representations:  # workers use one BLAS thread: summation order differs
            np.testing.assert_allclose(a[rep], b[rep], rtol=0, atol=1e-3)
    cfg16 = FeatureConfig(clip_seconds=1.0, dtype="float16", representations=("logmel",))
    half = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path / "c"), cfg16))
    assert half.dtype == "float16" and half.path != one.path
    for a, b in zip(_records(one, "train"), _records(half, "train"), strict=True):
        np.testing.assert_allclose(a["logmel"], b["logmel"], rtol=1e-3, atol=2e-2)


def test_settings_change_the_folder(small_1a_dir, tmp_path):
    d = _data_cfg(small_1a_dir, tmp_path)
    a = _run(d, FeatureConfig(clip_seconds=1.0, representations=("logmel",)))
    b = _run(d, FeatureConfig(clip_seconds=1.0, representations=("logmel",), logmel_bins=64))
    assert a != b
    assert _run(d, FeatureConfig(clip_seconds=1.0, representations=("logmel",))) == a


def test_interrupted_run_keeps_finished_shards_and_resumes(small_1a_dir, tmp_path):
    bad = os.path.join(small_1a_dir, SMALL_ROWS_1A[2][0])  # first clip of the second shard
    good = open(bad, "rb").read()
    with open(bad, "wb") as f:
        f.write(b"RIFF" + os.urandom(64))
    d = _data_cfg(small_1a_dir, tmp_path / "f")
    with pytest.raises(ValueError) as e:
        _run(d)
    assert SMALL_ROWS_1A[2][0] in str(e.value) and "\n" not in str(e.value)
    folder = glob.glob(str(tmp_path / "f" / "*"))[0]
    first = os.path.join(folder, "train-00000-of-00002.tfrecord")
    assert os.path.exists(first) and os.path.exists(first + ".json")
    assert not os.path.exists(os.path.join(folder, "train-00001-of-00002.tfrecord"))
    assert not _leftovers(folder) and not os.path.exists(os.path.join(folder, "manifest.json"))
    mtime = os.stat(first).st_mtime_ns
    with open(bad, "wb") as f:
        f.write(good)
    assert _run(d) == folder
    assert os.stat(first).st_mtime_ns == mtime  # not recomputed
    assert manifest.load_manifest(folder).splits["train"].num_examples == 4


def test_split_across_machines(small_1a_dir, tmp_path):
    whole = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path / "one")))
    with pytest.raises(precompute.PrecomputeIncomplete, match="other machines"):
        _run(_data_cfg(small_1a_dir, tmp_path / "two", num_shards=2, shard_index=0))
    split = manifest.load_manifest(
        _run(_data_cfg(small_1a_dir, tmp_path / "two", num_shards=2, shard_index=1))
    )
    assert split.splits == whole.splits
    for rep in CFG.representations:
        np.testing.assert_allclose(
            split.normalization[rep]["mean"], whole.normalization[rep]["mean"], rtol=1e-6
        )


def test_unlabeled_split_and_odd_sample_rate(small_1a_dir, tmp_path):
    # A 22.05 kHz stereo clip is resampled, not rejected.
    write_wav(os.path.join(small_1a_dir, SMALL_ROWS_1A[4][0]), sr=22050, channels=2)
    m = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path), splits=("test",)))
    assert [r["label"] for r in _records(m, "test")] == [schema.UNLABELED] * 2
    assert m.normalization == {}


def _corrupt(path):
    with open(path, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")


def _truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:60])


def _ulaw(path):
    write_wav(path, subtype="ULAW")


def _short(path):
    write_wav(path, seconds=0.3)


def _missing(path):
    os.remove(path)


@pytest.mark.parametrize(
    "damage, cause",
    [
        (_corrupt, "cannot decode audio (Error in WAV"),
        (_truncate, "truncated WAV: data chunk"),
        (_ulaw, "ULAW"),
        (_short, "0.30 s"),
        (_missing, "missing"),
    ],
)
def test_bad_clip_is_a_one_line_error_and_no_partial_shard(small_1a_dir, tmp_path, damage, cause):
    name = SMALL_ROWS_1A[1][0]
    damage(os.path.join(small_1a_dir, name))
    with pytest.raises(ValueError) as e:
        _run(_data_cfg(small_1a_dir, tmp_path / "f", clips_per_shard=4))
    msg = str(e.value)
    assert name in msg and cause in msg
    assert "\n" not in msg and "Error opening" not in msg  # the path is named once
    for folder in glob.glob(str(tmp_path / "f" / "*")):
        assert not glob.glob(os.path.join(folder, "train-*")) and not _leftovers(folder)


def test_skip_bad_files_lists_them_in_the_manifest(small_1a_dir, tmp_path):
    _corrupt(os.path.join(small_1a_dir, SMALL_ROWS_1A[1][0]))
    _short(os.path.join(small_1a_dir, SMALL_ROWS_1A[5][0]))
    m = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path, skip_bad_files=True)))
    assert m.splits["train"].num_examples == 3 and m.splits["evaluate"].num_examples == 1
    assert sorted(s["filename"] for s in m.skipped) == [SMALL_ROWS_1A[1][0], SMALL_ROWS_1A[5][0]]
    assert SMALL_ROWS_1A[1][0] not in m.splits["train"].files
    assert len(_records(m, "train")) == 3


@pytest.mark.slow
def test_prepare_cli_exit_codes_and_identical_bytes(small_1a_dir, tmp_path):
    base = [
        sys.executable,
        os.path.join(REPO, "prepare.py"),
        f"--data_dir={small_1a_dir}",
        f"--features_dir={tmp_path / 'f'}",
        "--clip_seconds=1",
        "--num_workers=1",
        "--representations=logmel",
        "--clips_per_shard=3",
    ]
    ok = subprocess.run(base, capture_output=True, text=True, cwd=str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert "train" in ok.stdout and "[87, 40]" in ok.stdout and "train mean" in ok.stdout
    # Another process, another run: the same bytes in every file (shards, sidecars, manifest).
    mine = _run(
        _data_cfg(small_1a_dir, tmp_path / "g", clips_per_shard=3),
        FeatureConfig(clip_seconds=1.0, representations=("logmel",)),
    )
    theirs = os.path.join(tmp_path / "f", os.path.basename(mine))
    names = sorted(os.listdir(mine))
    assert names == sorted(os.listdir(theirs)) and len(names) == 7  # 3 shards, 3 sidecars
    assert [_sha256(os.path.join(mine, n)) for n in names] == [
        _sha256(os.path.join(theirs, n)) for n in names
    ]
    with open(os.path.join(small_1a_dir, "evaluation_setup", "fold1_evaluate.csv"), "a") as f:
        f.write("audio/park-rome-1-2-a.wav\tpark\n")
    bad = subprocess.run(base, capture_output=True, text=True, cwd=str(tmp_path))
    assert bad.returncode == 1
    err = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "fold1_evaluate.csv" in err[0] and "park-rome" in err[0]


def test_manifest_mismatch_is_reported(small_1a_dir, tmp_path):
    m = manifest.load_manifest(_run(_data_cfg(small_1a_dir, tmp_path)))
    with pytest.raises(manifest.ManifestError, match="logmel_bins=40 \\(config 64\\)"):
        m.check_compatible(FeatureConfig(clip_seconds=1.0, logmel_bins=64), "1a")
    with pytest.raises(manifest.ManifestError, match="task 1a"):
        m.check_compatible(CFG, "1b")
    with open(os.path.join(m.path, "manifest.json")) as f:
        assert json.load(f)["dataset"]["fingerprint"]


def test_wav_written_by_helper_is_24_bit(tmp_path):
    write_wav(str(tmp_path / "x.wav"))
    assert sf.info(str(tmp_path / "x.wav")).subtype == "PCM_24"


def test_features_of_older_feature_code_are_refused(small_1a_dir, tmp_path):
    folder = _run(_data_cfg(small_1a_dir, tmp_path))
    path = os.path.join(folder, "manifest.json")
    with open(path) as f:
        d = json.load(f)
    d["feature_code_version"] -= 1
    with open(path, "w") as f:
        json.dump(d, f)
    with pytest.raises(manifest.ManifestError, match="feature code version"):
        manifest.load_manifest(folder).check_compatible(CFG, "1a")
