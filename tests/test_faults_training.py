"""Training faults a careless or unlucky user meets, each one line with nothing half-made left.

A full disk (checkpoint and precompute), two trainings on one run folder, a batch whose tensors
pass TensorFlow's 2 GB limit, a NaN loss with and without a checkpoint, and Ctrl-C. The full disk
and the 2 GB tensor are raised where TensorFlow raises them, with its own message text (a real
full disk needs a mount this test cannot make); the lock and Ctrl-C use real processes.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CLIP_SECONDS, SMALL_ROWS_1A, feature_flags, make_layout

from asc_keras import oom
from asc_keras.config import DataConfig, FeatureConfig, ModelConfig, TrainConfig
from asc_keras.training import callbacks, lock, trainer

REPO = pathlib.Path(__file__).resolve().parent.parent
FEATURES = FeatureConfig(clip_seconds=CLIP_SECONDS, representations=("logmel",))


def _quiet(*_):
    pass


def _model_cfg():
    return ModelConfig(
        backbone="1b",
        inputs=("logmel",),
        input_bins={"logmel": 40},
        num_frames=FEATURES.num_frames,
        num_classes=3,
        width=0.125,
    )


def _train(tmp_path, model_dir, *, nan_batch=None, log=_quiet, **train_kw):
    """Train the tiny 1B model on zeros in-process (`datasets=`); `nan_batch`: a batch whose
    labels are NaN (its step's loss is NaN)."""
    import tensorflow as tf

    x = np.zeros((4, 4, FEATURES.num_frames, 40), np.float32)  # 4 batches [B=4, T, F]
    labels = np.tile(np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], (4, 1, 1))  # [4, B, C]
    if nan_batch is not None:
        labels[nan_batch, 1] = np.nan
    train = tf.data.Dataset.from_tensor_slices(({"logmel": x}, labels)).repeat()
    kw = dict(
        model_dir=str(model_dir),
        train_steps=4,
        batch_size=4,
        eval_every=0,
        checkpoint_every=2,
        log_every=2,
    )
    kw.update(train_kw)
    return trainer.run(
        FEATURES,
        DataConfig(data_dir=str(tmp_path), task="1b"),
        _model_cfg(),
        TrainConfig(**kw),
        datasets={"train": train},
        log=log,
    )


def _tf_no_space(path):
    """What TensorFlow raises when a write meets a full disk (its message, measured)."""
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(
        None,
        None,
        "{{function_node __wrapped__SaveV2_dtypes_3_device_/job:localhost/replica:0/"
        "task:0/device:CPU:0}} " + f"{path}; No space left on device [Op:SaveV2]",
    )


def _fill_disk_at_checkpoint(monkeypatch, *, fail_from: int):
    """Checkpoint writes from the `fail_from`-th on behave as on a full disk: TensorFlow makes
    `ckpt-N_temp/`, writes part of the data, and raises."""
    import tensorflow as tf

    real_write = tf.train.Checkpoint._write
    calls = []

    def write(self, file_prefix, *args, **kwargs):
        calls.append(file_prefix)
        if len(calls) < fail_from:
            return real_write(self, file_prefix, *args, **kwargs)
        part = os.path.join(
            f"{file_prefix}_temp",
            "part-00000-of-00001.data-00000-of-00001.tempstate8833072762300663193",
        )
        os.makedirs(os.path.dirname(part))
        with open(part, "wb") as f:
            f.write(b"\0" * 100)
        raise _tf_no_space(part)

    monkeypatch.setattr(tf.train.Checkpoint, "_write", write)


@pytest.mark.slow
def test_full_disk_at_a_checkpoint_is_named_and_cleaned(tmp_path, monkeypatch):
    # The second checkpoint (step 4) meets the full disk: step 2's is kept, no ckpt-4_temp.
    _fill_disk_at_checkpoint(monkeypatch, fail_from=2)
    model_dir = tmp_path / "run"
    with pytest.raises(oom.NoSpaceError) as info:
        _train(tmp_path, model_dir)
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and "\n" not in message
    assert "memory" not in message and "--batch_size" not in message
    assert message.startswith(
        f"training: no space left on device writing {model_dir / 'checkpoints' / 'ckpt-4_temp'};"
    )
    assert "the checkpoint at step 2 is kept" in message
    ckpts = sorted(os.listdir(model_dir / "checkpoints"))
    assert ckpts == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert not (model_dir / lock.LOCK_NAME).exists()

    # The first checkpoint of a new folder meets it: the unfinished folder goes.
    _fill_disk_at_checkpoint(monkeypatch, fail_from=1)
    with pytest.raises(oom.NoSpaceError, match=r"ckpt-2_temp; removed the unfinished"):
        _train(tmp_path, tmp_path / "new_run")
    assert not (tmp_path / "new_run").exists()


