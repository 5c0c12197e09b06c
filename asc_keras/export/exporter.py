"""Export a training run: SavedModel, TFLite float32 and int8, audio-in models; check; report.

`run(export_cfg, *, data_cfg=None, features_dir=None)` is what `export.py` does:

1. Refuse an existing, non-empty `export_dir` unless `overwrite` (`staging.check_destination`).
2. Load the run (`serving.load_run`); measure the model (`asc_keras.models.rules`); a model
   over its task's complexity rule (DCASE 2020 1B: 500 KB; TAU 2022: 128 kB int8, 30 M MACs)
   stops here with `SizeRuleError` (nothing is written).
3. Find the run's precomputed features (`samples`) (`--features_dir` holding a manifest, else
   `precompute.ensure_features` for `--data_dir`, else the folder recorded in config.json) and
   draw the int8 calibration sample (training split, seeded, class-stratified:
   `calibration.sample_split`) and the parity sample (evaluate split when precomputed).
4. Write into a staging folder `<export_dir>.partial-<pid>` (`artifacts.write_artifacts`):

       saved_model/          serving_default: {rep: float32 [batch, T, F]} RAW features -> outputs
       model.tflite          the same signature, float32
       model_int8.tflite     the same signature: raw float32 features in, normalized in float,
                             then the int8 network and int8 outputs (`tflite.convert_int8`)
       model_float16.tflite  (`weights='float16'`) float16 weights, float32 in and out
       audio_saved_model/    (models whose one input is logmel) waveform [batch, num_samples]
       model_audio.tflite    the same, float32 (when it converts)
       export_config.json    task, classes, feature/model settings, normalization, artifacts
       export_report.json    sizes and every check
       micro/                (`--micro`) int8-in batch-1 model.tflite checked in TensorFlow
                             Lite for Microcontrollers, model_data.cc/.h, features.json/.h
                             (`micro`, `firmware`); an operator TFLM lacks fails the export

   Count every features-in TFLite file from the file itself (per-op MACs, parameter bytes,
   peak arena: `file_rule.judge_files`); an int8 or float16 file (a float32 one too under the
   1B rule) over the task's rule stops here with `SizeRuleError` naming the file.
5. Check every artifact against the trained Keras model fed the pipeline's normalized features,
   output by output (`checks.check_artifacts`); TFLite files in both LiteRT and TensorFlow's
   interpreter, and the two runtimes against each other. Audio-in models are checked against
   the Keras model on `compute_features` (librosa) features of the same waveforms.
6. Print the report. All passed: the staging folder becomes `export_dir` (an old one is
   replaced only with `overwrite`). Any check failed: it becomes `<export_dir>.rejected` and
   `ParityError` is raised, so `export_dir` only ever holds verified exports (`staging`).

A QAT run (`train.py --qat_from`, its `model.keras` fake-quantized: `asc_keras.quantize`) exports
its deploy form (folded, on-grid weights) as the SavedModel and float file; the int8 file takes
the QAT model's activation ranges and is checked against the QAT model; the report adds float,
PTQ int8 and QAT int8 accuracy (`quantize.exporting.comparison`), also written to `report.txt`.

The errors are in `asc_keras.export.errors` (`ExportError`, the one `export.py` catches, is also
importable from here).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asc_keras import atomic, oom
from asc_keras.config import DataConfig, ExportConfig
from asc_keras.data.manifest import Manifest
from asc_keras.export import (
    artifacts,
    checks,
    micro,
    samples,
    savedmodel,
    serving,
    staging,
    verify,
)
from asc_keras.export import calibration as calibration_lib
from asc_keras.export import report as report_lib
from asc_keras.export.errors import ExportError, ParityError, SizeRuleError
from asc_keras.export.file_rule import judge_files
from asc_keras.inference.loader import EXPORT_CONFIG_NAME
from asc_keras.models.rules import check_size_rule, size_summary, task_limits
from asc_keras.quantize import exporting as qat_exporting

FORMAT_VERSION = 1
QAT_REPORT_TEXT = "report.txt"  # a QAT run's export: the printed report, accuracy comparison in

__all__ = ["EXPORT_CONFIG_NAME", "ExportError", "FORMAT_VERSION", "export_config_record", "run"]


def export_config_record(
    run: serving.TrainedRun, entries: Sequence[Mapping], output_shapes: Mapping[str, Sequence[int]]
) -> dict:
    """The content of export_config.json: everything `predict.py` needs next to an artifact."""
    model = run.model
    return {
        "format_version": FORMAT_VERSION,
        "task": run.task,
        "classes": list(run.classes),
        "feature_config": run.feature_config.to_dict(),
        "model_config": dict(run.model_config),
        "model_name": model.name,
        "source_model_dir": os.path.abspath(run.path),
        "signature": savedmodel.SIGNATURE,
        "inputs": {t.name: list(t.shape[1:]) for t in model.inputs},
        "outputs": {n: list(output_shapes[n]) for n in serving.output_names(model)},
        "normalization": {
            r: {
                k: v.astype(np.float64).tolist()
                for k, v in zip(
                    ("mean", "std"), serving.normalization_arrays(run.normalization, r), strict=True
                )
            }
            for r in run.input_names
        },
        "artifacts": {
            e["name"]: {
                k: e[k] for k in ("input", "dtype", "input_dtype", "output_dtype") if k in e
            }
            for e in entries
            if e["status"] == "ok"
        },
    }


def _write_export_config(
    folder: str, trained: serving.TrainedRun, entries: Sequence[Mapping], examples
) -> None:
    """export_config.json, with the output shapes the Keras model gives one parity clip."""
    one = checks.normalized({r: v[:1] for r, v in examples.features.items()}, trained.normalization)
    shapes = {k: v.shape[1:] for k, v in verify.keras_outputs(trained.model, one).items()}
    atomic.write_json(
        os.path.join(folder, EXPORT_CONFIG_NAME), export_config_record(trained, entries, shapes)
    )


def _audio_waves(
    cfg: ExportConfig,
    trained: serving.TrainedRun,
    manifest: Manifest | None,
    entries: Sequence[Mapping],
    examples: calibration_lib.Examples,
) -> tuple[np.ndarray | None, str | None]:
    """The parity waveforms and their source when a waveform-in artifact was written."""
    if not any(e["input"] == "waveform" and e["status"] == "ok" for e in entries):
        return None, None
    return samples.parity_waves(
        manifest,
        examples.filenames,
        trained.feature_config,
        n=min(len(examples), 4),
        seed=cfg.calibration_seed + 2,
    )


def _report_record(
    cfg: ExportConfig,
    trained: serving.TrainedRun,
    *,
    export_dir: str,
    size: dict,
    entries: list[dict],
    calib: calibration_lib.Examples | None,
    examples: calibration_lib.Examples,
    audio_source: str | None,
    failures: list[str],
    seconds: float,
) -> dict:
    """The content of export_report.json."""
    return {
        "format_version": FORMAT_VERSION,
        "model_dir": os.path.abspath(cfg.model_dir),
        "export_dir": os.path.abspath(export_dir),
        "task": trained.task,
        "model_name": trained.model.name,
        "size": size,
        "artifacts": entries,
        "calibration": None
        if calib is None
        else {
            "split": calib.split,
            "num_examples": len(calib),
            "seed": cfg.calibration_seed,
            "class_counts": {
                trained.classes[k] if k >= 0 else "unlabeled": c
                for k, c in calib.class_counts().items()
            },
            "device_counts": calib.device_counts(),
        },
        "parity_data": {
            "split": examples.split,
            "num_examples": len(examples),
            "audio": audio_source,
        },
        "settings": cfg.to_dict(),
        "passed": not failures,
        "failures": failures,
        "seconds": round(seconds, 1),
    }


def _qat_comparison(cfg, qat, trained, calib, manifest, entries, folder) -> dict:
    """float / PTQ int8 / QAT int8 accuracy of a QAT run (`quantize.exporting.comparison`)."""
    if not any(e["name"] == artifacts.TFLITE_INT8 and e["status"] == "ok" for e in entries):
        return {"note": "no int8 file: no accuracy comparison"}
    path = os.path.join(folder, artifacts.TFLITE_INT8)
    return qat_exporting.comparison(qat, trained, calib, manifest, path, seed=cfg.calibration_seed)


def run(
    cfg: ExportConfig,
    *,
    data_cfg: DataConfig | None = None,
    features_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Export, check and report one training run (see the module docstring).

    Args:
        cfg: What to export and the tolerances.
        data_cfg: The dataset, to find or compute the run's features (optional).
        features_dir: A features folder holding `manifest.json` (optional; wins over data_cfg).
        log: Progress lines and the report table.

    Returns:
        The report (also in `<export_dir>/export_report.json`).

    Raises:
        OverwriteError, SizeRuleError, ParityError, ExportError (`asc_keras.export.errors`):
            see the module docstring.
        OutOfMemoryError: memory ran out (one line saying which flag to lower).
        FileNotFoundError, ValueError, ManifestError: a broken run or features folder.
    """
    lower = (
        f"--calibration_examples (now {cfg.calibration_examples}) or --parity_examples "
        f"(now {cfg.parity_examples})"
    )
    with oom.reported("export", lower):
        return _run(cfg, data_cfg=data_cfg, features_dir=features_dir, log=log)


