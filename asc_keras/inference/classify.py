"""Classifying one clip with exactly the training features: `Classifier` and its `Prediction`.

audio file -> `asc_keras.audio.load_clip` (mono, 44.1 kHz, fixed length) ->
`asc_keras.features.compute_features` with the FeatureConfig stored with the model ->
`{rep: float32 [1, T, F]}` (normalized here for a Keras run; an export holds its normalization)
-> the predictor -> probabilities `[C]` -> scene. A waveform-in model (`audio_saved_model/`,
`model_audio.tflite`) gets the clip from `load_clip` as is (`{'waveform': [1, num_samples]}`).

`asc_keras.inference.loader.load_classifier(path)` builds a `Classifier` from a path;
`format_predictions` is predict.py's table of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras.config import FeatureConfig
from asc_keras.data.pipeline import normalization_arrays

WAVEFORM = "waveform"  # the input name of the waveform-in export models


@dataclasses.dataclass(frozen=True)
class Prediction:
    path: str
    scene: str
    probs: np.ndarray  # float32 [C]


@dataclasses.dataclass
class Classifier:
    """A predictor with the feature settings, classes and (Keras only) normalization it needs.

    Attributes:
        predictor: Maps `{input: float32 [B, ...]}` to probabilities `[B, C]`
            (`asc_keras.inference.predictors`).
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
        return tuple(self.predictor.input_names) == (WAVEFORM,)

    def inputs(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """The model inputs of one clip: `{rep: float32 [1, T, F]}` or `{'waveform': [1, n]}`."""
        from asc_keras.features import compute_features

        if self.audio_in:
            return {WAVEFORM: np.asarray(wave, np.float32)[None]}  # [1, num_samples]
        names = tuple(self.predictor.input_names)
        cfg = dataclasses.replace(self.feature_config, representations=names)
        features = compute_features(wave, cfg)  # {rep: [T, F]}
        out = {}
        for rep in names:
            x = features[rep]
            if self.normalization is not None:
                mean, std = normalization_arrays(self.normalization, rep)
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
