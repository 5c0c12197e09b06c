"""Exporting a QAT run: what `export.py` converts, what it checks against, and the comparison of
float, PTQ int8 and QAT int8 accuracy in its report.

- `plan(trained)`: for a run whose `model.keras` is a QAT model (`build.is_qat_model`), a
  `QATExport`: the QAT model (the int8 file's reference: it computes what the int8 file
  computes), its deploy form (float layers with the on-grid kernels: the SavedModel and float
  TFLite files, and what the converter reads), the tracked activation ranges (written into the
  converter's calibrated graph in place of the calibrated ones, `tflite.convert_int8(...,
  ranges=...)`) and the starting float run (`train_config.qat_from`); None for a float run.
- `comparison(qat, calib, manifest, int8_path)`: accuracy and log loss on up to
  `COMPARE_EXAMPLES` clips of the evaluate split (seeded, class-stratified) of
  `float` (the STARTING run's Keras model), `PTQ int8` (that same float model converted by
  post-training quantization with the export's own calibration clips: what exporting the start
  gives), `QAT` (the QAT Keras model, fake-quantized) and `QAT int8` (the exported
  `model_int8.tflite`), plus the int8 file's max |dprob| and argmax agreement against the QAT
  model there. `comparison_lines(record)` prints it.

The int8 file of a QAT run is checked against the QAT model with `QAT_INT8_TOLERANCE` (or the
smaller `--int8_tolerance`): the QAT model does the int8 rounding the file does, so what is left
is the file's int32 biases and fixed-point requantization (one step, 1/256 of a probability, per
rounding tie that goes the other way); a tiny 1B model differed by 0.006 to 0.02.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping

import numpy as np

from asc_keras.quantize import build

COMPARE_EXAMPLES = 1000  # evaluate clips of the accuracy comparison (all when fewer)
QAT_INT8_TOLERANCE = 0.05  # max |dprob| of a QAT run's int8 file against the QAT model


@dataclasses.dataclass(frozen=True)
class QATExport:
    """What a QAT run's export converts and checks (module docstring)."""

    model: object  # the QAT Keras model (normalized features in)
    deploy: object  # its float form with on-grid kernels
    ranges: Mapping[str, tuple[float, float]]
    start_dir: str  # the run it was fine-tuned from ('' unknown)


def plan(trained) -> QATExport | None:
    """The `QATExport` of a loaded run (`asc_keras.export.serving.TrainedRun`), or None."""
    if not build.is_qat_model(trained.model):
        return None
    import json

    from asc_keras.runs import CONFIG_NAME

    with open(os.path.join(trained.path, CONFIG_NAME)) as f:
        record = json.load(f)
    start = (record.get("qat_from") or {}).get("path") or (record.get("train_config") or {}).get(
        "qat_from", ""
    )
    return QATExport(
        model=trained.model,
        deploy=build.deploy_model(trained.model),
        ranges=build.activation_ranges(trained.model),
        start_dir=start,
    )


def _scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    from asc_keras.evaluation.metrics import log_loss

    return {
        "accuracy": float(np.mean(np.argmax(probs, -1) == labels)),
        "log_loss": float(log_loss(labels, probs)),
    }


def _ptq_probs(start, calib, features: Mapping) -> np.ndarray:
    """`probs` of the post-training int8 file of the starting run's float model."""
    from asc_keras.export import savedmodel, serving, tflite, verify

    with tempfile.TemporaryDirectory(prefix="asc-ptq-") as tmp:
        source = os.path.join(tmp, "saved_model")
        savedmodel.export_saved_model(
            serving.feature_serving_model(start.model, start.normalization, rewrite=True), source
        )
        path = os.path.join(tmp, "model_int8.tflite")
        with open(path, "wb") as f:
            f.write(tflite.convert_int8(source, lambda: calib.batches(batch_size=1)))
        return verify.tflite_outputs(path, features)["probs"]


def comparison(qat: QATExport, trained, calib, manifest, int8_path: str, *, seed: int) -> dict:
    """float / PTQ int8 / QAT / QAT int8 scores on evaluate clips (module docstring).

    Returns:
        `{'split', 'num_examples', 'start_dir', 'rows': {name: {'accuracy', 'log_loss'}},
        'int8_vs_qat': {'max_abs_diff', 'argmax_agreement'}, 'note'}`; without labelled
        evaluate clips only a note.
    """
    from asc_keras.export import calibration as calibration_lib
    from asc_keras.export import checks, serving, verify

    if manifest is None or "evaluate" not in manifest.splits:
        return {"note": "no evaluate split: no accuracy comparison"}
    clips = calibration_lib.sample_split(
        manifest,
        "evaluate",
        COMPARE_EXAMPLES,
        seed=seed + 3,
        representations=trained.input_names,
    )
    labels = clips.labels
    if np.any(labels < 0):
        return {"note": "unlabelled evaluate clips: no accuracy comparison"}
    qat_probs = verify.keras_outputs(
        qat.model, checks.normalized(clips.features, trained.normalization)
    )["probs"]
    int8_probs = verify.tflite_outputs(int8_path, clips.features)["probs"]
    rows, note = {}, ""
    if qat.start_dir and os.path.isdir(qat.start_dir):
        start = serving.load_run(qat.start_dir)
        float_probs = verify.keras_outputs(
            start.model, checks.normalized(clips.features, start.normalization)
        )["probs"]
        rows["float"] = _scores(float_probs, labels)
        if calib is not None:
            rows["PTQ int8"] = _scores(_ptq_probs(start, calib, clips.features), labels)
    else:
        note = f"starting run {qat.start_dir or '(unknown)'} not found: no float / PTQ rows"
    rows["QAT"] = _scores(qat_probs, labels)
    rows["QAT int8"] = _scores(int8_probs, labels)
    return {
        "split": clips.split,
        "num_examples": len(clips),
        "start_dir": qat.start_dir,
        "rows": rows,
        "int8_vs_qat": {
            "max_abs_diff": float(np.abs(int8_probs - qat_probs).max()),
            "argmax_agreement": float(np.mean(int8_probs.argmax(-1) == qat_probs.argmax(-1))),
        },
        "note": note,
    }


ROW_TEXT = {
    "float": "float (the starting run's Keras model)",
    "PTQ int8": "PTQ int8 (the starting run, post-training quantized)",
    "QAT": "QAT (the QAT Keras model, fake-quantized)",
    "QAT int8": "QAT int8 (model_int8.tflite)",
}


def comparison_lines(record: Mapping | None) -> list[str]:
    """The comparison as printed lines (empty for a float run)."""
    if not record:
        return []
    if "rows" not in record:
        return [f"QAT: {record.get('note', '')}"]
    lines = [
        f"QAT run (started from {record['start_dir']}): the int8 checks above are against the "
        "QAT Keras model; accuracy (of clips) and log loss on "
        f"{record['num_examples']} clips of split {record['split']!r}:",
        f"  {'model':54s} {'accuracy':>8s} {'log loss':>8s}",
    ]
    for name, row in record["rows"].items():
        lines.append(
            f"  {ROW_TEXT.get(name, name):54s} {row['accuracy']:8.3f} {row['log_loss']:8.3f}"
        )
    d = record["int8_vs_qat"]
    lines.append(
        f"  QAT int8 vs QAT model: max |dprob| {d['max_abs_diff']:.3f}, argmax "
        f"{d['argmax_agreement'] * 100:.0f}%"
    )
    if record.get("note"):
        lines.append(f"  note: {record['note']}")
    return lines
