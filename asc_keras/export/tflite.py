"""TFLite conversion of an exported SavedModel: float32 and full-integer int8.

Input: a SavedModel folder with a `serving_default` signature (`savedmodel.py`). Output: the
bytes of a `.tflite` flatbuffer whose `serving_default` signature keeps the input and output
names.

- `convert_float`: float32 weights and activations (TFLite builtin ops only).
- `convert_float16`: the same with float16 weights (`DEQUANTIZE`d to float32 at load).
- `convert_int8`: the network in full-integer int8 (int8 weights and activations, int8
  outputs), the input normalization in float32: the file takes the same RAW float32 features
  as the float file, runs the `<rep>_normalization` layers (`FeatureNormalization`: one `SUB`
  and one `MUL` per input) in float, and quantizes the NORMALIZED features with one `QUANTIZE`
  op per input before the first convolution. Quantizing the raw features instead (an int8
  input) puts one scale on every bin of an input: raw MFCC span hundreds of units in c0 and a
  few in the higher coefficients, so one step of the int8 grid (about 2.6 units) was most of a
  higher coefficient's standard deviation, and the int8 1A MFCC files missed the parity
  tolerance. Normalized features have about unit spread in every bin, so one grid serves all
  of them. Every op after the normalization must run in int8: an op without an int8 kernel
  fails the conversion (`Int8ConversionError`) instead of silently staying float.
  The activation ranges come from `representative` examples: call it to get an iterable of
  `{input name: float32 [1, ...]}` RAW inputs (a seeded, class-stratified sample of the
  training split, `calibration.py`). A caller reads an int8 output as
  `(q - zero_point) * scale` with the tensor's own parameters (`tflite_runner.dequantize`;
  `tflite_runner.quantize` passes float inputs through).

  TensorFlow offers no public switch that keeps chosen ops in float, so `convert_int8` takes
  the converter's own steps with one change: calibrate (`_experimental_calibrate_only`),
  quantize with the normalization ops denylisted (`tf.lite.python.convert.mlir_quantize`, as
  `TFLiteConverter` calls it, plus `denylisted_nodes`), then make the outputs int8
  (`tf.lite.python.util.modify_model_io_type`, also what the converter calls).

  A QAT model's ranges (`ranges=`, `asc_keras.quantize.build.activation_ranges`) replace the
  calibrated `[min, max]` of the tensors their layers output (`with_ranges`) before quantizing.

Both files keep only the last `TENSOR_NAME_PARTS` scopes of every tensor name, and of a name
the converter fused from the ops it merged (`a/b/Relu;a/b/add;a/c/convolution`) only the first,
the op whose result the tensor is (`short_tensor_names`: `ef_block3_relu1_1/Relu` instead of
`asc_1b_ef_spsmt_serving_1/asc_1b_ef_spsmt_1/ef_block3_relu1_1/Relu;...batchnorm/add_1;...`).
The names are for people reading the file; the signature finds its tensors by index. The long
names made 8 of the trained int8 1B EF + SPSMT file's 154 KB.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from asc_keras.errors import AscError
from asc_keras.export.savedmodel import SIGNATURE
from asc_keras.inference.tflite_runner import TF_INTERPRETER_WARNING

NORMALIZATION_MARK = "_normalization"  # in the names of serving.py's FeatureNormalization layers
# Ops of a quantized file that compute in float32 and still count as "full-integer": the
# normalization (SUB, MUL; DIV where the converter keeps one) and the float -> int8 conversion.
FLOAT_NORMALIZATION_OPS = ("SUB", "MUL", "DIV")
TENSOR_NAME_PARTS = 2  # scopes kept per tensor name: the layer and its op


class Int8ConversionError(AscError, RuntimeError):
    """An op of the network has no int8 kernel (it would run in float32)."""


def _converter(saved_model_dir: str, signature: str):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature])


def short_tensor_names(model: bytes) -> bytes:
    """`model` with every tensor name cut to the last `TENSOR_NAME_PARTS` scopes of its first
    `;`-separated part. Everything else (weights, quantization, signatures, metadata) is kept."""
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    for subgraph in flat.subgraphs:
        for tensor in subgraph.tensors:
            if tensor.name:
                name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
                first = name.split(";")[0]
                tensor.name = "/".join(first.split("/")[-TENSOR_NAME_PARTS:]).encode()
    return flatbuffer_utils.convert_object_to_bytearray(flat)


def convert_float(saved_model_dir: str, *, signature: str = SIGNATURE) -> bytes:
    """float32 TFLite flatbuffer of a SavedModel signature."""
    import tensorflow as tf

    converter = _converter(saved_model_dir, signature)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return short_tensor_names(converter.convert())


def convert_float16(saved_model_dir: str, *, signature: str = SIGNATURE) -> bytes:
    """TFLite flatbuffer of a SavedModel signature with float16 weights (2 bytes each), float32
    inputs, activations and outputs: the converter's float16 quantization
    (`target_spec.supported_types = [tf.float16]`). Each weight is stored in float16 and
    widened to float32 by a `DEQUANTIZE` op once, when the interpreter prepares the model."""
    import tensorflow as tf

    converter = _converter(saved_model_dir, signature)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return short_tensor_names(converter.convert())


def _tensor_names(model: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    return [d["name"] for d in Interpreter(model_content=model).get_tensor_details()]


def float_ops(model: bytes) -> list[tuple[str, str]]:
    """`(op name, output tensor name)` of every op of a flatbuffer that computes in float32.

    DEQUANTIZE (which feeds float outputs) and QUANTIZE (float -> int8) are not counted.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 (the only op listing LiteRT has)
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(np.dtype(t) == np.float32 for t in op["result_types"]):
            found.append((op["op_name"], names.get(int(op["outputs"][0]), "?")))
    return found