def _run(
    cfg: ExportConfig,
    *,
    data_cfg: DataConfig | None,
    features_dir: str | None,
    log: Callable[[str], None],
) -> dict:
    t_start = time.time()
    export_dir = os.path.normpath(cfg.export_dir)
    staging.check_destination(export_dir, overwrite=cfg.overwrite)
    trained = serving.load_run(cfg.model_dir)
    qat = qat_exporting.plan(trained)  # a QAT run: export its deploy form (None: a float run)
    if qat is not None:
        trained = dataclasses.replace(trained, model=qat.deploy)
    size = size_summary(trained.model, trained.task)
    check_size_rule(size, model_dir=cfg.model_dir, error=SizeRuleError)

    manifest = samples.find_features(trained, data_cfg=data_cfg, features_dir=features_dir, log=log)
    calib = samples.calibration_sample(cfg, trained, manifest)
    examples = samples.parity_sample(cfg, trained, manifest)
    with staging.staging_folder(export_dir) as folder:
        entries = artifacts.write_artifacts(
            trained.model,
            trained.normalization,
            folder,
            feature_cfg=trained.feature_config,
            calibration=calib,
            audio=cfg.audio_frontend,
            float16=cfg.weights == "float16",
            log=log,
            ranges=None if qat is None else qat.ranges,
        )
        complexity = judge_files(
            folder,
            entries,
            task_limits(trained.task),
            export_dir=export_dir,
            error=SizeRuleError,
        )
        _write_export_config(folder, trained, entries, examples)
        waves, audio_source = _audio_waves(cfg, trained, manifest, entries, examples)
        failures = checks.check_artifacts(
            entries,
            folder,
            trained.model,
            trained.normalization,
            examples=examples,
            waves=waves,
            feature_cfg=trained.feature_config,
            tolerances=checks.Tolerances(
                floating=cfg.float_tolerance,
                int8=cfg.int8_tolerance
                if qat is None
                else min(cfg.int8_tolerance, qat_exporting.QAT_INT8_TOLERANCE),
                audio=cfg.audio_tolerance,
                float16=cfg.float16_tolerance,
            ),
            log=log,
            int8_model=None if qat is None else qat.model,
        )
        micro_record = None
        if cfg.micro:  # an unsupported operator comes first: the error's line names it
            micro_record, micro_failures = micro.export_micro(
                folder,
                trained,
                calib,
                examples,
                int8_tolerance=cfg.int8_tolerance,
                log=log,
            )
            failures = micro_failures + failures
        report = _report_record(
            cfg,
            trained,
            export_dir=export_dir,
            size=size,
            entries=entries,
            calib=calib,
            examples=examples,
            audio_source=audio_source,
            failures=failures,
            seconds=time.time() - t_start,
        )
        if micro_record is not None:
            report["micro"] = micro_record
        report["complexity"] = complexity
        if qat is not None:
            report["qat"] = _qat_comparison(cfg, qat, trained, calib, manifest, entries, folder)
        report_lib.write_report(folder, report)
        text = report_lib.format_report(report)
        log(text)
        if qat is not None:
            atomic.write_text(os.path.join(folder, QAT_REPORT_TEXT), text + "\n")
        if failures:
            rejected = staging.reject(folder, export_dir)
            raise ParityError(
                f"{len(failures)} check(s) failed; the artifacts are in "
                f"{rejected}, {export_dir} was not changed: {failures[0]}"
            )
        staging.publish(folder, export_dir)
    return report
