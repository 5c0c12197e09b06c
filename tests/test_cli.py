"""The one CLI layer (`asc_keras.cli`): every script reports an expected failure as one line
`error: ...` naming the file or flag, with exit status 1, and its `--help` lists its own flags.

Each script runs as a subprocess, as a user runs it. Help and flag errors never load TensorFlow
(a fraction of a second each); the failures that get as far as the library start TensorFlow
(~5 s each), so there is one per script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from asc_keras.config import DataConfig, FeatureConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = FeatureConfig(clip_seconds=1.0, logmel_bins=64, representations=("logmel",))

# Runs a script (or `-m module`) as `__main__` and says on stdout, at exit, whether TensorFlow
# was loaded.
_TRACE_TF = """
import atexit, runpy, sys
atexit.register(lambda: print("TENSORFLOW-LOADED" if "tensorflow" in sys.modules else ""))
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    sys.argv[0] = target
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""


def _run(args, *, trace_tf=False, timeout=60):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0")
    env.pop("ASC_KERAS_TF_LOGS", None)
    head = ["-c", _TRACE_TF] if trace_tf else []
    return subprocess.run(
        [sys.executable, *head, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
    )


def _one_error_line(proc, *, names: str) -> str:
    """The failure was one `error:` line on stderr naming `names`, with exit status 1."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert names in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------------
# --help: each script's own flags, without TensorFlow.

HELP = [
    # script, flags its help lists, flags it must not list
    ("train.py", ["--train_steps", "--width", "--data_dir", "--representations"], ["--tables"]),
    ("evaluate.py", ["--tflite", "--split", "--model_dir", "--data_dir"], ["--train_steps"]),
    ("export.py", ["--export_dir", "--calibration_examples"], ["--tables", "--train_steps"]),
    ("predict.py", ["--model", "--window_seconds"], ["--train_steps", "--export_dir"]),
    ("prepare.py", ["--num_shards", "--representations"], ["--train_steps", "--tables"]),
    ("reproduce.py", ["--tables", "--shard", "--data_dir"], ["--calibration_examples"]),
    ("teach.py", ["--model_dir", "--teacher", "--out", "--data_dir"], ["--train_steps"]),
    ("asc_keras.summary", ["--width", "--backbone", "--task"], ["--tables", "--train_steps"]),
    ("asc_keras.data.synthetic", ["--clips_per_class", "--out", "--layout"], []),
]


@pytest.mark.parametrize("script, own, foreign", HELP, ids=[h[0] for h in HELP])
def test_help_lists_the_scripts_own_flags(script, own, foreign):
    short = _run([script, "--help"], trace_tf=True)
    assert short.returncode == 0, short.stderr[-2000:]
    assert "TENSORFLOW-LOADED" not in short.stdout
    shown = {word.split("=")[0].rstrip(":") for word in short.stdout.split()}
    for flag in own:
        assert flag in shown or f"--[no]{flag[2:]}" in shown, (flag, short.stdout)
    for flag in foreign:
        assert flag not in shown, (flag, short.stdout)
    full = _run([script, "--helpfull"] if script.endswith(".py") else ["-m", script, "--helpfull"])
    assert full.returncode == 0, full.stderr[-2000:]
    for flag in foreign:  # still defined: one flagfile is accepted by every script
        assert f"{flag}:" in full.stdout or f"--[no]{flag[2:]}:" in full.stdout, flag
    assert len(short.stdout.splitlines()) * 2 < len(full.stdout.splitlines())


# ------------------------------------------------------------------------------------------------
# Failures before any model: flags, flagfiles, arguments, folders.


def test_flag_errors_are_one_line_each():
    missing = _run(["train.py"])
    assert "--data_dir, --model_dir" in _one_error_line(missing, names="missing required flags")
    _one_error_line(_run(["reproduce.py", "--shard=3/2"]), names="--shard")
    _one_error_line(_run(["reproduce.py", "--nosuch_flag=1"]), names="nosuch_flag")
    _one_error_line(_run(["evaluate.py", "--flagfile=/no/such.flags"]), names="/no/such.flags")
    _one_error_line(_run(["export.py", "--batch_size=x"]), names="--batch_size")
    _one_error_line(_run(["prepare.py", "--data_dir=d", "stray"]), names="stray")
    _one_error_line(_run(["predict.py", "--model=m"]), names="audio files")
    _one_error_line(_run(["-m", "asc_keras.summary", "--width=-1"]), names="--width")
    _one_error_line(_run(["-m", "asc_keras.data.synthetic"]), names="--out")


def test_prepare_without_meta_csv(small_1a_dir, tmp_path):
    """A list of file names only takes its labels from meta.csv, which is missing."""
    os.remove(os.path.join(small_1a_dir, "meta.csv"))
    listed = os.path.join(small_1a_dir, "evaluation_setup", "fold1_train.csv")
    with open(listed) as f:
        names = [line.split("\t")[0] for line in f]
    with open(listed, "w") as f:
        f.write("\n".join(names) + "\n")
    proc = _run(["prepare.py", f"--data_dir={small_1a_dir}", f"--features_dir={tmp_path}"])
    _one_error_line(proc, names="meta.csv")


def test_synthetic_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("not a synthetic set")
    proc = _run(["-m", "asc_keras.data.synthetic", f"--out={tmp_path}", "--clips_per_class=2"])
    _one_error_line(proc, names=str(tmp_path))


# ------------------------------------------------------------------------------------------------
# Failures in the library (TensorFlow loaded): one per script.


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`(data_dir, features folder, model_dir)`: a tiny 1B set, its Log-Mel features and a
    hand-made run of a width-1/16 model on them."""
    from export_helpers import make_model_dir, tiny_model_config

    from asc_keras.data import precompute, synthetic

    root = tmp_path_factory.mktemp("cli")
    data = str(root / "data")
    synthetic.generate(
        data, task="1b", clips_per_class=2, clips_per_location=1, clip_seconds=1.0, seed=1
    )
    data_cfg = DataConfig(
        data_dir=data, features_dir=str(root / "features"), task="1b", num_workers=1
    )
    folder = precompute.ensure_features(FEATURES, data_cfg, progress=False, log=lambda *_: None)
    model_cfg = tiny_model_config(FEATURES, task="1b", inputs=("logmel",), width=1 / 16)
    run = make_model_dir(root / "run", model_cfg, task="1b", feature_cfg=FEATURES, features=folder)
    return data, folder, run


def test_train_with_a_missing_data_dir(tmp_path):
    proc = _run(["train.py", f"--data_dir={tmp_path / 'nope'}", f"--model_dir={tmp_path / 'r'}"])
    _one_error_line(proc, names=str(tmp_path / "nope"))


def test_export_of_a_folder_that_is_no_run(tmp_path):
    (tmp_path / "not_a_run").mkdir()
    proc = _run(
        ["export.py", f"--model_dir={tmp_path / 'not_a_run'}", f"--export_dir={tmp_path / 'e'}"]
    )
    _one_error_line(proc, names=str(tmp_path / "not_a_run"))


def test_predict_of_a_missing_wav(tiny_run, tmp_path):
    _, _, run = tiny_run
    proc = _run(["predict.py", f"--model={run}", str(tmp_path / "missing.wav")])
    _one_error_line(proc, names=str(tmp_path / "missing.wav"))


def test_evaluate_on_a_corrupt_shard(tiny_run, tmp_path):
    """A flipped byte keeps the shard's framing (so the features are not recomputed) and breaks
    a record's checksum: evaluation names the shard."""
    from asc_keras.data import manifest

    data, folder, run = tiny_run
    features = tmp_path / "features"
    copy = features / os.path.basename(folder)
    shutil.copytree(folder, copy)
    shard = manifest.load_manifest(str(copy)).shard_paths("evaluate")[0]
    with open(shard, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    proc = _run(
        [
            "evaluate.py",
            f"--model_dir={run}",
            f"--data_dir={data}",
            f"--features_dir={features}",
            f"--out_dir={tmp_path / 'eval'}",
        ]
    )
    _one_error_line(proc, names=os.path.basename(shard))
