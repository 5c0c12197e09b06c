"""Evaluate trained models on a split of a precomputed features folder.

Library API (no flags):

- `predict_many(predictors, manifest, *, split, normalizations, batch_size)`: one pass over
  the split for every fused member; `predict(predictor, ...) -> (probs [N, C], meta)`:
  one pass over the split in record order. A Keras predictor gets features normalized with
  `normalization` (a model_dir's normalization.json; None = the manifest's train statistics),
  an exported artifact (SavedModel, TFLite) gets raw features. `meta` holds numpy arrays
  `{'label': int64 [N] (-1 unlabeled), 'filename': str [N], 'device': str [N]}`.
- `score(probs, meta, classes, *, task) -> metrics | None`: `metrics.compute_metrics` on a
  labeled split, None on an unlabeled one.
- `evaluate_keras_model(model, manifest, *, split, normalization, batch_size)
  -> (metrics | None, probs, meta)`: what `train.py` calls at the end of training, followed by
  `report.write_report(out_dir, metrics, manifest.classes, probs=probs, meta=meta)`.
- `read_run(path) -> RunInfo` (from `asc_keras.runs`): task, classes,
  feature config and normalization of a run.
- `run(eval_cfg, data_cfg) -> dict`: what `evaluate.py` does. Loads the model_dirs, makes sure
  the split's features exist (`precompute.ensure_features` with the runs' feature settings),
  predicts with every model and fuses their probabilities (mean, paper eq. 3) into one system;
  or, with `eval_cfg.tflite` / `eval_cfg.saved_model`, evaluates each artifact as its own system
  and reports each one's accuracy and log-loss change against the first (e.g. int8 vs float).
  Writes `metrics.json`, `confusion.png`, `devices.png`, `predictions.tsv`, `report.txt` into
  the output folder (default `<first model_dir>/eval_<split>`, `eval_<split>_tflite` or
  `eval_<split>_saved_model`; one subfolder per system when there are several, plus
  `comparison.json`), prints the tables, and writes a DCASE submission file when asked.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asc_keras import atomic, oom
from asc_keras import labels as labels_lib
from asc_keras import tasks as tasks_lib
from asc_keras.config import DataConfig, EvalConfig, FeatureConfig
from asc_keras.data.manifest import Manifest
from asc_keras.evaluation import ensemble
from asc_keras.evaluation import metrics as metrics_lib
from asc_keras.evaluation import report as report_lib
from asc_keras.evaluation import submission as submission_lib
from asc_keras.inference import predictors as predictors_lib
from asc_keras.inference.loader import saved_model_folder
from asc_keras.runs import RunInfo, read_run

COMPARISON_NAME = "comparison.json"


def shared_feature_config(runs: Sequence[RunInfo]) -> FeatureConfig:
    """The feature settings that serve every run; they may differ only in representations."""
    first = runs[0]
    for run in runs[1:]:
        if run.task != first.task or run.classes != first.classes:
            raise ValueError(
                f"{run.path} is a {run.task} run with classes {run.classes}; "
                f"{first.path} is {first.task} with {first.classes}"
            )
        a, b = first.feature_config.to_dict(), run.feature_config.to_dict()
        diff = [
            f"{k} {a[k]} -> {b[k]}" for k in sorted(a) if k != "representations" and a[k] != b[k]
        ]
        if diff:
            raise ValueError(
                f"fused runs must share feature settings: {first.path} -> "
                f"{run.path}: {', '.join(diff)}"
            )
    reps = {r for run in runs for r in run.feature_config.representations}
    ordered = tuple(r for r in first.feature_config.representations if r in reps)
    ordered += tuple(sorted(reps - set(ordered)))
    return dataclasses.replace(first.feature_config, representations=ordered)


def identity_normalization(shapes: Mapping[str, Sequence[int]]) -> dict:
    """Zero mean, unit std for every representation: raw features through the pipeline."""
    return {
        rep: {"mean": np.zeros(shape[-1], np.float32), "std": np.ones(shape[-1], np.float32)}
        for rep, shape in shapes.items()
    }


def _strings(x) -> np.ndarray:
    return np.asarray(
        [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in x], dtype=object
    )


def predict_many(
    predictors: Sequence,
    manifest: Manifest,
    *,
    split: str,
    normalizations: Sequence[Mapping | None],
    batch_size: int,
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Run several predictors over a split in one pass (fused runs read the features once).

    The union of the predictors' representations is read unnormalized; each predictor that takes
    normalized features gets `(x - mean) / std` with its own statistics, exactly as the input
    pipeline computes it (`pipeline.normalization_arrays`).

    Args:
      predictors: `predictors` objects (`input_names`, `raw_features`, call on a batch).
      manifest: the features folder.
      split: manifest split ('evaluate', 'test', ...).
      normalizations: per predictor, statistics for normalized-feature predictors (None: the
        manifest's); ignored for raw-feature predictors.
      batch_size: clips per batch.

    Returns:
      `([probs float32 [N, C] per predictor], {'label': int64 [N], 'filename': str [N],
      'device': str [N]})`.
    """
    from asc_keras.data.pipeline import (
        checked_iter,
        eval_dataset,
        make_parse,
        normalization_arrays,
    )

    reps = tuple(dict.fromkeys(r for p in predictors for r in p.input_names))
    stats = []
    for predictor, norm in zip(predictors, normalizations, strict=True):
        norm = manifest.normalization if norm is None else norm
        stats.append(
            None
            if predictor.raw_features
            else {r: normalization_arrays(norm, r) for r in predictor.input_names}
        )
    ds = eval_dataset(
        manifest,
        split,
        representations=reps,
        batch_size=batch_size,
        normalization=identity_normalization({r: manifest.shapes[r] for r in reps}),
    )
    probs = [[] for _ in predictors]
    labels, files, devices = [], [], []
    paths, parse = manifest.shard_paths(split), make_parse(manifest, reps)
    for features, meta in checked_iter(ds.as_numpy_iterator(), paths, parse):
        for out, predictor, st in zip(probs, predictors, stats, strict=True):
            inputs = {
                r: features[r] if st is None else (features[r] - st[r][0]) / st[r][1]
                for r in predictor.input_names
            }  # [B, T, F]
            out.append(predictor(inputs))  # [B, C]
        labels.append(meta["label"])
        files.append(_strings(meta["filename"]))
        devices.append(_strings(meta["device"]))
    if not labels:
        raise ValueError(f"{manifest.path}: split {split!r} is empty")
    meta = {
        "label": np.concatenate(labels).astype(np.int64),
        "filename": np.concatenate(files),
        "device": np.concatenate(devices),
    }
    return [np.concatenate(p).astype(np.float32) for p in probs], meta


