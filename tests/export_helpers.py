"""Helpers of the export tests: a training run's model_dir written by hand, in train.py's layout.

`make_model_dir(path, model_cfg, *, task, feature_cfg, features=None)` builds the model, spreads
its probabilities (an untrained model's are nearly uniform, which would let the int8 check pass
trivially) and writes `model.keras`, `config.json` (task, classes, feature_config, model_config,
data.features) and `normalization.json` (from the features folder's training split, or a stand-in
when there is none).
"""

from __future__ import annotations

import json
import os
import random

import numpy as np

from asc_keras import labels
from asc_keras.config import FeatureConfig, ModelConfig


def tiny_model_config(
    feature_cfg: FeatureConfig,
    *,
    task: str = "1b",
    backbone: str = "1b",
    inputs=("logmel",),
    width: float = 0.25,
    **kwargs,
) -> ModelConfig:
    return ModelConfig(
        backbone=backbone,
        inputs=tuple(inputs),
        input_bins={r: feature_cfg.bins(r) for r in inputs},
        num_frames=feature_cfg.num_frames,
        num_classes=len(labels.classes(task)),
        width=width,
        **kwargs,
    )


def spread_probabilities(model, factor: float = 10.0) -> None:
    """Scale the last Dense kernels so that the softmax outputs are far from uniform."""
    for layer in model.layers:
        if layer.name.endswith(("_fc2", "_fc2_dense")) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel.numpy() * factor)
        inner = getattr(layer, "layer", None)  # TimeDistributed
        if inner is not None and inner.name.endswith("_fc2_dense"):
            inner.kernel.assign(inner.kernel.numpy() * factor)


def make_model_dir(
    path,
    model_cfg: ModelConfig,
    *,
    task: str,
    feature_cfg: FeatureConfig,
    features: str | None = None,
    seed: int = 0,
    spread: float = 10.0,
) -> str:
    from asc_keras.data.manifest import load_manifest
    from asc_keras.strategies import build_model

    path = str(path)
    os.makedirs(path, exist_ok=True)
    state = random.getstate()
    random.seed(seed)
    try:
        model = build_model(model_cfg)
    finally:
        random.setstate(state)
    spread_probabilities(model, spread)
    model.save(os.path.join(path, "model.keras"))
    if features:
        stats = load_manifest(features).normalization
    else:
        stats = {
            r: {
                "mean": np.full(feature_cfg.bins(r), -40.0),
                "std": np.full(feature_cfg.bins(r), 12.0),
            }
            for r in model_cfg.inputs
        }
    with open(os.path.join(path, "normalization.json"), "w") as f:
        json.dump(
            {
                r: {k: np.asarray(v, np.float64).tolist() for k, v in stats[r].items()}
                for r in model_cfg.inputs
            },
            f,
        )
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(
            {
                "format_version": 1,
                "task": task,
                "classes": list(labels.classes(task)),
                "feature_config": feature_cfg.to_dict(),
                "model_config": model_cfg.to_dict(),
                "data": {"features": features or ""},
            },
            f,
        )
    return path


def export_tiny_spsmt(root, features, *, spread: float, parity_examples: int) -> tuple[str, str]:
    """`(model_dir, export_dir)` of a tiny 1B Log-Mel + SPSMT run exported by `export.exporter`."""
    from asc_keras.config import ExportConfig
    from asc_keras.export import exporter

    folder, feature_cfg, _ = features
    model_cfg = tiny_model_config(feature_cfg, inputs=("logmel",), strategies=("spsmt",))
    run_dir = make_model_dir(
        root / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder, spread=spread
    )
    cfg = ExportConfig(
        model_dir=run_dir,
        export_dir=str(root / "export"),
        calibration_examples=12,
        parity_examples=parity_examples,
    )
    report = exporter.run(cfg, log=lambda *_: None)
    assert report["passed"], report["failures"]
    return run_dir, cfg.export_dir
