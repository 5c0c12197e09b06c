"""Checks of a model configuration against its backbone's table, before anything is built."""

from __future__ import annotations

from asc_keras.config import FeatureConfig, ModelConfig
from asc_keras.models.backbones import BACKBONES


def check_inputs(inputs: tuple[str, ...], feature_cfg: FeatureConfig) -> None:
    """Refuse model inputs that are not among the features' representations (one line)."""
    missing = [n for n in inputs if n not in feature_cfg.representations]
    if missing:
        raise ValueError(
            f"--model_inputs {missing} not among --representations "
            f"{list(feature_cfg.representations)}"
        )


def frames_after_pooling(backbone: str, num_frames: int) -> int:
    """Frames left of `num_frames` after the backbone's time pooling."""
    frames = num_frames
    for block in BACKBONES[backbone].blocks:
        if block.pool is not None:
            frames //= block.pool[0]
    return frames


def check_pooling(cfg: ModelConfig, feature_cfg: FeatureConfig) -> None:
    """Refuse a network whose time pooling leaves no frame of the clip (one ValueError line)."""
    if frames_after_pooling(cfg.backbone, cfg.num_frames) < 1:
        pools = "x".join(str(b.pool[0]) for b in BACKBONES[cfg.backbone].blocks if b.pool)
        raise ValueError(
            f"--backbone={cfg.backbone}: its time pooling ({pools}) leaves no frame of "
            f"{cfg.num_frames} ({feature_cfg.clip_seconds:g} s at {feature_cfg.sample_rate} Hz, "
            f"hop {feature_cfg.hop_length}); use longer clips or a smaller --hop_length"
        )
