"""evaluate.py with per-device models (DCASE 2025): the general model alone and the per-device
combination, scored on the same split.

`run(eval_cfg, data_cfg) -> dict` reads the general run (`eval_cfg.model_dirs`, one training
run) and the models of `eval_cfg.device_models` (`asc_keras.inference.device_models`: one
`<device>/` folder each), predicts the split once for all of them (`evaluator.predict_many`),
gives each clip its device's model when there is one and the general model otherwise (the
records' `device` field), and writes into the output folder (default
`<model_dir>/eval_<split>_per_device`):

- `general/` and `per_device/`: each a full report (`metrics.json`, `report.txt`,
  `predictions.tsv`, figures) as `evaluate.py` writes for one model;
- `comparison.json` (accuracy and log loss of both, and the change of the combination);
- `devices.json`: per device, the model that classified its clips, the clip count and both
  accuracies (micro, as the reports' per-device rows).

The printed table has one row per device of the split. A submission file (`--submission`)
holds the per-device combination.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from asc_keras import atomic
from asc_keras.config import DataConfig, EvalConfig
from asc_keras.evaluation import evaluator
from asc_keras.evaluation import report as report_lib
from asc_keras.evaluation import submission as submission_lib
from asc_keras.inference import device_models
from asc_keras.inference import predictors as predictors_lib
from asc_keras.runs import read_run

COMBINED = "per_device"
DEVICES_NAME = "devices.json"


def device_rows(general: dict | None, combined: dict | None, used, devices) -> dict:
    """`{device: {'model', 'num_examples', 'general_accuracy', 'per_device_accuracy'}}` from the
    `metrics.compute_metrics` outputs of both systems ('all' subsets)."""
    rows = {}
    for device in dict.fromkeys(str(d) for d in devices):
        mask = [str(d) == device for d in devices]
        models = {str(u) for u, m in zip(used, mask, strict=True) if m}
        rows[device] = {
            "model": ",".join(sorted(models)),
            "num_examples": int(sum(mask)),
        }
        for key, metrics in (("general_accuracy", general), ("per_device_accuracy", combined)):
            entry = (metrics or {}).get("all") or {}
            rows[device][key] = (entry.get("device_wise") or {}).get(device, {}).get("accuracy")
    return rows


def format_devices(rows: dict) -> str:
    """One line per device: clips, the model used, both accuracies."""
    lines = [f"{'device':8s} {'clips':>6s}  {'model':10s} {'general %':>10s} {'per-device %':>13s}"]
    for device, r in rows.items():
        g, c = r["general_accuracy"], r["per_device_accuracy"]
        lines.append(
            f"{device:8s} {r['num_examples']:6d}  {r['model']:10s} "
            f"{'-' if g is None else f'{100 * g:.2f}':>10s} "
            f"{'-' if c is None else f'{100 * c:.2f}':>13s}"
        )
    return "\n".join(lines)


def run(
    cfg: EvalConfig,
    data_cfg: DataConfig,
    *,
    progress: bool = True,
    print_fn: Callable[[str], None] | None = print,
) -> dict:
    """Score the general run and the per-device combination (see the module docstring).

    Returns:
      `{'out_dir', 'features', 'systems': {'general' | 'per_device': {'metrics', 'probs',
      'out_dir'}}, 'used': model per clip [N], 'meta', 'devices': device_rows(...),
      'comparison'}`.
    """
    from asc_keras.data import precompute
    from asc_keras.data.manifest import load_manifest

    say = print_fn or (lambda *_: None)
    if len(cfg.model_dirs) != 1 or cfg.tflite or cfg.saved_model:
        raise ValueError(
            "--device_models takes the general model as one --model_dir (a training run), "
            "without --tflite/--saved_model"
        )
    info = read_run(cfg.model_dirs[0])
    task, classes = info.task, info.classes
    if data_cfg.task != task:
        data_cfg = dataclasses.replace(data_cfg, task=task, classes=tuple(classes))
    models = device_models.load_predictors(
        cfg.device_models, feature_config=info.feature_config.to_dict(), classes=classes
    )
    general = predictors_lib.KerasPredictor.from_file(info.path, name=device_models.GENERAL)
    members = [general, *(p for p, _ in models.values())]
    norms = [info.normalization, *(n for _, n in models.values())]
    needed = tuple(dict.fromkeys(n for p in members for n in p.input_names))
    feature_cfg = dataclasses.replace(
        info.feature_config,
        representations=tuple(dict.fromkeys((*info.feature_config.representations, *needed))),
    )
    folder = precompute.ensure_features(
        feature_cfg, data_cfg, splits=(cfg.split,), progress=progress, log=say
    )
    manifest = load_manifest(folder)
    manifest.check_compatible(feature_cfg, task, representations=needed)
    probs_list, meta = evaluator.predict_many(
        members, manifest, split=cfg.split, normalizations=norms, batch_size=cfg.batch_size
    )
    per_device = dict(zip(models, probs_list[1:], strict=True))
    combined, used = device_models.combine(probs_list[0], per_device, meta["device"])
    out_dir = cfg.out_dir or os.path.join(cfg.model_dirs[0], f"eval_{cfg.split}_per_device")
    results = {}
    for name, probs in ((device_models.GENERAL, probs_list[0]), (COMBINED, combined)):
        metrics = evaluator.score(probs, meta, classes, task=task)
        sys_dir = os.path.join(out_dir, name)
        extra = {
            "split": cfg.split,
            "features": folder,
            "model_dirs": list(cfg.model_dirs),
            "device_models": {
                d: os.path.abspath(p) for d, p in device_models.find(cfg.device_models).items()
            },
            "system": name,
        }
        if metrics is not None:
            title = f"{name} on {cfg.split} ({len(meta['label'])} clips)"
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
        else:
            os.makedirs(sys_dir, exist_ok=True)
            report_lib.write_predictions(
                os.path.join(sys_dir, "predictions.tsv"), probs, meta, classes
            )
        results[name] = {"metrics": metrics, "probs": probs, "meta": meta, "out_dir": sys_dir}
    rows = device_rows(
        results[device_models.GENERAL]["metrics"],
        results[COMBINED]["metrics"],
        used,
        meta["device"],
    )
    atomic.write_json(os.path.join(out_dir, DEVICES_NAME), rows)
    comparison = evaluator.compare(results)
    if comparison:
        atomic.write_json(os.path.join(out_dir, evaluator.COMPARISON_NAME), comparison)
        say(format_devices(rows))
        say(evaluator.format_comparison(comparison))
    if cfg.submission:
        path = submission_lib.write_submission(cfg.submission, meta["filename"], combined, classes)
        say(f"submission (per-device models): {path}")
    say(f"wrote general/, {COMBINED}/, {DEVICES_NAME} and {evaluator.COMPARISON_NAME} to {out_dir}")
    return {
        "out_dir": out_dir,
        "features": folder,
        "systems": results,
        "used": used,
        "meta": meta,
        "devices": rows,
        "comparison": comparison,
    }
