"""The Beam engine of precompute (DirectRunner): the same bytes as the local engine, bad input,
resume, the train statistics combiner, the command line, and the missing-extra message.

These tests need the `beam` extra (`pip install -e '.[cpu,dev,beam]'`, what `make test`
installs); without it they fail, they do not skip.
"""

import glob
import hashlib
import json
import os
import random
import subprocess
import sys

import pytest
from conftest import SMALL_ROWS_1A

from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import beam, dcase, manifest, precompute
from asc_keras.features.normalization import RunningStats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = FeatureConfig(clip_seconds=1.0)
IN_MEMORY = "--runner=DirectRunner --direct_running_mode=in_memory"
TWO_PROCESSES = (
    "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
)


def _data_cfg(data_dir, features_dir, **kw):
    kw.setdefault("clips_per_shard", 2)  # train: 2 shards, evaluate: 1
    return DataConfig(data_dir=data_dir, features_dir=str(features_dir), task="1a", **kw)


def _beam_cfg(data_dir, features_dir, options=IN_MEMORY, **kw):
    return _data_cfg(data_dir, features_dir, engine="beam", beam_pipeline_options=options, **kw)


def _run(data_cfg, cfg=CFG, **kw):
    return precompute.ensure_features(cfg, data_cfg, progress=False, log=lambda *_: None, **kw)


def _digests(folder):
    """`{file name: sha256}` of everything in a features folder."""
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _corrupt(path):
    with open(path, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")


@pytest.mark.slow
def test_beam_writes_the_local_engines_bytes(small_1a_dir, tmp_path):
    # Local worker processes and Beam workers both compute with one BLAS thread.
    local = _run(_data_cfg(small_1a_dir, tmp_path / "local", num_workers=2))
    beamed = _run(_beam_cfg(small_1a_dir, tmp_path / "beam", TWO_PROCESSES))
    assert os.path.basename(local) == os.path.basename(beamed)
    want = _digests(local)
    assert len(want) == 7  # 3 shards, 3 sidecars, the manifest
    assert _digests(beamed) == want  # shards, sidecars and manifest (statistics included)
    m = manifest.load_manifest(beamed)
    assert m.splits["train"].num_examples == 4 and m.splits["evaluate"].num_examples == 2


def test_train_statistics_combiner_ignores_the_runners_order(small_1a_dir, tmp_path):
    folder = _run(_data_cfg(small_1a_dir, tmp_path / "f", clips_per_shard=1))  # 4 train shards
    parts = []
    for path in sorted(glob.glob(os.path.join(folder, "train-*.json"))):
        with open(path) as f:
            parts.append((os.path.basename(path)[:-5], json.load(f)["stats"]))
    fn = beam._TrainStatsFn(CFG)
    rng = random.Random(0)
    outputs = []
    for _ in range(4):  # inputs in any order, accumulators merged in any grouping
        rng.shuffle(parts)
        accs = [fn.create_accumulator() for _ in range(2)]
        for k, part in enumerate(parts):
            accs[k % 2] = fn.add_input(accs[k % 2], part)
        outputs.append(fn.extract_output(fn.merge_accumulators(accs[::-1])))
    assert all(out == outputs[0] for out in outputs)
    with open(os.path.join(folder, manifest.MANIFEST_NAME)) as f:
        written = json.load(f)["normalization"]  # the local engine's sidecar merge
    for rep, d in outputs[0].items():
        stats = RunningStats.from_dict(d)
        assert written[rep] == {"mean": stats.mean.tolist(), "std": stats.std.tolist()}


def test_bad_clip_fails_naming_it_and_a_rerun_keeps_finished_shards(small_1a_dir, tmp_path):
    name = SMALL_ROWS_1A[2][0]  # the first clip of the second train shard
    path = os.path.join(small_1a_dir, name)
    with open(path, "rb") as f:
        good = f.read()
    _corrupt(path)
    d = _beam_cfg(small_1a_dir, tmp_path / "f")
    with pytest.raises(dcase.DatasetError) as e:
        _run(d)
    msg = str(e.value)
    assert name in msg and "cannot decode audio" in msg and "--skip_bad_files" in msg
    assert "\n" not in msg
    folder = glob.glob(str(tmp_path / "f" / "*"))[0]
    # Every other shard is written; the failing one leaves nothing, nor does the pipeline.
    assert sorted(os.listdir(folder)) == [
        "evaluate-00000-of-00001.tfrecord",
        "evaluate-00000-of-00001.tfrecord.json",
        "train-00000-of-00002.tfrecord",
        "train-00000-of-00002.tfrecord.json",
    ]
    mtimes = {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder)}
    with open(path, "wb") as f:
        f.write(good)
    logs = []
    assert precompute.ensure_features(CFG, d, progress=False, log=logs.append) == folder
    assert "precompute: 2 clips in 1 shard(s)" in "\n".join(logs)  # only the failed shard
    assert {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in mtimes} == mtimes
    assert manifest.load_manifest(folder).splits["train"].num_examples == 4


