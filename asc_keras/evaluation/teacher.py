"""Teacher logits for knowledge distillation: what `teach.py` does.

`run(cfg, data_cfg)` writes one teacher file (`data.teacher.write_teacher`: NPZ keyed by clip
name) with the logits of every clip of the task's training split, from either

- trained runs (`cfg.model_dirs`): one run's `model.keras`, or several runs fused as
  `evaluate.py` fuses them (`evaluator.predict_many`, `ensemble.fuse_probs`): runs that are the
  parts of one model (a paper row's runs of the reproduction) get that model's weights
  (`strategies.parts.fusion_weights_of_parts`, the plan's weights), `cfg.fusion_weights` gives
  one weight per run, and other runs (an ensemble of models or seeds) are averaged with equal
  weights. The features of the training split come from the features folder (computed first
  when missing, with the runs' feature settings). The models output probabilities, so the
  teacher logits are `log(clip(fused probabilities, keras epsilon, 1))`
  (`data.teacher.logits_from_probs`); or
- a file made elsewhere (`cfg.import_path`: CSV or NPZ of clip name -> logits), checked against
  the task's classes and training clips and written in the same form.

The file records how the teacher was made (`config`: runs, weights, fusion) and is byte-identical
when the same command runs again.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from asc_keras import oom
from asc_keras.config import DataConfig
from asc_keras.config.teach import TeachConfig
from asc_keras.data import teacher as teacher_lib
from asc_keras.evaluation import ensemble, evaluator
from asc_keras.inference import predictors as predictors_lib
from asc_keras.runs import read_run

SPLIT = "train"


def fusion_of(cfg: TeachConfig, runs) -> tuple[list[float], str]:
    """`(weights, how)`: one run 'single'; `cfg.fusion_weights` 'weights'; the parts of one
    model 'parts' (that model's weights); other runs 'mean' (equal weights)."""
    from asc_keras.config import ModelConfig
    from asc_keras.strategies.parts import fusion_weights_of_parts

    if len(runs) == 1:
        return [1.0], "single"
    if cfg.fusion_weights:
        total = float(sum(cfg.fusion_weights))
        return [float(w) / total for w in cfg.fusion_weights], "weights"
    try:
        return fusion_weights_of_parts(
            [ModelConfig.from_dict(r.model_config) for r in runs]
        ), "parts"
    except (ValueError, TypeError):
        return [1.0 / len(runs)] * len(runs), "mean"


def _from_runs(cfg: TeachConfig, data_cfg: DataConfig, *, progress: bool, log) -> tuple:
    import keras

    from asc_keras.data import precompute
    from asc_keras.data.manifest import load_manifest

    runs = [read_run(d) for d in cfg.model_dirs]
    feature_cfg = evaluator.shared_feature_config(runs)
    task, classes = runs[0].task, runs[0].classes
    if data_cfg.task != task:
        data_cfg = dataclasses.replace(data_cfg, task=task, classes=tuple(classes))
    members = [
        predictors_lib.KerasPredictor.from_file(r.path, name=os.path.basename(r.path)) for r in runs
    ]
    needed = tuple(dict.fromkeys(n for p in members for n in p.input_names))
    folder = precompute.ensure_features(
        feature_cfg, data_cfg, splits=(SPLIT,), progress=progress, log=log
    )
    manifest = load_manifest(folder)
    manifest.check_compatible(feature_cfg, task, representations=needed)
    if tuple(manifest.classes) != tuple(classes):
        raise ValueError(f"{folder}: classes {manifest.classes} differ from the runs' {classes}")
    with oom.reported("teacher inference", f"--batch_size (now {cfg.batch_size})"):
        probs_list, meta = evaluator.predict_many(
            members,
            manifest,
            split=SPLIT,
            normalizations=[r.normalization for r in runs],
            batch_size=cfg.batch_size,
        )
    weights, how = fusion_of(cfg, runs)
    probs = ensemble.fuse_probs(probs_list, weights=weights) if len(runs) > 1 else probs_list[0]
    epsilon = float(keras.config.epsilon())
    logits = teacher_lib.logits_from_probs(probs, epsilon=epsilon)  # [N, C]
    config = {
        "source": "runs",
        "runs": [os.path.abspath(d) for d in cfg.model_dirs],
        "weights": weights,
        "fusion": how,
        "logits": f"log(clip(weighted mean of the runs' probabilities, {epsilon:g}, 1))",
        "split": SPLIT,
        "task": task,
    }
    return list(meta["filename"]), logits, tuple(classes), config


def _imported(cfg: TeachConfig, data_cfg: DataConfig) -> tuple:
    from asc_keras.data import dcase

    classes = data_cfg.task_spec.classes
    teacher = teacher_lib.read_teacher(cfg.import_path, classes)
    tables = dcase.read_dataset(
        data_cfg.data_dir, data_cfg.task_spec, splits=(SPLIT,), train_csv=data_cfg.train_csv
    )
    names = [str(n) for n in tables[SPLIT]["filename"]]
    logits = teacher.logits[teacher.rows(names)]  # [N, C], one line naming a missing clip
    config = {
        "source": "file",
        "file": os.path.abspath(cfg.import_path),
        "fusion": "imported",
        "split": SPLIT,
        "task": data_cfg.task,
        "imported_config": dict(teacher.config),
    }
    return names, logits, tuple(classes), config


def run(
    cfg: TeachConfig,
    data_cfg: DataConfig,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> str:
    """Write the teacher file `cfg.out` (module doc); returns its path."""
    if cfg.import_path:
        names, logits, classes, config = _imported(cfg, data_cfg)
    else:
        names, logits, classes, config = _from_runs(cfg, data_cfg, progress=progress, log=log)
    folder = os.path.dirname(os.path.abspath(cfg.out))
    os.makedirs(folder, exist_ok=True)
    teacher_lib.write_teacher(cfg.out, names, np.asarray(logits, np.float32), classes, config)
    log(f"teacher logits of {len(names)} training clips ({config['fusion']}) -> {cfg.out}")
    return cfg.out
