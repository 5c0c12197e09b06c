"""Every artifact checked against the trained Keras model, output by output.

The reference is the Keras model fed the pipeline's normalized features (`normalized`);
waveform-in artifacts are checked against it on `compute_features` (librosa) features of the
same waveforms. TFLite files run in both LiteRT and TensorFlow's interpreter, and the two
runtimes are also checked against each other. `check_artifacts` adds each entry's `parity` and
returns the failures as one line each.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

import numpy as np

from asc_keras.config import FeatureConfig
from asc_keras.export import calibration as calibration_lib
from asc_keras.export import serving, verify
from asc_keras.inference.tflite_runner import tflite_io


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """Largest allowed absolute output differences from the Keras model."""

    floating: float = 1e-5  # SavedModel, float TFLite
    int8: float = 0.1  # int8 TFLite
    audio: float = 1e-3  # audio-in models, against Keras on librosa features
    float16: float = 1e-3  # float16-weights TFLite


def normalized(features: Mapping[str, np.ndarray], normalization: Mapping) -> dict:
    """Raw `{rep: [N, T, F]}` normalized as the training input pipeline does it."""
    out = {}
    for rep, x in features.items():
        mean, std = serving.normalization_arrays(normalization, rep)
        out[rep] = (np.asarray(x, np.float32) - mean) / std
    return out


def _tflite_checks(
    path: str, name: str, inputs: Mapping, reference: Mapping, *, tolerance: float
) -> tuple[list[verify.Parity], dict]:
    """An artifact in both runtimes against the reference, and the runtimes against each other;
    also returns LiteRT's outputs."""
    outs = {rt: verify.tflite_outputs(path, inputs, runtime=rt) for rt in verify.RUNTIMES}
    checks = [
        verify.compare(reference, outs[rt], tolerance=tolerance, artifact=f"{name} {rt}")
        for rt in verify.RUNTIMES
    ]
    _, out_details = tflite_io(path)
    steps = [
        float(d["quantization"][0])
        for d in out_details.values()
        if np.issubdtype(np.dtype(d["dtype"]), np.integer)
    ]
    # Float files: the float tolerance, at most 1e-5 (the audio-in model's FFT differs by about
    # 1e-6 between the two runtimes); integer outputs: one quantization step.
    same = max([min(tolerance, 1e-5), *steps])
    checks.append(
        verify.compare(
            outs["litert"],
            outs["tensorflow"],
            tolerance=same,
            artifact=f"{name} tensorflow",
            reference_name="litert",
        )
    )
    return checks, outs["litert"]


def _audio_reference(
    model, normalization: Mapping, waves: np.ndarray, feature_cfg: FeatureConfig
) -> dict:
    """The Keras model's outputs on `compute_features` Log-Mel features of `waves`."""
    from asc_keras.features import compute_features

    logmel_cfg = dataclasses.replace(feature_cfg, representations=("logmel",))
    logmel = np.stack([compute_features(w, logmel_cfg)["logmel"] for w in waves])
    return verify.keras_outputs(model, normalized({"logmel": logmel}, normalization))


def _failure_line(c: verify.Parity) -> str:
    return f"{c.artifact} vs {c.reference}: max |diff| {c.max_abs_diff:.3g} > {c.tolerance:g}" + (
        f", missing outputs {list(c.missing)}" if c.missing else ""
    )


def check_artifacts(
    entries: list[dict],
    folder: str,
    model,
    normalization: Mapping,
    *,
    examples: calibration_lib.Examples,
    waves: np.ndarray | None,
    feature_cfg: FeatureConfig,
    tolerances: Tolerances,
    log: Callable[[str], None] = print,
    int8_model=None,
) -> list[str]:
    """Add `parity` to every entry; returns the failures (empty when all passed).

    Args:
        entries: From `artifacts.write_artifacts`.
        folder: Where they are.
        model: The trained Keras model (the reference, on normalized features).
        normalization: The training statistics.
        examples: Raw features of the parity clips.
        waves: float32 `[N, num_samples]` waveforms for audio-in artifacts (None: skip them).
        feature_cfg: Turns `waves` into reference features with `compute_features`.
        tolerances: Largest allowed output differences.
        log: Progress lines.
        int8_model: The int8 files' reference instead of `model` (a QAT run's QAT model,
            whose fake quantization the int8 file computes); None: `model`.
    """
    reference = verify.keras_outputs(model, normalized(examples.features, normalization))
    int8_reference = reference
    if int8_model is not None:
        int8_reference = verify.keras_outputs(
            int8_model, normalized(examples.features, normalization)
        )
    audio_reference = None
    if waves is not None and any(e["input"] == "waveform" for e in entries):
        audio_reference = _audio_reference(model, normalization, waves, feature_cfg)
    failures = []
    for entry in entries:
        if entry["status"] != "ok" or (entry["input"] == "waveform" and audio_reference is None):
            entry["parity"] = []
            continue
        if entry["input"] == "waveform":
            inputs, ref, tol = {serving.WAVEFORM: waves}, audio_reference, tolerances.audio
        else:
            int8 = entry["dtype"] == "int8"
            inputs, ref = examples.features, int8_reference if int8 else reference
            tol = {"int8": tolerances.int8, "float16": tolerances.float16}.get(
                entry["dtype"], tolerances.floating
            )
        checks = _check_entry(entry, folder, inputs, ref, tolerance=tol, examples=examples)
        entry["parity"] = [c.to_dict() for c in checks]
        failures.extend(_failure_line(c) for c in checks if not c.passed)
        log(
            f"check: {entry['name']}: max |diff| "
            f"{max(c.max_abs_diff for c in checks[:2]):.2g} vs keras"
        )
    return failures


def _check_entry(
    entry: dict,
    folder: str,
    inputs: Mapping,
    reference: Mapping,
    *,
    tolerance: float,
    examples: calibration_lib.Examples,
) -> list[verify.Parity]:
    """The checks of one written artifact (TFLite: both runtimes and each other; the int8 file
    also gets `per_device` agreement when the clips name their devices)."""
    path = os.path.join(folder, entry["name"])
    if entry["name"].endswith(".tflite"):
        checks, outs = _tflite_checks(path, entry["name"], inputs, reference, tolerance=tolerance)
        if entry["dtype"] == "int8" and examples.devices and "probs" in reference:
            entry["per_device"] = verify.agreement_by_device(reference, outs, examples.devices)
        return checks
    outs = verify.saved_model_outputs(path, inputs)
    return [
        verify.compare(reference, outs, tolerance=tolerance, artifact=f"{entry['name']} tensorflow")
    ]
