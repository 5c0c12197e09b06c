"""What a model path is, and how to load it for prediction: the one loader of artifacts.

A path is one of (`artifact_kind`):

- 'keras': a `.keras` file, or a training run's model_dir holding `model.keras`. NORMALIZED
  features in: the run's `normalization.json` is applied before the model, as the training
  input pipeline applies it; settings from the run's `config.json` (`asc_keras.runs.read_run`).
- 'tflite': a `.tflite` file (float or int8; int8 inputs are quantized with the tensor's own
  scale and zero point). RAW features in (the normalization is inside).
- 'saved_model': a SavedModel folder (holding `saved_model.pb`). RAW features in.
- 'export': an export folder written by export.py (holding `export_config.json` and no
  `saved_model.pb`); it stands for its `model.tflite` (`DEFAULT_ARTIFACT`).

An exported artifact's settings (feature config, classes) come from the `export_config.json`
next to it or one folder up (`export_config`). Waveform-in artifacts (`audio_saved_model/`,
`model_audio.tflite`) take the clip itself (`classify.WAVEFORM`).

`load_predictor(path)` gives the predictor alone (what evaluate.py scores with);
`load_classifier(path)` gives a `classify.Classifier`: the predictor with the stored feature
settings, classes and (Keras) normalization (what predict.py and the streaming timeline use).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from asc_keras import runs
from asc_keras.config import FeatureConfig
from asc_keras.inference import predictors
from asc_keras.inference.classify import Classifier

EXPORT_CONFIG_NAME = "export_config.json"
DEFAULT_ARTIFACT = "model.tflite"  # what an export folder stands for
FLOAT16_ARTIFACT = "model_float16.tflite"  # export.py --weights=float16: float16 weights
SAVED_MODEL_FILE = "saved_model.pb"
SAVED_MODEL_DIR = "saved_model"  # an export folder's features-in SavedModel
KINDS = ("keras", "tflite", "saved_model", "export")


def _is_saved_model(path: str) -> bool:
    return os.path.isdir(path) and os.path.exists(os.path.join(path, SAVED_MODEL_FILE))


def artifact_kind(path: str) -> str | None:
    """'keras', 'tflite', 'saved_model' or 'export' (see the module docstring); None otherwise."""
    if path.endswith(".keras"):
        return "keras"
    if path.endswith(".tflite"):
        return "tflite"
    if _is_saved_model(path):
        return "saved_model"
    if os.path.isdir(path) and os.path.exists(os.path.join(path, runs.MODEL_NAME)):
        return "keras"
    if os.path.isdir(path) and os.path.exists(os.path.join(path, EXPORT_CONFIG_NAME)):
        return "export"
    return None


def keras_file(path: str) -> str:
    """The `.keras` file of a 'keras' path (the file itself or `<model_dir>/model.keras`)."""
    return os.path.join(path, runs.MODEL_NAME) if os.path.isdir(path) else path


def saved_model_folder(path: str) -> str:
    """`path` itself when it holds `saved_model.pb`, else its `saved_model/` subfolder (an
    export folder written by export.py); the path unchanged when neither exists."""
    if _is_saved_model(path):
        return path
    inner = os.path.join(path, SAVED_MODEL_DIR)
    return inner if _is_saved_model(inner) else path


def export_config(artifact: str) -> tuple[dict, str]:
    """`(export_config.json content, its path)` of an exported artifact: the file next to it or
    one folder up.

    Raises:
        FileNotFoundError: Neither folder holds one.
    """
    here = artifact if os.path.isdir(artifact) else os.path.dirname(artifact)
    for folder in (here, os.path.dirname(os.path.normpath(here))):
        path = os.path.join(folder, EXPORT_CONFIG_NAME)
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f), path
    raise FileNotFoundError(
        f"{artifact}: no {EXPORT_CONFIG_NAME} next to it or one folder up; "
        "export with export.py, which writes the feature settings there"
    )


def _classes(cfg: Mapping) -> tuple[str, ...]:
    from asc_keras import labels

    return tuple(cfg.get("classes") or labels.classes(cfg["task"]))


def _feature_config(fields: Mapping) -> FeatureConfig:
    fields = dict(fields)
    fields["representations"] = tuple(fields["representations"])
    return FeatureConfig(**fields)


def load_predictor(path: str, *, name: str | None = None, **kwargs):
    """A predictor (`asc_keras.inference.predictors`) for a `.keras` file, a model_dir, a
    SavedModel folder, a `.tflite` file or an export folder (its `model.tflite`).

    Raises:
        ValueError: The path is none of these.
    """
    kind = artifact_kind(path)
    if kind == "export":
        path, kind = os.path.join(path, DEFAULT_ARTIFACT), "tflite"
    if kind == "tflite":
        return predictors.TFLitePredictor(path, name=name, **kwargs)
    if kind == "saved_model":
        return predictors.SavedModelPredictor(path, name=name, **kwargs)
    if kind == "keras":
        return predictors.KerasPredictor.from_file(path, name=name, **kwargs)
    raise ValueError(
        f"{path}: not a .tflite file, SavedModel folder, export folder, model_dir or .keras file"
    )


def load_classifier(path: str) -> Classifier:
    """A `Classifier` for a model_dir, `.keras` file, export folder, SavedModel or `.tflite`.

    Raises:
        FileNotFoundError: The path or the settings stored with it are missing.
        ValueError: The path is none of the accepted kinds.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found")
    kind = artifact_kind(path)
    if kind == "keras":
        model_file = keras_file(path)
        info = runs.read_run(os.path.dirname(os.path.abspath(model_file)))
        return Classifier(
            predictor=predictors.KerasPredictor.from_file(model_file),
            feature_config=info.feature_config,
            classes=info.classes,
            normalization=info.normalization,
            source=model_file,
        )
    if kind == "export":
        path = os.path.join(path, DEFAULT_ARTIFACT)
    predictor = load_predictor(path)  # ValueError for any other path
    cfg, _ = export_config(path)
    return Classifier(
        predictor=predictor,
        feature_config=_feature_config(cfg["feature_config"]),
        classes=_classes(cfg),
        normalization=None,
        source=path,
    )
