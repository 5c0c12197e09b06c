"""Predictors: one call signature over a Keras model, a SavedModel and a TFLite file.

A predictor maps a batch of features `{representation: float32 [B, T, F]}` to class
probabilities `float32 [B, C]` (the model's `probs` output):

- `KerasPredictor(model)`: an in-memory `keras.Model` (or `KerasPredictor.from_file(path)` for a
  `.keras` file, loaded with `safe_mode=True`). Keras models take NORMALIZED features
  (`raw_features = False`): normalization happens in the input pipeline.
- `SavedModelPredictor(path)`: the `serving_default` signature of an exported SavedModel.
- `TFLitePredictor(path)`: a `.tflite` file run by `tflite_runner.TFLiteRunner` (LiteRT, its
  `serving_default` signature runner), so inputs are matched by name. Int8/uint8 inputs are
  quantized and outputs dequantized with the tensor's own scale and zero point.

Exported artifacts (SavedModel, TFLite) carry the normalization inside and take RAW features
(`raw_features = True`). Every predictor exposes `name`, `input_names` (the representations it
reads) and `raw_features`. `asc_keras.inference.loader.load_predictor(path)` picks the right
class from a path; `evaluate.py` scores with these objects, predict.py classifies with them.

TensorFlow, Keras and LiteRT are imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras.inference.tflite_runner import SIGNATURE, TFLiteRunner
from asc_keras.runs import MODEL_NAME

PROBS = "probs"


def _pick_output(outputs: Mapping, *, output: str, where: str):
    if output in outputs:
        return outputs[output]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    raise KeyError(f"{where}: no output {output!r}; outputs are {sorted(outputs)}")


def _select(features: Mapping[str, np.ndarray], names: Sequence[str], where: str) -> dict:
    missing = [n for n in names if n not in features]
    if missing:
        raise KeyError(f"{where}: needs inputs {missing}, batch has {sorted(features)}")
    return {n: np.asarray(features[n], dtype=np.float32) for n in names}


class KerasPredictor:
    """A Keras model with named inputs and a `probs` output (or a single output).

    Args:
      model: a `keras.Model`; its inputs are named after the representations.
      name: label used in reports.
      output: the output holding the class probabilities.
    """

    raw_features = False

    def __init__(self, model, *, name: str = "keras", output: str = PROBS):
        self.model = model
        self.name = name
        self.output = output
        self.input_names = tuple(t.name for t in model.inputs)

    @classmethod
    def from_file(cls, path: str, *, name: str | None = None, output: str = PROBS):
        """Load a `.keras` file (safe mode) or `<model_dir>/model.keras`."""
        from asc_keras.models import load_model  # registers asc-keras objects; safe mode

        if os.path.isdir(path):
            path = os.path.join(path, MODEL_NAME)
        model = load_model(path, compile=False)
        return cls(model, name=name or path, output=output)

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`{rep: [B, T, F]}` normalized features -> float32 `[B, C]`."""
        x = _select(features, self.input_names, self.name)
        out = self.model.predict_on_batch(x)
        if isinstance(out, Mapping):
            out = _pick_output(out, output=self.output, where=self.name)
        return np.asarray(out, dtype=np.float32)  # [B, C]


class SavedModelPredictor:
    """The `serving_default` signature of a SavedModel taking raw features.

    Args:
      path: the SavedModel folder.
      signature: signature key.
      output: the output holding the class probabilities.
      raw_features: whether the signature expects un-normalized features (exports do).
    """

    def __init__(
        self,
        path: str,
        *,
        signature: str = SIGNATURE,
        output: str = PROBS,
        raw_features: bool = True,
        name: str | None = None,
    ):
        import tensorflow as tf

        self._tf = tf
        self._module = tf.saved_model.load(path)  # keeps the variables alive
        if signature not in self._module.signatures:
            raise KeyError(
                f"{path}: no signature {signature!r}; has {sorted(self._module.signatures)}"
            )
        self._fn = self._module.signatures[signature]
        self.name = name or path
        self.output = output
        self.raw_features = raw_features
        self.input_names = tuple(sorted(self._fn.structured_input_signature[1]))

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`{rep: [B, T, F]}` raw features -> float32 `[B, C]`."""
        x = _select(features, self.input_names, self.name)
        out = self._fn(**{k: self._tf.constant(v) for k, v in x.items()})
        return np.asarray(
            _pick_output(out, output=self.output, where=self.name), dtype=np.float32
        )  # [B, C]


class TFLitePredictor:
    """A `.tflite` file run through its signature runner (`tflite_runner.TFLiteRunner`).

    Args:
      path: the `.tflite` file.
      signature: signature key; inputs are matched by the signature's input names.
      output: the output holding the class probabilities.
      raw_features: whether the model expects un-normalized features (exports do).
      num_threads: interpreter threads (None: LiteRT's default).
      runtime: 'litert' (default) or 'tensorflow'.
    """

    def __init__(
        self,
        path: str,
        *,
        signature: str = SIGNATURE,
        output: str = PROBS,
        raw_features: bool = True,
        num_threads: int | None = None,
        runtime: str = "litert",
        name: str | None = None,
    ):
        self.runner = TFLiteRunner(
            path, runtime=runtime, signature=signature, num_threads=num_threads
        )
        self._output_name = self.runner.output_name(output)
        self.name = name or path
        self.raw_features = raw_features
        self.input_names = self.runner.input_names

    @property
    def quantized(self) -> bool:
        """True when any input or output is an integer tensor (full-integer model)."""
        return self.runner.quantized

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`{rep: [B, T, F]}` raw features -> float32 `[B, C]`."""
        x = _select(features, self.input_names, self.name)
        return self.runner.run(x, outputs=(self._output_name,))[self._output_name]  # [B, C]
