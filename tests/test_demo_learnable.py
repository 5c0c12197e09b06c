"""The demo's synthetic 1B data is learnable: the paper's 1B EF + SPSMT model beats chance widely.

A short run of the real full-width model (2-second clips, 120 steps of batch 16) on a freshly
generated set, scored with the DCASE macro accuracy on its evaluate split (chance is 1/3).
"""

import pytest

from asc_keras.config import DataConfig, FeatureConfig, ModelConfig, TrainConfig
from asc_keras.data import synthetic
from asc_keras.training.trainer import run


@pytest.mark.slow
def test_1b_ef_spsmt_beats_chance_on_synthetic_data(tmp_path):
    data_dir = str(tmp_path / "data")
    synthetic.generate(
        data_dir, task="1b", clips_per_class=24, clips_per_location=3, clip_seconds=2.0, seed=3
    )
    reps = ("logmel", "cqt", "gamma")
    feature_cfg = FeatureConfig(clip_seconds=2.0, logmel_bins=64, representations=reps)
    data_cfg = DataConfig(
        data_dir=data_dir, features_dir=str(tmp_path / "features"), task="1b", num_workers=1
    )
    model_cfg = ModelConfig(
        backbone="1b",
        inputs=reps,
        input_bins={r: 64 for r in reps},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        fusion="ef",
        strategies=("spsmt",),
    )
    train_cfg = TrainConfig(
        model_dir=str(tmp_path / "run"),
        train_steps=120,
        batch_size=16,
        eval_every=0,
        checkpoint_every=120,
        seed=0,
        log_every=1000,
    )
    result = run(feature_cfg, data_cfg, model_cfg, train_cfg, progress=False, log=lambda *_: None)
    accuracy = result["metrics"]["all"]["accuracy"]
    assert result["step"] == 120
    assert accuracy >= 0.6, f"macro accuracy {accuracy:.3f} after 120 steps (chance 0.333)"
