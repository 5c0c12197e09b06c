"""--precision: mixed runs train, resume exactly, keep float32 losses, refuse another precision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asc_keras.config import ModelConfig, TrainConfig
from asc_keras.training import checkpoints, trainer


def _quiet(*_):
    pass


def _run(features, model_dir, **kw):
    _, feature_cfg, data_cfg = features
    model_cfg = ModelConfig(
        backbone="1b",
        inputs=("logmel",),
        input_bins={"logmel": feature_cfg.bins("logmel")},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=0.04,
    )
    train_cfg = TrainConfig(
        **{
            **dict(
                model_dir=str(model_dir),
                batch_size=4,
                eval_every=0,
                checkpoint_every=2,
                log_every=2,
                deterministic=True,
            ),
            **kw,
        }
    )
    return trainer.run(feature_cfg, data_cfg, model_cfg, train_cfg, progress=False, log=_quiet)


def _weights(model_dir):
    from asc_keras.models import load_model

    return load_model(str(model_dir / "model.keras"), compile=False).get_weights()


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_resumes_exactly(precision, tiny_1b_features, tmp_path):
    """Stopped at step 2 and resumed == 4 steps straight (the float16 loss scale included)."""
    import keras

    before = keras.config.dtype_policy().name
    _run(tiny_1b_features, tmp_path / "resumed", train_steps=2, precision=precision)
    out = _run(tiny_1b_features, tmp_path / "resumed", train_steps=4, precision=precision)
    assert out["resumed_from"] == 2 and np.isfinite(out["train_loss"]["total"])
    assert keras.config.dtype_policy().name == before  # restored
    _run(tiny_1b_features, tmp_path / "straight", train_steps=4, precision=precision)
    resumed, straight = _weights(tmp_path / "resumed"), _weights(tmp_path / "straight")
    assert all(w.dtype == np.float32 for w in resumed)  # float32 weights under mixed policies
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(a, b)
    record = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert record["train_config"]["precision"] == precision
    with pytest.raises(
        checkpoints.IncompatibleModelDirError,
        match=rf"train_config\.precision: '{precision}' -> 'float32'",
    ) as e:
        _run(tiny_1b_features, tmp_path / "resumed", train_steps=6)
    assert "\n" not in str(e.value)


def test_runs_recorded_with_mixed_precision_resume_under_its_precision(tmp_path):
    old = {"task": "1b", "train_config": {"seed": 0, "mixed_precision": True}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    new = {"task": "1b", "train_config": {"seed": 0, "precision": "mixed_float16"}}
    assert checkpoints.check_resumable(str(tmp_path), new)
    with pytest.raises(checkpoints.IncompatibleModelDirError, match="precision"):
        checkpoints.check_resumable(
            str(tmp_path), {"task": "1b", "train_config": {"seed": 0, "precision": "float32"}}
        )