def test_missing_clip_fails_before_the_pipeline(small_1a_dir, tmp_path):
    os.remove(os.path.join(small_1a_dir, SMALL_ROWS_1A[2][0]))
    with pytest.raises(dcase.DatasetError) as e:
        _run(_beam_cfg(small_1a_dir, tmp_path / "f"))
    msg = str(e.value)
    assert SMALL_ROWS_1A[2][0] in msg and "missing" in msg and "\n" not in msg
    assert not glob.glob(str(tmp_path / "f" / "*" / "*"))  # nothing computed


def test_two_bad_shards_name_the_first_and_count_the_rest(small_1a_dir, tmp_path):
    _corrupt(os.path.join(small_1a_dir, SMALL_ROWS_1A[3][0]))  # train shard 1
    _corrupt(os.path.join(small_1a_dir, SMALL_ROWS_1A[5][0]))  # evaluate shard 0
    with pytest.raises(dcase.DatasetError) as e:
        _run(_beam_cfg(small_1a_dir, tmp_path / "f"))
    msg = str(e.value)
    assert SMALL_ROWS_1A[3][0] in msg and "1 more shard(s) stopped on bad files" in msg
    assert SMALL_ROWS_1A[5][0] not in msg and "\n" not in msg


def test_skip_bad_files_lists_every_skipped_file_as_locally(small_1a_dir, tmp_path):
    _corrupt(os.path.join(small_1a_dir, SMALL_ROWS_1A[1][0]))
    path = os.path.join(small_1a_dir, SMALL_ROWS_1A[5][0])
    with open(path, "rb") as f:
        head = f.read(60)
    with open(path, "wb") as f:  # truncated
        f.write(head)
    local = _run(_data_cfg(small_1a_dir, tmp_path / "local", num_workers=2, skip_bad_files=True))
    beamed = _run(_beam_cfg(small_1a_dir, tmp_path / "beam", skip_bad_files=True))
    m = manifest.load_manifest(beamed)
    assert sorted(s["filename"] for s in m.skipped) == [SMALL_ROWS_1A[1][0], SMALL_ROWS_1A[5][0]]
    assert m.splits["train"].num_examples == 3 and m.splits["evaluate"].num_examples == 1
    assert _digests(beamed) == _digests(local)


def test_beam_takes_no_hand_made_machine_split():
    with pytest.raises(ValueError, match="drop --num_shards"):
        DataConfig(engine="beam", num_shards=2, shard_index=1)
    assert beam.pipeline_args(DataConfig(num_workers=3))[:3] == [
        "--runner=DirectRunner",
        "--direct_num_workers=3",
        "--direct_running_mode=multi_processing",
    ]
    assert (
        beam.pipeline_args(DataConfig(beam_pipeline_options=TWO_PROCESSES)) == TWO_PROCESSES.split()
    )


def _prepare(args, cwd, *, without_beam=False):
    """Run prepare.py in a fresh process; `without_beam` hides apache_beam from imports."""
    hide = "import sys; sys.modules['apache_beam'] = None; " if without_beam else "import sys; "
    code = (
        hide + f"sys.argv = ['prepare.py'] + {args!r}; import runpy; "
        f"runpy.run_path({os.path.join(REPO, 'prepare.py')!r}, run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(cwd)
    )


@pytest.mark.slow
def test_prepare_cli_engine_beam(small_1a_dir, tmp_path):
    args = [
        f"--data_dir={small_1a_dir}",
        f"--features_dir={tmp_path / 'f'}",
        "--clip_seconds=1",
        "--representations=logmel",
        "--clips_per_shard=3",
        "--engine=beam",
        f"--beam_pipeline_options={IN_MEMORY}",
    ]
    ok = _prepare(args, tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "train" in ok.stdout and "[87, 40]" in ok.stdout and "train mean" in ok.stdout
    missing = _prepare(
        args + ["--features_dir=" + str(tmp_path / "g")], tmp_path, without_beam=True
    )
    assert missing.returncode == 1
    err = [ln for ln in missing.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "pip install -e '.[beam]'" in err[0], missing.stderr[-3000:]
    with open(os.path.join(small_1a_dir, "evaluation_setup", "fold1_train.csv"), "a") as f:
        f.write("audio/park-rome-1-2-a.wav\tbeach\n")  # a wrong label
    bad = _prepare(args + ["--features_dir=" + str(tmp_path / "h")], tmp_path)
    assert bad.returncode == 1
    err = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "fold1_train.csv" in err[0] and "beach" in err[0], bad.stderr[-3000:]
