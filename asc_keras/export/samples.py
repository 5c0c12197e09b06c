"""The data an export calibrates and checks on, all drawn from the run's own features.

- `find_features(run, ...)`: the run's precomputed features: `features_dir` when it holds a
  manifest, else `precompute.ensure_features` for `data_cfg.data_dir`, else the folder recorded
  in the run's config.json; None when there are none;
- `calibration_sample(cfg, run, manifest)`: the int8 calibration clips (training split, seeded,
  class-stratified: `calibration.sample_split`); None without `cfg.int8`;
- `parity_sample(cfg, run, manifest)`: the clips every artifact is checked on (the evaluate
  split when precomputed; synthetic features without a features folder);
- `parity_waves(manifest, filenames, ...)`: those clips' audio for waveform-in artifacts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from asc_keras.config import DataConfig, ExportConfig, FeatureConfig
from asc_keras.data.manifest import MANIFEST_NAME, Manifest, load_manifest
from asc_keras.export import calibration as calibration_lib
from asc_keras.export import serving
from asc_keras.export.errors import ExportError


def find_features(
    run: serving.TrainedRun,
    *,
    data_cfg: DataConfig | None,
    features_dir: str | None,
    log: Callable[[str], None] = print,
) -> Manifest | None:
    """The run's precomputed features (see the module docstring), or None when there are none.

    Raises:
        ManifestError: The features found do not match the run.
    """
    folder = None
    if features_dir and os.path.exists(os.path.join(features_dir, MANIFEST_NAME)):
        folder = features_dir
    elif data_cfg is not None and data_cfg.data_dir:
        from asc_keras.data import precompute

        data_cfg = dataclasses.replace(data_cfg, task=run.task, classes=tuple(run.classes))
        folder = precompute.ensure_features(
            run.feature_config, data_cfg, splits=("train",), progress=False, log=log
        )
    elif run.features and os.path.exists(os.path.join(run.features, MANIFEST_NAME)):
        folder = run.features
    if folder is None:
        return None
    manifest = load_manifest(folder)
    manifest.check_compatible(run.feature_config, run.task, representations=run.input_names)
    return manifest


def calibration_sample(
    cfg: ExportConfig, run: serving.TrainedRun, manifest: Manifest | None
) -> calibration_lib.Examples | None:
    """The int8 calibration clips of the training split; None when `cfg.int8` is off.

    Raises:
        ExportError: int8 asked for, but no features to calibrate on.
    """
    if not cfg.int8:
        return None
    if manifest is None:
        raise ExportError(
            f"{cfg.model_dir}: int8 calibration needs the training split's features; pass "
            "--data_dir (or --features_dir), or --noexport_int8"
        )
    return calibration_lib.sample_split(
        manifest,
        "train",
        cfg.calibration_examples,
        seed=cfg.calibration_seed,
        representations=run.input_names,
    )


def parity_sample(
    cfg: ExportConfig, run: serving.TrainedRun, manifest: Manifest | None
) -> calibration_lib.Examples:
    """The parity clips: the evaluate split (else train) of `manifest`, or synthetic features
    drawn around the run's normalization when there is no features folder."""
    reps = run.input_names
    if manifest is not None:
        split = "evaluate" if "evaluate" in manifest.splits else "train"
        return calibration_lib.sample_split(
            manifest,
            split,
            cfg.parity_examples,
            seed=cfg.calibration_seed + 1,
            representations=reps,
        )
    return calibration_lib.synthetic_examples(
        {r: run.feature_config.shapes[r] for r in reps},
        run.normalization,
        cfg.parity_examples,
        seed=cfg.calibration_seed + 1,
    )


def parity_waves(
    manifest: Manifest | None,
    filenames: Sequence[str],
    feature_cfg: FeatureConfig,
    *,
    n: int,
    seed: int,
) -> tuple[np.ndarray, str]:
    """`(waves float32 [n', num_samples], source)`: the parity clips' audio when the dataset is
    at hand (`load_clip`, as `predict.py` reads audio), else seeded synthetic scenes."""
    from asc_keras import audio

    data_dir = (manifest.dataset or {}).get("data_dir", "") if manifest is not None else ""
    paths = [os.path.join(data_dir, f) for f in filenames[:n]] if data_dir else []
    if paths and all(os.path.exists(p) for p in paths):
        return np.stack([audio.load_clip(p, feature_cfg) for p in paths]), data_dir
    rng = np.random.default_rng(seed)
    t = np.arange(feature_cfg.num_samples) / feature_cfg.sample_rate
    waves = []
    for _ in range(n):
        f0, f1 = rng.uniform(100, 4000, size=2)
        wave = (
            0.05 * rng.standard_normal(len(t))
            + 0.2 * np.sin(2 * np.pi * f0 * t)
            + 0.1 * np.sin(2 * np.pi * (f1 * t + 300 * t**2))
        )
        waves.append(wave * rng.uniform(0.1, 1.0))
    return np.asarray(waves, np.float32), "synthetic"