def predict(
    predictor, manifest: Manifest, *, split: str, normalization: Mapping | None, batch_size: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`predict_many` for one predictor: `(probs float32 [N, C], meta)`."""
    (probs,), meta = predict_many(
        [predictor], manifest, split=split, normalizations=[normalization], batch_size=batch_size
    )
    return probs, meta


def score(probs: np.ndarray, meta: Mapping, classes: Sequence[str], *, task: str) -> dict | None:
    """`compute_metrics` for a labeled split; None when any clip is unlabeled (label -1)."""
    labels = np.asarray(meta["label"])
    if len(labels) == 0 or np.any(labels < 0):
        return None
    return metrics_lib.compute_metrics(
        labels,
        probs,
        meta["device"],
        classes,
        device_order=labels_lib.devices(task),
        device_groups=tasks_lib.get(task).device_groups,
    )


def evaluate_keras_model(
    model,
    manifest: Manifest,
    *,
    split: str = "evaluate",
    normalization: Mapping | None = None,
    batch_size: int = 64,
) -> tuple[dict | None, np.ndarray, dict]:
    """Score an in-memory Keras model (named inputs, `probs` output) on a split.

    Args:
      model: `keras.Model` taking normalized `[T, F]` features per representation.
      manifest: the features folder.
      split: manifest split.
      normalization: `{rep: {'mean', 'std'}}`; None = the manifest's train statistics.
      batch_size: clips per batch.

    Returns:
      `(metrics or None for an unlabeled split, probs float32 [N, C], meta)`.
    """
    predictor = predictors_lib.KerasPredictor(model)
    probs, meta = predict(
        predictor, manifest, split=split, normalization=normalization, batch_size=batch_size
    )
    return score(probs, meta, manifest.classes, task=manifest.task), probs, meta


def _summary(m: Mapping | None) -> dict | None:
    if m is None:
        return None
    return {
        k: {"accuracy": v["accuracy"], "log_loss": v["log_loss"]} if v else None
        for k, v in m.items()
    }


def _name(path: str) -> str:
    return os.path.basename(os.path.normpath(path))


def _systems(cfg: EvalConfig, runs: Sequence[RunInfo]) -> list[tuple[str, list, list]]:
    """`[(system name, [predictor, ...], [normalization, ...])]`; members of a system are fused."""
    if cfg.tflite or cfg.saved_model:
        if len(runs) != 1:
            raise ValueError("--tflite/--saved_model evaluate artifacts of exactly one model_dir")
        paths = list(cfg.tflite) or [saved_model_folder(cfg.saved_model)]
        make = predictors_lib.TFLitePredictor if cfg.tflite else predictors_lib.SavedModelPredictor
        systems = []
        for path in paths:
            name = os.path.splitext(_name(path))[0]
            systems.append((name, [make(path, name=name)], [None]))
        if len({s[0] for s in systems}) != len(systems):
            raise ValueError(f"artifact names must differ: {paths}")
        return systems
    members = [predictors_lib.KerasPredictor.from_file(r.path, name=_name(r.path)) for r in runs]
    name = members[0].name if len(members) == 1 else "fusion"
    return [(name, members, [r.normalization for r in runs])]


def _part_weights(runs: Sequence[RunInfo]) -> list[float]:
    """The paper's weights of fused runs that are the parts of one model (one-line error
    otherwise: then `--fusion_weights` must say how to weigh them)."""
    from asc_keras.config import ModelConfig
    from asc_keras.strategies.parts import fusion_weights_of_parts

    try:
        return fusion_weights_of_parts([ModelConfig.from_dict(r.model_config) for r in runs])
    except ValueError as e:
        raise ValueError(
            f"--model_dir {','.join(r.path for r in runs)}: {e} (--fusion_weights)"
        ) from None
    except TypeError as e:  # a run recorded by an incompatible version
        raise ValueError(
            f"cannot read the model configs of the fused runs ({e}); give --fusion_weights"
        ) from None


def default_out_dir(cfg: EvalConfig) -> str:
    """`<first model_dir>/eval_<split>`, or `eval_<split>_tflite` / `_saved_model` for exports."""
    suffix = "_tflite" if cfg.tflite else "_saved_model" if cfg.saved_model else ""
    return os.path.join(cfg.model_dirs[0], f"eval_{cfg.split}{suffix}")


def _submission_path(path: str, system: str, several: bool) -> str:
    if not several:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}_{system}{ext or '.csv'}"


def run(
    cfg: EvalConfig,
    data_cfg: DataConfig,
    *,
    progress: bool = True,
    print_fn: Callable[[str], None] | None = print,
) -> dict:
    """Evaluate model_dirs (fused) or one model_dir's exported artifacts on `cfg.split`.

    Args:
      cfg: what to evaluate and where to write.
      data_cfg: the dataset and features folder; its task is taken from the runs.
      progress: show the precompute progress bar.
      print_fn: where tables and summaries go (None: silent).

    Returns:
      `{'out_dir': str, 'features': str, 'systems': {name: {'metrics', 'probs', 'meta',
      'out_dir', 'members'}}, 'comparison': {...} | None}`.
    """
    from asc_keras.data import precompute
    from asc_keras.data.manifest import load_manifest

    say = print_fn or (lambda *_: None)
    runs = [read_run(d) for d in cfg.model_dirs]
    feature_cfg = shared_feature_config(runs)
    task, classes = runs[0].task, runs[0].classes
    if data_cfg.task != task:
        data_cfg = dataclasses.replace(data_cfg, task=task, classes=tuple(classes))
    systems = _systems(cfg, runs)
    needed = tuple(
        dict.fromkeys(n for _, members, _ in systems for p in members for n in p.input_names)
    )
    folder = precompute.ensure_features(
        feature_cfg, data_cfg, splits=(cfg.split,), progress=progress, log=say
    )
    manifest = load_manifest(folder)
    manifest.check_compatible(feature_cfg, task, representations=needed)
    if tuple(manifest.classes) != tuple(classes):
        raise ValueError(f"{folder}: classes {manifest.classes} differ from the runs' {classes}")

    kind = "tflite" if cfg.tflite else "saved_model" if cfg.saved_model else "keras"
    out_dir = cfg.out_dir or default_out_dir(cfg)
    several = len(systems) > 1
    results = {}
    for name, members, norms in systems:
        with oom.reported("evaluation", f"--batch_size (now {cfg.batch_size})"):
            probs_list, meta = predict_many(
                members, manifest, split=cfg.split, normalizations=norms, batch_size=cfg.batch_size
            )
        member_metrics = {}
        if len(members) > 1:
            member_metrics = {
                p.name: _summary(score(probs, meta, classes, task=task))
                for p, probs in zip(members, probs_list, strict=True)
            }
        weights = (cfg.fusion_weights or _part_weights(runs)) if len(probs_list) > 1 else None
        probs = (
            ensemble.fuse_probs(probs_list, weights=weights)
            if len(probs_list) > 1
            else probs_list[0]
        )
        metrics = score(probs, meta, classes, task=task)
        sys_dir = os.path.join(out_dir, name) if several else out_dir
        extra = {
            "split": cfg.split,
            "features": folder,
            "model_dirs": list(cfg.model_dirs),
            "system": name,
            "members": [p.name for p in members],
            "artifact_kind": kind,
        }
        if member_metrics:
            extra["member_metrics"] = member_metrics
            for member, summary in member_metrics.items():
                if summary and summary.get("all"):
                    say(f"member {member}: " + report_lib.summary_line(summary))
        title = f"{name} on {cfg.split} ({len(meta['label'])} clips)"
        if metrics is not None:
            report_lib.write_report(
                sys_dir,
                metrics,
                classes,
                probs=probs,
                meta=meta,
                extra=extra,
                title=title,
                print_fn=print_fn,
            )
            say(
                f"wrote metrics.json, report.txt, predictions.tsv, confusion.png and "
                f"devices.png to {sys_dir}"
            )
        else:
            os.makedirs(sys_dir, exist_ok=True)
            report_lib.write_predictions(
                os.path.join(sys_dir, "predictions.tsv"), probs, meta, classes
            )
            say(f"{title}: unlabeled split, no metrics; predictions in {sys_dir}")
        if cfg.submission:
            path = submission_lib.write_submission(
                _submission_path(cfg.submission, name, several), meta["filename"], probs, classes
            )
            say(f"submission: {path}")
        results[name] = {
            "metrics": metrics,
            "probs": probs,
            "meta": meta,
            "out_dir": sys_dir,
            "members": [p.name for p in members],
        }

    comparison = compare(results) if several else None
    if comparison:
        atomic.write_json(os.path.join(out_dir, COMPARISON_NAME), comparison)
        say(format_comparison(comparison))
    return {"out_dir": out_dir, "features": folder, "systems": results, "comparison": comparison}


def compare(results: Mapping[str, Mapping]) -> dict | None:
    """Accuracy and log loss of every system, and each one's change against the first.

    Returns None when the split is unlabeled.
    """
    names = list(results)
    summaries = {n: _summary(results[n]["metrics"]) for n in names}
    if any(s is None for s in summaries.values()):
        return None
    ref = names[0]
    delta = {}
    for n in names[1:]:
        delta[n] = {}
        for key in ("all", "device_a"):
            a, b = summaries[ref].get(key), summaries[n].get(key)
            if a and b:
                delta[n][key] = {
                    "accuracy": b["accuracy"] - a["accuracy"],
                    "log_loss": b["log_loss"] - a["log_loss"],
                }
    return {"reference": ref, "systems": summaries, "change_vs_reference": delta}


def format_comparison(comparison: Mapping) -> str:
    """One line per system plus its change against the reference (first) system."""
    lines = ["comparison (change against " + comparison["reference"] + "):"]
    for name, summary in comparison["systems"].items():
        lines.append(f"  {name}: {report_lib.summary_line(summary)}")
        for key, d in comparison["change_vs_reference"].get(name, {}).items():
            lines.append(
                f"    {key}: accuracy {100 * d['accuracy']:+.2f} points, "
                f"log loss {d['log_loss']:+.4f}"
            )
    return "\n".join(lines)
