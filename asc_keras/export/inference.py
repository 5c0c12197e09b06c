"""Classify audio files with a trained or exported model, with exactly the training features.

audio file -> `asc_keras.audio.load_clip` (mono, 44.1 kHz, fixed length) ->
`asc_keras.features.compute_features` with the FeatureConfig stored with the model ->
`{rep: float32 [1, T, F]}` -> the model -> probabilities `[C]` -> scene.

`load_classifier(path)` accepts:

- a `.tflite` file (float or int8; int8 inputs are quantized with the tensor's own scale and
  zero point) or a SavedModel folder of an export: RAW features in (normalization inside);
  the settings come from `export_config.json` next to it (or one folder up);
- an export folder (holding `export_config.json`): its `model.tflite`;
- a training run's model_dir or its `.keras` file: NORMALIZED features in, so the run's
  `normalization.json` is applied here, as the training input pipeline applies it;
- a waveform-in artifact (`audio_saved_model/`, `model_audio.tflite`): the clip from
  `load_clip` goes in as is and the Log-Mel is computed in the graph.

Predictors are `asc_keras.evaluation.predictors` objects, the ones `evaluate.py` scores with.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras import runs
from asc_keras.config import FeatureConfig
from asc_keras.export import serving

EXPORT_CONFIG_NAME = "export_config.json"
DEFAULT_ARTIFACT = "model.tflite"


@dataclasses.dataclass(frozen=True)
class Prediction:
    path: str
    scene: str
    probs: np.ndarray  # float32 [C]


@dataclasses.dataclass
class Classifier:
    """A predictor with the feature settings, classes and (Keras only) normalization it needs.

    Attributes:
        predictor: Maps `{input: float32 [B, ...]}` to probabilities `[B, C]`.
        feature_config: The features the model was trained on.
        classes: Class names in output order.
        normalization: `{rep: {'mean', 'std'}}` to apply before the predictor, or None when
            the artifact holds it.
        source: What was loaded.
    """

    predictor: object
    feature_config: FeatureConfig
    classes: tuple[str, ...]
    normalization: Mapping | None
    source: str

    @property
    def audio_in(self) -> bool:
        return tuple(self.predictor.input_names) == (serving.WAVEFORM,)

    def inputs(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """The model inputs of one clip: `{rep: float32 [1, T, F]}` or `{'waveform': [1, n]}`."""
        from asc_keras.features import compute_features

        if self.audio_in:
            return {serving.WAVEFORM: np.asarray(wave, np.float32)[None]}  # [1, num_samples]
        names = tuple(self.predictor.input_names)
        cfg = dataclasses.replace(self.feature_config, representations=names)
        features = compute_features(wave, cfg)  # {rep: [T, F]}
        out = {}
        for rep in names:
            x = features[rep]
            if self.normalization is not None:
                mean, std = serving.normalization_arrays(self.normalization, rep)
                x = (x - mean) / std
            out[rep] = np.asarray(x, np.float32)[None]  # [1, T, F]
        return out

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        """float32 `[C]` class probabilities of one clip (`[num_samples]`, from `load_clip`)."""
        return np.asarray(self.predictor(self.inputs(wave)), np.float32)[0]

    def classify(self, path: str) -> Prediction:
        """Read, featurize and classify one audio file.

        Raises:
            AudioError: The file cannot be decoded or has the wrong length.
        """
        from asc_keras import audio

        probs = self.probabilities(audio.load_clip(path, self.feature_config))
        return Prediction(path=path, scene=self.classes[int(np.argmax(probs))], probs=probs)


def _classes(cfg: Mapping) -> tuple[str, ...]:
    from asc_keras import labels

    return tuple(cfg.get("classes") or labels.classes(cfg["task"]))


def _feature_config(fields: Mapping) -> FeatureConfig:
    fields = dict(fields)
    fields["representations"] = tuple(fields["representations"])
    return FeatureConfig(**fields)


def _export_config(artifact: str) -> tuple[dict, str]:
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


def load_classifier(path: str) -> Classifier:
    """A `Classifier` for a model_dir, `.keras` file, export folder, SavedModel or `.tflite`.

    Raises:
        FileNotFoundError: The path or the settings stored with it are missing.
        ValueError: The path is none of the accepted kinds.
    """
    from asc_keras.evaluation import predictors

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found")
    keras_file = None
    if path.endswith(".keras"):
        keras_file = path
    elif os.path.isdir(path) and os.path.exists(os.path.join(path, runs.MODEL_NAME)):
        keras_file = os.path.join(path, runs.MODEL_NAME)
    if keras_file is not None:
        info = runs.read_run(os.path.dirname(os.path.abspath(keras_file)))
        return Classifier(
            predictor=predictors.KerasPredictor.from_file(keras_file),
            feature_config=info.feature_config,
            classes=info.classes,
            normalization=info.normalization,
            source=keras_file,
        )
    if (
        os.path.isdir(path)
        and os.path.exists(os.path.join(path, EXPORT_CONFIG_NAME))
        and not os.path.exists(os.path.join(path, "saved_model.pb"))
    ):
        path = os.path.join(path, DEFAULT_ARTIFACT)
    if path.endswith(".tflite"):
        predictor = predictors.TFLitePredictor(path)
    elif os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        predictor = predictors.SavedModelPredictor(path)
    else:
        raise ValueError(
            f"{path}: not a .tflite file, SavedModel folder, export folder, "
            "model_dir or .keras file"
        )
    cfg, _ = _export_config(path)
    return Classifier(
        predictor=predictor,
        feature_config=_feature_config(cfg["feature_config"]),
        classes=_classes(cfg),
        normalization=None,
        source=path,
    )


def format_predictions(predictions: Sequence[Prediction], classes: Sequence[str]) -> str:
    """One line per file: path, scene, then every class probability."""
    width = max([len("file"), *(len(p.path) for p in predictions)])
    scene_w = max(len("scene"), *(len(c) for c in classes))
    col = max(8, *(len(c) for c in classes))
    lines = [
        f"{'file':{width}s}  {'scene':{scene_w}s}  " + "  ".join(f"{c:>{col}s}" for c in classes)
    ]
    for p in predictions:
        lines.append(
            f"{p.path:{width}s}  {p.scene:{scene_w}s}  "
            + "  ".join(f"{v:>{col}.4f}" for v in p.probs)
        )
    return "\n".join(lines)
