"""The data side of the fault battery: what a careless or unlucky user does to a dataset folder
or a features cache, and the one line (or the quiet success) each case must end in.

Stale features behind a content hash, a read-only cache, a TAU 2022 name nobody can place, an
error naming a list the user does not have, train and evaluate with different shard sizes, a
resumed run's bytes, Beam's chatter, the synthetic set's smallest size and a custom set's own
clip length."""

import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from conftest import SMALL_ROWS_1A, shard_logmel, write_wav

from asc_keras import audio
from asc_keras import flags as flags_lib
from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, manifest, precompute, shard_writer
from asc_keras.features import compute_features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = FeatureConfig(clip_seconds=1.0, representations=("logmel",))


def _data_cfg(data_dir, features_dir, **kw):
    kw.setdefault("num_workers", 1)
    kw.setdefault("clips_per_shard", 2)  # train: 2 shards, evaluate: 1
    kw.setdefault("task", "1a")
    return DataConfig(data_dir=str(data_dir), features_dir=str(features_dir), **kw)


def _run(data_cfg, cfg=CFG, **kw):
    lines = []
    folder = precompute.ensure_features(cfg, data_cfg, progress=False, log=lines.append, **kw)
    return folder, lines


def _snapshot(root):
    """`{path: (mtime_ns, bytes)}` of every file under `root`."""
    out = {}
    for here, _, names in os.walk(root):
        for name in names:
            path = os.path.join(here, name)
            with open(path, "rb") as f:
                out[path] = (os.stat(path).st_mtime_ns, f.read())
    return out


# --- stale features behind --fingerprint=sha256 ------------------------------------------------


@pytest.mark.slow
def test_sha256_run_recomputes_shards_made_without_hashes(small_1a_dir, tmp_path):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path))  # stat mode: no content hashes
    clip = os.path.join(small_1a_dir, SMALL_ROWS_1A[0][0])
    st = os.stat(clip)
    write_wav(clip, seed=99)  # new content, same size, and the old time (touch -r)
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
    by_hash = _data_cfg(small_1a_dir, tmp_path, fingerprint="sha256")
    folder, lines = _run(by_hash)
    redo = [ln for ln in lines if "recomputing" in ln]
    assert len(redo) == 3 and all("no content hashes" in ln for ln in redo), lines
    want = compute_features(audio.load_clip(clip, CFG), CFG)["logmel"]
    np.testing.assert_array_equal(shard_logmel(folder)[SMALL_ROWS_1A[0][0]], want)
    assert _run(by_hash)[1] == []  # the hashes are recorded now: nothing more to do


# --- a complete cache is only read -------------------------------------------------------------


def test_reading_a_complete_cache_writes_nothing(small_1a_dir, tmp_path, monkeypatch):
    d = _data_cfg(small_1a_dir, tmp_path / "f")
    _run(d)
    before = _snapshot(tmp_path / "f")

    def read_only(path, *_):
        raise PermissionError(f"[Errno 30] Read-only file system: {path!r}")

    monkeypatch.setattr(manifest.atomic, "write_json", read_only)
    monkeypatch.setattr(shard_writer, "write_json", read_only)
    os.symlink(small_1a_dir, tmp_path / "mounted_elsewhere")  # another machine's path
    for splits, data_dir in (
        (("train", "evaluate"), small_1a_dir),
        (("evaluate",), small_1a_dir),
        (("train",), str(tmp_path / "mounted_elsewhere")),
    ):
        folder, lines = _run(_data_cfg(data_dir, tmp_path / "f"), splits=splits)
        assert lines == []
        assert manifest.load_manifest(folder).splits["train"].num_examples == 4
    assert _snapshot(tmp_path / "f") == before


# --- file names nobody can place ---------------------------------------------------------------