def test_full_disk_in_python_writes_names_the_folder(tmp_path):
    """Python's OSError(ENOSPC) often names no file (Keras' model.save, a json dump): the line
    names the folder, and this process's temporary files there are removed."""

    def fail_writing(folder, name):
        (folder / f"{name}.tmp-{os.getpid()}").write_text("{")  # what an atomic write leaves
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    features = tmp_path / "features"
    features.mkdir()
    (features / "train-00000-of-00002.tfrecord").write_bytes(b"done")
    with pytest.raises(oom.NoSpaceError) as info:
        with oom.disk_full_reported("precompute", where=str(features), kept="finished shards"):
            fail_writing(features, "manifest.json")
    assert str(info.value) == (
        f"precompute: no space left on device writing {features}; "
        "removed the partial files; finished shards are kept; free some "
        "space and rerun"
    )
    assert os.listdir(features) == ["train-00000-of-00002.tfrecord"]

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-4"\n')
    (run / "checkpoints" / "ckpt-4.index").write_bytes(b"done")
    with pytest.raises(oom.NoSpaceError) as info:
        with oom.reported("training", "--batch_size", cleanup=oom.RunFolder(str(run), True)):
            fail_writing(run, "model.keras")
    assert str(info.value) == (
        f"training: no space left on device writing {run}; removed the "
        "partial files; the checkpoint at step 4 is kept; free some space "
        "and rerun"
    )
    assert sorted(os.listdir(run)) == ["checkpoints"]


def test_full_disk_in_precompute_keeps_finished_shards(tmp_path, monkeypatch):
    import tensorflow as tf

    from asc_keras.data import precompute

    data_dir = make_layout(tmp_path / "data", SMALL_ROWS_1A)
    data_cfg = DataConfig(
        data_dir=data_dir,
        features_dir=str(tmp_path / "features"),
        task="1a",
        num_workers=1,
        clips_per_shard=2,
    )
    real_writer = tf.io.TFRecordWriter
    opened = []

    class FullDiskWriter(real_writer):
        """The second shard's first record meets a full disk."""

        def __init__(self, path, *args, **kwargs):
            super().__init__(path, *args, **kwargs)
            opened.append(path)

        def write(self, record):
            if len(opened) >= 2:
                import tensorflow as tf

                raise tf.errors.ResourceExhaustedError(
                    None, None, f"{opened[-1]}; No space left on device"
                )
            return super().write(record)

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDiskWriter)
    with pytest.raises(oom.NoSpaceError) as info:
        precompute.ensure_features(FEATURES, data_cfg, progress=False, log=_quiet)
    message = str(info.value)
    assert "\n" not in message and info.value.errno == errno.ENOSPC
    assert message.startswith(f"precompute: no space left on device writing {opened[1]};")
    assert "finished shards are kept" in message
    folder = os.path.dirname(opened[1])
    names = sorted(os.listdir(folder))
    first = os.path.basename(opened[0]).split(".tmp-")[0].lstrip(".")
    assert names == [first, f"{first}.json"]  # the finished shard, no partial file

    monkeypatch.setattr(tf.io, "TFRecordWriter", real_writer)
    lines = []
    precompute.ensure_features(FEATURES, data_cfg, progress=False, log=lines.append)
    assert lines[0].startswith("precompute: 4 clips in 2 shard(s)")  # the finished one kept


