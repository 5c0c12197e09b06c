"""ExportConfig: what `export.py` exports from a training run, and how strictly it is checked."""

from __future__ import annotations

import dataclasses

from asc_keras.config.settings import setting, shared

WEIGHT_CHOICES = ("float32", "float16")  # float32: the default files only


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What `export.py` exports from a training run, and how strictly it is checked.

    `calibration_examples` clips of the training split (seeded by `calibration_seed`, stratified
    by class) calibrate the int8 model; `parity_examples` clips (of the evaluate split when it
    was precomputed, else the training split) check every artifact against the Keras model.
    Tolerances are the largest allowed absolute difference of any output value (probabilities):
    `float_tolerance` for the SavedModel and float TFLite, `int8_tolerance` for the int8 TFLite,
    `audio_tolerance` for the audio-in models against Keras on librosa features.
    """

    model_dir: str = shared("model_dir", "")
    export_dir: str = setting(
        "",
        "Export folder: saved_model/, model.tflite, model_int8.tflite, audio models, "
        "export_config.json, export_report.json.",
        flag_default=None,
    )
    overwrite: bool = setting(False, "Replace an existing --export_dir.")
    int8: bool = setting(
        True,
        "Also export a full-integer int8 TFLite model (needs the training split's features).",
        flag="export_int8",
    )
    audio_frontend: bool = setting(
        True,
        "For models whose only input is logmel, also export waveform-in models (Log-Mel in the "
        "graph).",
        flag="export_audio",
    )
    micro: bool = setting(
        False,
        "Also export for microcontrollers: micro/ with an int8-in, int8-out batch-1 model run in "
        "TensorFlow Lite for Microcontrollers (operators, arena size, parity with LiteRT), the "
        "model as a C array and the feature parameters (needs --export_int8 and tflite-micro).",
    )
    calibration_examples: int = setting(
        200,
        "Training clips (seeded, class-stratified) that calibrate the int8 model.",
        lower_bound=1,
    )
    calibration_seed: int = setting(0, "Seed of the calibration sample.", lower_bound=0)
    parity_examples: int = setting(
        16, "Clips every artifact is checked on against the Keras model.", lower_bound=1
    )
    float_tolerance: float = setting(
        1e-5,
        "Largest output difference of the SavedModel and float TFLite from Keras.",
        lower_bound=0.0,
    )
    int8_tolerance: float = setting(
        0.1, "Largest probability difference of the int8 TFLite from Keras.", lower_bound=0.0
    )
    audio_tolerance: float = setting(
        1e-3,
        "Largest output difference of the audio-in models from Keras on librosa features.",
        lower_bound=0.0,
    )
    weights: str = setting(
        "float32",
        "float16: also export model_float16.tflite (float16 weights, 2 bytes per parameter; "
        "checked against Keras, counted and judged by the task's complexity rule).",
        choices=WEIGHT_CHOICES,
    )
    float16_tolerance: float = setting(
        1e-3,
        "Largest output difference of the float16-weights TFLite from Keras.",
        lower_bound=0.0,
    )

    def __post_init__(self):
        if not self.model_dir or not self.export_dir:
            raise ValueError("model_dir and export_dir are required")
        if self.calibration_examples < 1 or self.parity_examples < 1:
            raise ValueError(
                f"calibration_examples ({self.calibration_examples}) and "
                f"parity_examples ({self.parity_examples}) must be positive"
            )
        if self.micro and not self.int8:
            raise ValueError("micro needs the int8 calibration: drop --noexport_int8")
        if self.weights not in WEIGHT_CHOICES:
            raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got {self.weights!r}")
        for name in ("float_tolerance", "int8_tolerance", "audio_tolerance", "float16_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
