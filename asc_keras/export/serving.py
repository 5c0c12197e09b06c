"""Serving models: the training-split normalization and the trained network in one Keras model.

A trained `model.keras` takes NORMALIZED features. Everything exported takes RAW features (or
audio), so deployment needs nothing but the artifact:

- `feature_serving_model(model, normalization)`: `{rep: float32 [batch, T, F]}` raw features
  -> `FeatureNormalization` per input (`<rep>_normalization`) -> the trained model (its
  `TimeDistributed(Dense)` layers as one `Dense` over the frame axis, same weights and numbers)
  -> its outputs, under their names (`probs` `[batch, classes]` always; `frames`,
  `<part>_probs`, ... when the model has them). What the SavedModels hold: it runs on every
  TensorFlow device. `rewrite=True` wraps the network as `rewrite.for_tflite` makes it instead
  (average pools as depthwise convolutions, the 1B first convolution split): the graph the
  TFLite converter reads, never one TensorFlow is asked to run (its 4 x 2 depthwise
  convolution has no kernel in TensorFlow's own CPU and GPU implementations).
- `audio_serving_model(model, feature_cfg, normalization)`: `waveform` float32
  `[batch, num_samples]` (44.1 kHz mono, the output of `asc_keras.audio.load_clip`) ->
  `LogMelSpectrogram` (`logmel_frontend`) -> normalization -> the model. Only for models whose
  one input is `logmel` (`supports_audio`).

`load_run(model_dir)` reads what a training run left (see `asc_keras.training.checkpoints`):
`model.keras` (safe mode), `config.json` (task, classes, feature and model settings, features
folder) and `normalization.json`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import keras
import numpy as np

from asc_keras.config import FeatureConfig
from asc_keras.export import rewrite as rewrite_lib
from asc_keras.export.rewrite import flatten_time_distributed
from asc_keras.inference.classify import WAVEFORM
from asc_keras.runs import NORMALIZATION_NAME


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A finished training run.

    Attributes:
        path: The model_dir.
        model: The trained `keras.Model` (normalized features in).
        task: '1a' or '1b'.
        classes: Class names in output order.
        feature_config: The features the model was trained on.
        normalization: `{rep: {'mean': float32 [F], 'std': float32 [F]}}` of the training split.
        model_config: config.json's `model_config` (a dict; empty when absent).
        features: The features folder the run was trained from ('' when unknown).
    """

    path: str
    model: object
    task: str
    classes: tuple[str, ...]
    feature_config: FeatureConfig
    normalization: Mapping[str, Mapping[str, np.ndarray]]
    model_config: Mapping = dataclasses.field(default_factory=dict)
    features: str = ""

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.model.inputs)


def normalization_arrays(normalization: Mapping, name: str) -> tuple[np.ndarray, np.ndarray]:
    """`(mean, std)` float32 `[F]` of one input, std floored exactly as the input pipeline does."""
    from asc_keras.data.pipeline import normalization_arrays as pipeline_arrays

    return pipeline_arrays(normalization, name)


def load_run(model_dir: str) -> TrainedRun:
    """Load a training run's model (safe mode) and settings.

    Raises:
        FileNotFoundError: A file of the run is missing.
        ValueError: config.json lacks the task or the feature settings, or the model's inputs
            do not match the features.
    """
    from asc_keras.models import load_model
    from asc_keras.runs import read_run

    info = read_run(model_dir)
    feature_cfg, normalization = info.feature_config, info.normalization
    model_path = info.model_path
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"{model_path}: missing (has the training run finished?)")
    model = load_model(model_path, compile=False)
    run = TrainedRun(
        path=model_dir,
        model=model,
        task=info.task,
        classes=info.classes,
        feature_config=feature_cfg,
        normalization=normalization,
        model_config=info.model_config,
        features=info.features,
    )
    for t in model.inputs:
        if t.name not in feature_cfg.representations:
            raise ValueError(
                f"{model_path}: input {t.name!r} is not among the run's "
                f"representations {feature_cfg.representations}"
            )
        if tuple(t.shape[1:]) != feature_cfg.shapes[t.name]:
            raise ValueError(
                f"{model_path}: input {t.name!r} is {tuple(t.shape[1:])}, the "
                f"features are {feature_cfg.shapes[t.name]} ([time, freq])"
            )
        if t.name not in normalization:
            raise ValueError(f"{model_dir}/{NORMALIZATION_NAME}: no statistics for {t.name!r}")
    return run


