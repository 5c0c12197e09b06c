"""Out of memory in training, evaluation and export: one line, the flag to lower, no half run.

A real out-of-memory error is slow and unsafe on a shared CPU machine, so the exceptions
TensorFlow raises (`ResourceExhaustedError` with its usual message) and Python's `MemoryError`
are injected where the work happens.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from export_helpers import make_model_dir, tiny_model_config

from asc_keras import oom
from asc_keras.config import EvalConfig, ExportConfig, ModelConfig, TrainConfig

TF_OOM_MESSAGE = (
    "OOM when allocating tensor with shape[100000,87,40,64] and type float on "
    "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc"
)


def _tf_oom():
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, TF_OOM_MESSAGE)


def test_reported_names_device_and_flag(tmp_path):
    with pytest.raises(oom.OutOfMemoryError) as info:
        with oom.reported("training", "--batch_size (now 100000)"):
            try:
                raise _tf_oom()
            except Exception as e:  # wrapped, as Keras sometimes does
                raise RuntimeError("step failed") from e
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("training ran out of GPU:0 memory (OOM when allocating")
    assert message.endswith("lower --batch_size (now 100000)")
    with pytest.raises(oom.OutOfMemoryError, match=r"out of host memory \(RAM\)"):
        with oom.reported("evaluation", "--batch_size"):
            raise MemoryError()
    with pytest.raises(KeyError):  # anything else passes unchanged
        with oom.reported("evaluation", "--batch_size"):
            raise KeyError("x")


def _train(tmp_path, model_dir, monkeypatch):
    import tensorflow as tf

    from asc_keras.config import DataConfig, FeatureConfig
    from asc_keras.training import trainer

    feature_cfg = FeatureConfig(clip_seconds=0.25, representations=("logmel",))
    model_cfg = ModelConfig(
        backbone="1b",
        inputs=("logmel",),
        input_bins={"logmel": 40},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=0.125,
    )
    train_cfg = TrainConfig(
        model_dir=str(model_dir),
        train_steps=2,
        batch_size=100000,
        eval_every=2,
        checkpoint_every=2,
        eval_batch_size=16,
    )
    x = np.zeros((2, 4, feature_cfg.num_frames, 40), np.float32)
    labels = np.tile(np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], (2, 1, 1))
    train = tf.data.Dataset.from_tensor_slices(({"logmel": x}, labels)).repeat()

    def out_of_memory(*_, **__):
        raise _tf_oom()

    monkeypatch.setattr(trainer, "_train", out_of_memory)
    data_cfg = DataConfig(data_dir=str(tmp_path), task="1b")
    with pytest.raises(oom.OutOfMemoryError, match=r"--batch_size \(now 100000\)") as info:
        trainer.run(
            feature_cfg,
            data_cfg,
            model_cfg,
            train_cfg,
            datasets={"train": train},
            log=lambda *_: None,
        )
    return str(info.value)


def test_training_oom_removes_only_a_new_run_folder(tmp_path, monkeypatch):
    new = tmp_path / "new_run"
    message = _train(tmp_path, new, monkeypatch)
    assert not new.exists() and "removed the unfinished" in message
    # A folder that was there before (e.g. a run being resumed) is left as it was.
    old = tmp_path / "old_run"
    old.mkdir()
    (old / "notes.txt").write_text("mine")
    message = _train(tmp_path, old, monkeypatch)
    assert (old / "notes.txt").read_text() == "mine" and "removed" not in message
    # A new folder that already holds a checkpoint is kept.
    state = oom.RunFolder(path=str(tmp_path / "kept"), created=True)
    os.makedirs(os.path.join(state.path, "checkpoints"))
    open(os.path.join(state.path, "checkpoints", "ckpt-2.index"), "w").close()
    assert not state.remove_if_unfinished() and os.path.isdir(state.path)


def test_evaluation_and_export_oom(tmp_path, monkeypatch, tiny_1a_features):
    from asc_keras.evaluation import evaluator
    from asc_keras.export import calibration, exporter

    folder, feature_cfg, data_cfg = tiny_1a_features
    model_cfg = tiny_model_config(
        feature_cfg, task="1a", backbone="1a", inputs=("logmel",), width=1 / 16
    )
    run_dir = make_model_dir(
        tmp_path / "run", model_cfg, task="1a", feature_cfg=feature_cfg, features=folder
    )

    def no_memory(*_, **__):
        raise MemoryError()

    monkeypatch.setattr(evaluator, "predict_many", no_memory)
    with pytest.raises(
        oom.OutOfMemoryError,
        match=r"^evaluation ran out of host memory \(RAM\); lower --batch_size "
        r"\(now 7\)$",
    ):
        evaluator.run(
            EvalConfig(model_dirs=(run_dir,), batch_size=7, out_dir=str(tmp_path / "eval")),
            data_cfg,
            progress=False,
            print_fn=None,
        )

    def tf_oom(*_, **__):
        raise _tf_oom()

    monkeypatch.setattr(calibration, "sample_split", tf_oom)
    export_dir = tmp_path / "export"
    with pytest.raises(oom.OutOfMemoryError, match=r"--calibration_examples \(now 30\)"):
        exporter.run(
            ExportConfig(model_dir=run_dir, export_dir=str(export_dir), calibration_examples=30),
            features_dir=folder,
            log=lambda *_: None,
        )
    assert not [p for p in os.listdir(tmp_path) if p.startswith("export")]


def test_partial_files_that_cannot_be_removed_are_named_not_hidden(tmp_path, monkeypatch):
    """A clean-up after a full disk says which partial files it could not remove."""
    import shutil

    ckpt = tmp_path / "run" / "checkpoints"
    (ckpt / "ckpt-3_temp").mkdir(parents=True)
    (ckpt / "ckpt-3_temp" / "part").write_bytes(b"x")
    (ckpt / "ckpt-2.index").write_bytes(b"x")
    (ckpt / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n')

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    folder = oom.RunFolder(str(tmp_path / "run"), created=False)
    removal = folder.remove_partial()
    assert removal.removed == []
    assert removal.left == [f"{ckpt / 'ckpt-3_temp'} (Permission denied)"]
    assert (ckpt / "ckpt-3_temp").is_dir() and (ckpt / "ckpt-2.index").exists()
    error = oom._no_space_error(
        "training", OSError(28, "No space left on device"), where=folder.path, cleanup=folder
    )
    assert "could not remove" in str(error) and "ckpt-3_temp (Permission denied)" in str(error)
    assert "removed the partial files" not in str(error)
    assert "the checkpoint at step 2 is kept" in str(error)
    monkeypatch.undo()
    assert folder.remove_partial().removed == ["ckpt-3_temp"]
    assert not (ckpt / "ckpt-3_temp").exists()