def test_tau2022_name_off_the_pattern_without_meta_row_is_refused(tmp_path):
    root = tmp_path / "data"
    rows = [
        ("audio/airport-lisbon-1000-40000-0-a.wav", "airport", "train"),
        ("audio/bus-lyon-1001-40001-0-b.wav", "bus", "train"),
        ("audio/park-paris-1002-40002-0-a.wav", "park", "evaluate"),
    ]
    for i, (name, _, _) in enumerate(rows):
        write_wav(str(root / name), seed=i)
    odd = "audio/bus-lyon-1001-b.wav"  # a subsegment short, and not in meta.csv
    write_wav(str(root / odd), seed=9)
    (root / "meta.csv").write_text(
        "filename\tscene_label\tidentifier\tsource_label\n"
        + "".join(
            f"{n}\t{lab}\t{n.split('-')[1]}-{n.split('-')[2]}\t{n[:-4].split('-')[-1]}\n"
            for n, lab, _ in rows
        )
    )
    (root / "evaluation_setup").mkdir()
    (root / "evaluation_setup" / "fold1_train.csv").write_text(
        "filename\tscene_label\n"
        + "".join(f"{n}\t{lab}\n" for n, lab, s in rows if s == "train")
        + f"{odd}\tbus\n"
    )
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text(
        f"filename\tscene_label\n{rows[2][0]}\tpark\n"
    )
    with pytest.raises(dcase.DatasetError) as e:
        dcase.read_dataset(str(root), "tau2022")
    msg = str(e.value)
    assert "\n" not in msg and odd in msg and "fold1_train.csv: line 4" in msg
    assert "<subsegment>-<device>.wav" in msg and "meta.csv" in msg


def test_folder_layout_error_names_the_folder_not_a_list(tmp_path):
    root = tmp_path / "mine"
    for name in (
        "train/cat/1.wav",
        "train/dog/2.wav",
        "evaluate/cat/3.wav",
        "evaluate/ghost/4.wav",
    ):
        write_wav(str(root / name), seconds=0.2)
    classes = dcase.resolve_classes(str(root), "custom")
    with pytest.raises(dcase.DatasetError) as e:
        dcase.read_dataset(str(root), DataConfig(task="custom", classes=classes).task_spec)
    msg = str(e.value)
    assert msg.startswith(os.path.join(str(root), "evaluate/ghost/4.wav") + ":")
    assert "'ghost'" in msg and "fold1_" not in msg and "line" not in msg


# --- two shard sizes, one cache ----------------------------------------------------------------


def test_evaluate_with_another_clips_per_shard_reuses_the_shards(small_1a_dir, tmp_path):
    _run(_data_cfg(small_1a_dir, tmp_path, clips_per_shard=2))  # as train.py did
    before = _snapshot(tmp_path)
    for size, splits in ((1, ("evaluate",)), (2, ("train", "evaluate")), (3, ("evaluate",))):
        folder, lines = _run(_data_cfg(small_1a_dir, tmp_path, clips_per_shard=size), splits=splits)
        assert lines == []  # nothing recomputed, nothing removed
    assert _snapshot(tmp_path) == before
    m = manifest.load_manifest(folder)
    assert m.splits["evaluate"].shards == ("evaluate-00000-of-00001.tfrecord",)
    assert m.splits["train"].num_examples == 4


def test_a_new_folder_takes_the_asked_clips_per_shard(small_1a_dir, tmp_path):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path, clips_per_shard=1))
    m = manifest.load_manifest(folder)
    assert len(m.splits["train"].shards) == 4 and len(m.splits["evaluate"].shards) == 2


# --- a resumed run writes the bytes of an uninterrupted one -------------------------------------


@pytest.mark.slow
def test_resumed_single_clip_shard_is_byte_identical(small_1a_dir, tmp_path):
    d = _data_cfg(small_1a_dir, tmp_path, clips_per_shard=1, num_workers=2)
    folder, _ = _run(d, splits=("train",))  # worker processes, one BLAS thread each
    name = "train-00002-of-00004.tfrecord"
    with open(os.path.join(folder, name), "rb") as f:
        whole = f.read()
    os.remove(os.path.join(folder, name))  # killed before this shard was renamed into place
    os.remove(os.path.join(folder, name + ".json"))
    _, lines = _run(d, splits=("train",))  # one clip left: computed in this process
    assert any("1 clips in 1 shard(s)" in ln for ln in lines), lines
    with open(os.path.join(folder, name), "rb") as f:
        assert f.read() == whole


# --- Beam keeps quiet --------------------------------------------------------------------------