def output_names(model) -> tuple[str, ...]:
    """The keys of the model's dict of outputs, `probs` first (`("probs",)` for one tensor).

    `model.output_names` is not used: for a model that wraps another, Keras 3 gives the inner
    model's name for every output instead of the dict keys.
    """
    names = tuple(model.output) if isinstance(model.output, Mapping) else ("probs",)
    return tuple(sorted(names, key=lambda n: (n != "probs", names.index(n))))


def _outputs(model, x) -> dict:
    out = model(x)
    if not isinstance(out, Mapping):  # a model with one unnamed output: its probabilities
        out = {"probs": out}
    return dict(out)


def _normalize(x, normalization: Mapping, name: str):
    from asc_keras.models.frontend import FeatureNormalization

    mean, std = normalization_arrays(normalization, name)
    return FeatureNormalization(mean=mean, std=std, name=f"{name}_normalization")(x)


def _network(model, *, rewrite: bool):
    return rewrite_lib.for_tflite(model) if rewrite else flatten_time_distributed(model)


def feature_serving_model(model, normalization: Mapping, *, rewrite: bool = False):
    """Raw features in: normalization layers in front of `model` (see the module docstring).

    Args:
        model: The trained `keras.Model`; inputs named after representations, `[batch, T, F]`.
        normalization: `{rep: {'mean': [F], 'std': [F]}}` of the training split.
        rewrite: The network as `rewrite.for_tflite` makes it, for the TFLite converter only
            (False: the layers as trained, `TimeDistributed` flattened; what TensorFlow runs).

    Returns:
        A `keras.Model` with the same input names and shapes and the same named outputs.
    """
    inputs = {
        t.name: keras.Input(shape=tuple(t.shape[1:]), name=t.name, dtype="float32")
        for t in model.inputs
    }
    normalized = {n: _normalize(x, normalization, n) for n, x in inputs.items()}
    outputs = _outputs(_network(model, rewrite=rewrite), normalized)
    return keras.Model(
        inputs, {n: outputs[n] for n in output_names(model)}, name=f"{model.name}_serving"
    )


def supports_audio(model, feature_cfg: FeatureConfig) -> bool:
    """Whether `model` reads exactly one input, `logmel`, of the shape `feature_cfg` makes."""
    inputs = model.inputs
    return (
        len(inputs) == 1
        and inputs[0].name == "logmel"
        and tuple(inputs[0].shape[1:]) == (feature_cfg.num_frames, feature_cfg.logmel_bins)
    )


def logmel_frontend(feature_cfg: FeatureConfig, *, name: str = "logmel_frontend"):
    """The `LogMelSpectrogram` layer that computes `feature_cfg`'s `logmel` in the graph."""
    from asc_keras.models.frontend import LogMelSpectrogram

    return LogMelSpectrogram(
        sample_rate=feature_cfg.sample_rate,
        n_fft=feature_cfg.n_fft,
        hop_length=feature_cfg.hop_length,
        n_mels=feature_cfg.logmel_bins,
        fmin=feature_cfg.logmel_fmin,
        fmax=feature_cfg.logmel_fmax,
        top_db=feature_cfg.top_db,
        name=name,
    )


def audio_serving_model(
    model, feature_cfg: FeatureConfig, normalization: Mapping, *, rewrite: bool = False
):
    """Waveform in: Log-Mel frontend, normalization and `model` (see the module docstring).

    Args:
        model: A trained model whose one input is `logmel` (`supports_audio`).
        feature_cfg: The run's feature settings (sample rate, clip length, STFT, mel bands).
        normalization: `{'logmel': {'mean': [F], 'std': [F]}}`.
        rewrite: As in `feature_serving_model`.

    Returns:
        A `keras.Model`: `waveform` float32 `[batch, num_samples]` -> the model's named outputs.

    Raises:
        ValueError: If the model does not read Log-Mel features of `feature_cfg` alone.
    """
    if not supports_audio(model, feature_cfg):
        raise ValueError(
            f"{model.name}: an audio frontend needs a model whose only input is "
            f"logmel {(feature_cfg.num_frames, feature_cfg.logmel_bins)}, got "
            f"{[(t.name, tuple(t.shape[1:])) for t in model.inputs]}"
        )
    wave = keras.Input(shape=(feature_cfg.num_samples,), name=WAVEFORM, dtype="float32")
    logmel = logmel_frontend(feature_cfg)(wave)  # [b, T, F]
    outputs = _outputs(
        _network(model, rewrite=rewrite), {"logmel": _normalize(logmel, normalization, "logmel")}
    )
    return keras.Model(
        {WAVEFORM: wave}, {n: outputs[n] for n in output_names(model)}, name=f"{model.name}_audio"
    )
