"""Predictors: one call signature over a Keras model, a SavedModel and a TFLite file.

A predictor maps a batch of features `{representation: float32 [B, T, F]}` to class
probabilities `float32 [B, C]` (the model's `probs` output):

- `KerasPredictor(model)`: an in-memory `keras.Model` (or `KerasPredictor.from_file(path)` for a
  `.keras` file, loaded with `safe_mode=True`). Keras models take NORMALIZED features
  (`raw_features = False`): normalization happens in the input pipeline.
- `SavedModelPredictor(path)`: the `serving_default` signature of an exported SavedModel.
- `TFLitePredictor(path)`: a `.tflite` file run by the LiteRT interpreter
  (`ai_edge_litert.interpreter.Interpreter`) through its `serving_default` signature runner, so
  inputs are matched by name. Int8/uint8 inputs are quantized and outputs dequantized with the
  tensor's own scale and zero point.

Exported artifacts (SavedModel, TFLite) carry the normalization inside and take RAW features
(`raw_features = True`). Every predictor exposes `name`, `input_names` (the representations it
reads) and `raw_features`. `load_predictor(path)` picks the right class from the path: a `.keras`
file, a model_dir holding `model.keras`, a SavedModel folder or a `.tflite` file.

TensorFlow, Keras and LiteRT are imported lazily, so the rest of `asc_keras.evaluation` stays
pure numpy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

SIGNATURE = "serving_default"
PROBS = "probs"
KERAS_MODEL_NAME = "model.keras"


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
            path = os.path.join(path, KERAS_MODEL_NAME)
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


def quantize(x: np.ndarray, details: Mapping) -> np.ndarray:
    """Float array -> the tensor's dtype; integer tensors use its scale and zero point."""
    dtype = np.dtype(details["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    scale, zero_point = _scale_zero_point(details)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, details: Mapping) -> np.ndarray:
    """A tensor's values as float32; integer tensors use its scale and zero point."""
    if not np.issubdtype(np.dtype(details["dtype"]), np.integer):
        return np.asarray(q, dtype=np.float32)
    scale, zero_point = _scale_zero_point(details)
    return ((np.asarray(q, np.float64) - zero_point) * scale).astype(np.float32)


def _scale_zero_point(details: Mapping) -> tuple[float, int]:
    params = details.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), dtype=np.float64)
    zeros = np.asarray(params.get("zero_points", []), dtype=np.int64)
    if scales.size == 1 and zeros.size == 1:
        return float(scales[0]), int(zeros[0])
    scale, zero = details.get("quantization", (0.0, 0))
    if scales.size > 1 or not scale:
        raise ValueError(
            f"tensor {details.get('name')!r} is integer but has no per-tensor "
            "quantization parameters"
        )
    return float(scale), int(zero)


class TFLitePredictor:
    """A `.tflite` file run by the LiteRT interpreter through a signature runner.

    Args:
      path: the `.tflite` file.
      signature: signature key; inputs are matched by the signature's input names.
      output: the output holding the class probabilities.
      raw_features: whether the model expects un-normalized features (exports do).
      num_threads: interpreter threads (None: LiteRT's default).
    """

    def __init__(
        self,
        path: str,
        *,
        signature: str = SIGNATURE,
        output: str = PROBS,
        raw_features: bool = True,
        num_threads: int | None = None,
        name: str | None = None,
    ):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=path, num_threads=num_threads)
        signatures = self._interpreter.get_signature_list()
        if signature not in signatures:
            raise KeyError(f"{path}: no signature {signature!r}; has {sorted(signatures)}")
        self._runner = self._interpreter.get_signature_runner(signature)
        self._inputs = self._runner.get_input_details()
        outputs = self._runner.get_output_details()
        self._output_name = output if output in outputs else None
        if self._output_name is None:
            if len(outputs) != 1:
                raise KeyError(f"{path}: no output {output!r}; outputs are {sorted(outputs)}")
            self._output_name = next(iter(outputs))
        self._output = outputs[self._output_name]
        self.name = name or path
        self.raw_features = raw_features
        self.input_names = tuple(sorted(self._inputs))
        fixed = {int(d["shape_signature"][0]) for d in self._inputs.values()}
        self._fixed_batch = next(iter(fixed)) if len(fixed) == 1 and min(fixed) > 0 else None

    @property
    def quantized(self) -> bool:
        """True when any input or the output is an integer tensor (full-integer model)."""
        details = [*self._inputs.values(), self._output]
        return any(np.issubdtype(np.dtype(d["dtype"]), np.integer) for d in details)

    def _run(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {n: quantize(v, self._inputs[n]) for n, v in x.items()}
        out = self._runner(**feed)[self._output_name]
        return dequantize(out, self._output)  # [B, C]

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`{rep: [B, T, F]}` raw features -> float32 `[B, C]`."""
        x = _select(features, self.input_names, self.name)
        if self._fixed_batch is None:
            return self._run(x)
        # A model exported with a fixed batch size: run in chunks of it, padding the last.
        n = len(next(iter(x.values())))
        k = self._fixed_batch
        chunks = []
        for start in range(0, n, k):
            part = {}
            for name, v in x.items():
                piece = v[start : start + k]  # [<=k, T, F]
                pad = k - len(piece)
                part[name] = (
                    np.concatenate([piece, np.zeros((pad, *v.shape[1:]), v.dtype)])
                    if pad
                    else piece
                )
            chunks.append(self._run(part)[: min(k, n - start)])
        return np.concatenate(chunks)  # [B, C]


def load_predictor(path: str, *, name: str | None = None, **kwargs):
    """A predictor for a `.keras` file, a model_dir, a SavedModel folder or a `.tflite` file."""
    if path.endswith(".tflite"):
        return TFLitePredictor(path, name=name, **kwargs)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        return SavedModelPredictor(path, name=name, **kwargs)
    if path.endswith(".keras") or os.path.exists(os.path.join(path, KERAS_MODEL_NAME)):
        return KerasPredictor.from_file(path, name=name, **kwargs)
    raise ValueError(f"{path}: not a .keras file, model_dir, SavedModel folder or .tflite file")