def tensor_layers(name: str) -> set[str]:
    """The Keras layers a calibrated tensor's name may come from: every scope of its first
    `;`-part without Keras's call suffix `_<n>` and the rewrite's `_dw`
    (`m_1/b_pool_dw_1/depthwise;...` -> {'m', 'b_pool'})."""
    out = set()
    for scope in name.split(";")[0].split("/")[:-1]:
        layer = re.sub(r"_\d+$", "", scope)
        out.add(layer[: -len("_dw")] if layer.endswith("_dw") else layer)
    return out


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else (name or "")


def _layer_outputs(subgraph, outputs: Mapping[int, str], wanted: set[str]):
    """`(tensor index, layer)` of every tensor a layer in `wanted` outputs (see `with_ranges`);
    `outputs` names the subgraph's signature outputs."""
    names = [_text(t.name) for t in subgraph.tensors]

    def layers_of(t: int) -> set[str]:
        return tensor_layers(names[t]) | ({outputs[t]} if t in outputs else set())

    op_layers = [
        layers_of(op.outputs[0]) if len(op.outputs) else set() for op in subgraph.operators
    ]
    readers: dict[int, list[int]] = {}
    for i, op in enumerate(subgraph.operators):
        for t in op.inputs:
            readers.setdefault(int(t), []).append(i)
    for op in subgraph.operators:
        for t in op.outputs:
            for layer in layers_of(int(t)) & wanted:
                if not any(layer in op_layers[r] for r in readers.get(int(t), [])):
                    yield int(t), layer


def with_ranges(calibrated: bytes, ranges: Mapping[str, tuple[float, float]]) -> bytes:
    """A calibrated flatbuffer whose recorded `[min, max]` of each layer's OUTPUT tensors (made
    inside the layer's scope, or the signature output of the layer's name, and read by no op
    of that layer) are replaced by `ranges[layer]` (a QAT model's tracked ranges,
    `asc_keras.quantize`).

    Raises:
        Int8ConversionError: A range names no tensor of the graph.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    used = set()
    for k, subgraph in enumerate(flat.subgraphs):
        outputs = {
            int(out.tensorIndex): _text(out.name)
            for signature in flat.signatureDefs or []
            if signature.subgraphIndex == k
            for out in signature.outputs or []
        }
        for t, layer in list(_layer_outputs(subgraph, outputs, set(ranges))):
            q = subgraph.tensors[t].quantization
            if q is None or q.min is None or len(q.min) != 1:
                continue
            lo, hi = ranges[layer]
            q.min, q.max = [float(lo)], [float(hi)]
            used.add(layer)
    unused = sorted(set(ranges) - used)
    if unused:
        raise Int8ConversionError(
            f"{len(unused)} QAT range(s) match no tensor of the converted graph, first "
            f"{unused[0]!r}"
        )
    return bytes(flatbuffer_utils.convert_object_to_bytearray(flat))


def convert_int8(
    saved_model_dir: str,
    representative: Callable[[], Iterable[Mapping[str, np.ndarray]]],
    *,
    signature: str = SIGNATURE,
    int8_inputs: bool = False,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> bytes:
    """int8 TFLite flatbuffer: float32 raw inputs normalized in float, int8 network and outputs.

    Args:
        saved_model_dir: The SavedModel folder (raw features in, `<rep>_normalization` layers).
        representative: Returns a fresh iterable of `{input name: float32 [1, ...]}`.
        signature: Signature key.
        int8_inputs: int8 inputs too (for a SavedModel without normalization layers, whose
            inputs the caller normalizes and quantizes: the microcontroller file, `micro.py`).
        ranges: `{layer name: (min, max)}` that replace the calibrated ranges of the tensors
            those layers produce (a QAT model's tracked ranges, `with_ranges`); None: calibrated.

    Returns:
        The flatbuffer bytes.

    Raises:
        Int8ConversionError: An op other than the normalization would compute in float32.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert
    from tensorflow.lite.python import util as tflite_util

    def examples():
        for example in representative():
            yield {k: np.asarray(v, np.float32) for k, v in example.items()}

    converter = _converter(saved_model_dir, signature)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = examples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_calibrate_only = True  # noqa: SLF001 (see the module docstring)
    with warnings.catch_warnings():  # the calibrator runs TensorFlow's deprecated interpreter
        warnings.filterwarnings("ignore", message=TF_INTERPRETER_WARNING)
        calibrated = converter.convert()  # float32 ops, activation ranges recorded
    if ranges:
        calibrated = with_ranges(calibrated, ranges)
    keep_float = [n for n in _tensor_names(calibrated) if NORMALIZATION_MARK in n]
    quantized = tflite_convert.mlir_quantize(calibrated, denylisted_nodes=keep_float)
    stray = [
        (op, name)
        for op, name in float_ops(quantized)
        if op not in FLOAT_NORMALIZATION_OPS or NORMALIZATION_MARK not in name
    ]
    if stray:
        raise Int8ConversionError(
            f"{saved_model_dir}: {len(stray)} op(s) have no int8 kernel and would run in "
            f"float32, first {stray[0][0]} ({stray[0][1]})"
        )
    return short_tensor_names(  # int8 outputs (and inputs)
        tflite_util.modify_model_io_type(quantized, tf.int8 if int8_inputs else tf.float32, tf.int8)
    )