def _hold_lock(model_dir):
    """A live process that holds the lock of `model_dir`; returns it once it does."""
    code = (
        "import sys, time; from asc_keras.training import lock; "
        "lock.acquire(sys.argv[1], log=print); print('held', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(model_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_a_run_folder_is_trained_by_one_process(tmp_path):
    model_dir = tmp_path / "run"
    holder = _hold_lock(model_dir)
    try:
        with pytest.raises(lock.RunFolderLockedError) as info:
            _train(tmp_path, model_dir)
        message = str(info.value)
        host = socket.gethostname()
        assert "\n" not in message
        assert message.startswith(f"{model_dir}: in use by training pid {holder.pid} on {host}")
        assert sorted(os.listdir(model_dir)) == [lock.LOCK_NAME]  # nothing written
    finally:
        holder.kill()  # SIGKILL: its lock stays behind, stale
        holder.wait()
        holder.stdout.close()
    lines = []
    out = _train(tmp_path, model_dir, log=lines.append)
    assert out["step"] == 4
    assert lines[0] == (
        f"{model_dir / lock.LOCK_NAME}: took over the lock of pid {holder.pid} "
        f"on {host}, which no longer runs"
    )
    assert not (model_dir / lock.LOCK_NAME).exists()  # released

    # Another machine's lock cannot be checked from here: refused, naming the file to remove.
    other = tmp_path / "other"
    other.mkdir()
    (other / lock.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(
        lock.RunFolderLockedError,
        match=rf"in use by training pid 1 on elsewhere; if that process no longer "
        rf"runs, remove {re.escape(str(other / lock.LOCK_NAME))}$",
    ):
        lock.acquire(str(other))


def test_a_tensor_over_2gb_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch):
    import tensorflow as tf

    from asc_keras.training import loop

    def make_train_loop(*_, **__):
        def train_loop(*_, **__):
            raise tf.errors.InvalidArgumentError(
                None,
                None,
                "Message tensorflow.TensorProto exceeded maximum protobuf size of 2GB: 2227200000",
            )

        return train_loop

    monkeypatch.setattr(loop, "make_train_loop", make_train_loop)
    model_dir = tmp_path / "run"
    with pytest.raises(oom.OutOfMemoryError) as info:
        _train(tmp_path, model_dir, batch_size=100000)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("training needs a tensor over TensorFlow's 2 GB limit")
    assert "lower --batch_size (now 100000)" in message
    assert message.endswith(f"removed the unfinished {model_dir}")
    assert not model_dir.exists()
    monkeypatch.undo()
    assert _train(tmp_path, model_dir)["step"] == 4  # the folder is free for the smaller batch


def test_nan_loss_says_which_checkpoint_is_kept(tmp_path):
    model_dir = tmp_path / "run"
    with pytest.raises(
        callbacks.NonFiniteLossError,
        match=r"^training step 3: non-finite loss \(.*total=nan\); the "
        r"checkpoint at step 2 is kept: lower --learning_rate",
    ):
        _train(tmp_path, model_dir, nan_batch=2)
    assert (model_dir / "checkpoints" / "ckpt-2.index").exists()
    with pytest.raises(callbacks.NonFiniteLossError) as info:
        _train(tmp_path, tmp_path / "early", nan_batch=0)
    message = str(info.value)
    assert re.match(
        r"training step 1: non-finite loss \(.*\); no checkpoint was written yet: "
        "lower --learning_rate",
        message,
    )
    assert message.endswith(f"; removed the unfinished {tmp_path / 'early'}")
    assert "kept" not in message and not (tmp_path / "early").exists()


def _train_command(features, model_dir, steps):
    return [
        sys.executable,
        str(REPO / "train.py"),
        "--flagfile=configs/1b_logmel.flags",
        *feature_flags(features),
        f"--model_dir={model_dir}",
        "--width=0.125",
        "--batch_size=4",
        f"--train_steps={steps}",
        "--checkpoint_every=2",
        "--eval_every=0",
        "--log_every=2",
        "--steps_per_loop=1",
    ]


@pytest.mark.slow
def test_ctrl_c_says_where_and_rerun_resumes(tiny_1b_features, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    model_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _train_command(tiny_1b_features, model_dir, 100000),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    state_file = model_dir / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while not state_file.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    found = re.search(
        r"^interrupted at step (\d+); checkpoint at step (\d+); rerun to resume$", err, re.MULTILINE
    )
    assert found, err[-3000:]
    step, kept = int(found.group(1)), int(found.group(2))
    assert 2 <= kept <= step and kept % 2 == 0
    assert not list((model_dir / "checkpoints").glob("*_temp"))
    assert not (model_dir / lock.LOCK_NAME).exists()

    done = subprocess.run(
        _train_command(tiny_1b_features, model_dir, kept + 2),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {model_dir} at step {kept}" in done.stdout
    assert (model_dir / "model.keras").exists()
