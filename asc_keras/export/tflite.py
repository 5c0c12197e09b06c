"""TFLite conversion of an exported SavedModel: float32 and full-integer int8.

Input: a SavedModel folder with a `serving_default` signature (`savedmodel.py`). Output: the
bytes of a `.tflite` flatbuffer whose `serving_default` signature keeps the input and output
names.

- `convert_float`: float32 weights and activations (TFLite builtin ops only).
- `convert_int8`: full-integer quantization: int8 weights and activations
  (`TFLITE_BUILTINS_INT8` only, so an op without an int8 kernel fails the conversion instead of
  silently staying float), int8 inputs and outputs (`inference_input_type` /
  `inference_output_type`). The activation ranges come from `representative` examples: call
  it to get an iterable of `{input name: float32 [1, ...]}` RAW inputs (a seeded, class-stratified
  sample of the training split, `calibration.py`). A caller feeds an int8 input as
  `round(x / scale) + zero_point` and reads an output as `(q - zero_point) * scale`, with the
  tensor's own parameters (`verify.quantize`, `verify.dequantize`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from asc_keras.export.savedmodel import SIGNATURE

TF_INTERPRETER_WARNING = r"\s*Warning: tf.lite.Interpreter is deprecated"


def _converter(saved_model_dir: str, signature: str):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature])


def convert_float(saved_model_dir: str, *, signature: str = SIGNATURE) -> bytes:
    """float32 TFLite flatbuffer of a SavedModel signature."""
    import tensorflow as tf

    converter = _converter(saved_model_dir, signature)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def convert_int8(saved_model_dir: str,
                 representative: Callable[[], Iterable[Mapping[str, np.ndarray]]], *,
                 signature: str = SIGNATURE) -> bytes:
    """Full-integer int8 TFLite flatbuffer (int8 inputs and outputs).

    Args:
        saved_model_dir: The SavedModel folder.
        representative: Returns a fresh iterable of `{input name: float32 [1, ...]}`.
        signature: Signature key.

    Returns:
        The flatbuffer bytes.
    """
    import tensorflow as tf

    def examples():
        for example in representative():
            yield {k: np.asarray(v, np.float32) for k, v in example.items()}

    converter = _converter(saved_model_dir, signature)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = examples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():  # the calibrator runs TensorFlow's deprecated interpreter
        warnings.filterwarnings("ignore", message=TF_INTERPRETER_WARNING)
        return converter.convert()