_BEAM_CHATTER = r"""
import logging, os, sys
from absl import app
from asc_keras.cli import quiet

def main(argv):
    import apache_beam  # its import note: "apitools not found ..." (through the root logger)
    from apache_beam.io.gcp.internal.clients import bigquery  # the module that says it
    logging.getLogger("apache_beam.runners.portability.local_job_service").warning(
        "Worker: severity: WARN message: relayed")
    for line in (b"WARNING:root:apitools not found, and bigquery client libraries are not",
                 b"INFO:__main__:Logging handler created.",
                 b"WARNING:__main__:No semi_persistent_directory found:  User registered",
                 b"WARNING:apache_beam.options.pipeline_options:Discarding unparseable args"):
        os.write(2, line + b"\n")  # as the SDK worker processes write them
    logging.getLogger("apache_beam.x").error("a real Beam error stays")

quiet.setup(sys.argv)
app.run(main)
"""


@pytest.mark.parametrize("verbosity", [[], ["--verbosity=1"]])
@pytest.mark.slow
def test_beam_notes_are_quiet_unless_asked(verbosity):
    pytest.importorskip("apache_beam")
    out = subprocess.run(
        [sys.executable, "-c", _BEAM_CHATTER, *verbosity],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert any("a real Beam error stays" in ln for ln in lines), out.stderr
    if verbosity:
        assert len(lines) >= 6, out.stderr
    else:
        assert len(lines) == 1, out.stderr


# --- the synthetic set at its smallest --------------------------------------------------------


@pytest.mark.slow
def test_synthetic_tau2022_with_two_clips_per_class(tmp_path):
    args = [
        sys.executable,
        "-m",
        "asc_keras.data.synthetic",
        "--task=tau2022",
        "--clips_per_class=2",
        "--subsegments=1",
        "--clip_seconds=0.2",
        "--num_cities=2",
    ]
    ok = subprocess.run(
        args + [f"--out={tmp_path / 'a'}"], capture_output=True, text=True, cwd=REPO
    )
    assert ok.returncode == 0 and "Traceback" not in ok.stderr, ok.stderr[-2000:]
    tables = dcase.read_dataset(str(tmp_path / "a"), "tau2022")
    assert set(tables["train"]["label"]) == set(tables["evaluate"]["label"])
    again = subprocess.run(
        args + [f"--out={tmp_path / 'a'}"], capture_output=True, text=True, cwd=REPO
    )  # not empty now
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1


# --- a custom set's own clip length ------------------------------------------------------------


def _custom(root, seconds):
    names = ["train/cat/1.wav", "train/dog/2.wav", "evaluate/cat/3.wav", "evaluate/dog/4.wav"]
    for i, (name, s) in enumerate(zip(names, seconds, strict=True)):
        write_wav(str(root / name), seconds=s, seed=i)
    return str(root)


def _feature_config(*argv):
    fv = flags.FlagValues()
    flags_lib.define_all(fv)
    flags_lib.parse(["test", "--task=custom", "--representations=logmel", *argv], fv)
    lines = []
    return flags_lib.feature_config(fv, log=lines.append), lines


def test_custom_set_takes_the_length_its_clips_share(tmp_path):
    root = _custom(tmp_path / "half", [0.5, 0.5, 0.5, 0.49])
    cfg, lines = _feature_config(f"--data_dir={root}")
    assert cfg.clip_seconds == 0.5
    assert len(lines) == 1 and "0.5 s" in lines[0] and "--clip_seconds" in lines[0]
    folder, _ = _run(
        _data_cfg(root, tmp_path / "f", task="custom", classes=("cat", "dog")), cfg=cfg
    )
    assert manifest.load_manifest(folder).splits["train"].num_examples == 2
    given, lines = _feature_config(f"--data_dir={root}", "--clip_seconds=1")
    assert given.clip_seconds == 1.0 and lines == []


def test_custom_clips_of_different_lengths_name_the_flag(tmp_path):
    root = _custom(tmp_path / "mixed", [0.5, 0.5, 0.5, 1.0])
    with pytest.raises(ValueError) as e:
        _feature_config(f"--data_dir={root}")
    msg = str(e.value)
    assert "\n" not in msg and "evaluate/dog/4.wav is 1.00 s" in msg
    assert "set --clip_seconds" in msg
