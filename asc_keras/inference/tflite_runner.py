"""Running a `.tflite` file: the one home of the interpreter, its signature and int8 tensors.

`TFLiteRunner(path, runtime=..., signature=..., num_threads=...)` opens a file in the LiteRT
interpreter (`ai_edge_litert.interpreter.Interpreter`, `runtime='litert'`) or TensorFlow's own
(`tf.lite.Interpreter`, deprecated in TF 2.21 but still shipped, `runtime='tensorflow'`) and
runs it through a signature runner, so inputs and outputs are matched by name:

    runner.run({input name: float32 [N, ...]}, batch_size=...) -> {output name: float32 [N, ...]}

Integer (int8/uint8) inputs are quantized and integer outputs dequantized with each tensor's own
scale and zero point (`quantize`, `dequantize`). The batch loop runs `batch_size` examples per
call (all at once when None); a file exported with a fixed batch size runs in chunks of it, the
last chunk zero-padded and its padding dropped from the outputs.

`make_interpreter` and `tflite_io` give the raw interpreter and a signature's tensor details for
callers that inspect a file. The evaluation predictor (`predictors.TFLitePredictor`), predict.py
and the export's parity checks (`asc_keras.export.verify`) all run files through this module.
LiteRT and TensorFlow are imported lazily.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

SIGNATURE = "serving_default"
RUNTIMES = ("litert", "tensorflow")
# What TensorFlow's interpreter prints (as a warning) each time one is created.
TF_INTERPRETER_WARNING = r"\s*Warning: tf.lite.Interpreter is deprecated"


def make_interpreter(
    path: str, *, runtime: str = "litert", num_threads: int | None = None, delegates: bool = True
):
    """A TFLite interpreter of `path` in the LiteRT or the TensorFlow runtime.

    `delegates=False` (LiteRT only): the builtin kernels without the default XNNPACK delegate,
    the integer arithmetic TensorFlow Lite Micro's reference kernels share (`export.micro`).
    """
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if not delegates:
            return Interpreter(
                model_path=path,
                num_threads=num_threads,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        return Interpreter(model_path=path, num_threads=num_threads)
    if runtime == "tensorflow":
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TF_INTERPRETER_WARNING)
            return tf.lite.Interpreter(model_path=path, num_threads=num_threads)
    raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")


def tflite_io(path: str, *, signature: str = SIGNATURE) -> tuple[dict, dict]:
    """`(input details, output details)` by name of a `.tflite` signature (LiteRT)."""
    runner = make_interpreter(path).get_signature_runner(signature)
    return runner.get_input_details(), runner.get_output_details()


def _is_integer(details: Mapping) -> bool:
    return np.issubdtype(np.dtype(details["dtype"]), np.integer)


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
    if not _is_integer(details):
        return np.asarray(q, dtype=np.float32)
    scale, zero_point = _scale_zero_point(details)
    return ((np.asarray(q, np.float64) - zero_point) * scale).astype(np.float32)


class TFLiteRunner:
    """One `.tflite` signature, fed and read by tensor name.

    Args:
      path: the `.tflite` file.
      runtime: 'litert' or 'tensorflow' (`RUNTIMES`).
      signature: signature key.
      num_threads: interpreter threads (None: the runtime's default).

    Raises:
      KeyError: the file has no such signature.
    """

    def __init__(
        self,
        path: str,
        *,
        runtime: str = "litert",
        signature: str = SIGNATURE,
        num_threads: int | None = None,
    ):
        self.path = path
        self.runtime = runtime
        self.interpreter = make_interpreter(path, runtime=runtime, num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if signature not in signatures:
            raise KeyError(f"{path}: no signature {signature!r}; has {sorted(signatures)}")
        self._runner = self.interpreter.get_signature_runner(signature)
        self.input_details = self._runner.get_input_details()  # {name: details}
        self.output_details = self._runner.get_output_details()  # {name: details}
        fixed = {int(d["shape_signature"][0]) for d in self.input_details.values()}
        # The batch size the file was exported with, or None when the batch dimension is free.
        self.fixed_batch = next(iter(fixed)) if len(fixed) == 1 and min(fixed) > 0 else None

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.input_details))

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.output_details))

    @property
    def quantized(self) -> bool:
        """True when any input or output is an integer tensor (full-integer model)."""
        return any(
            _is_integer(d) for d in (*self.input_details.values(), *self.output_details.values())
        )

    def output_name(self, wanted: str) -> str:
        """`wanted` when the file has that output, else its only output.

        Raises:
          KeyError: neither (several outputs, none named `wanted`).
        """
        if wanted in self.output_details:
            return wanted
        if len(self.output_details) == 1:
            return next(iter(self.output_details))
        raise KeyError(f"{self.path}: no output {wanted!r}; outputs are {self.output_names}")

    def _call(self, feed: Mapping[str, np.ndarray], names: Sequence[str]) -> dict:
        q = {n: quantize(v, self.input_details[n]) for n, v in feed.items()}
        out = self._runner(**q)
        return {n: dequantize(out[n], self.output_details[n]) for n in names}

    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        outputs: Sequence[str] | None = None,
        batch_size: int | None = None,
    ) -> dict[str, np.ndarray]:
        """`{output: float32 [N, ...]}` of `{input: float32 [N, ...]}`.

        Args:
          inputs: every input of the signature by name (more are ignored).
          outputs: the outputs to return (None: all).
          batch_size: examples per interpreter call (None: all at once); a file with a fixed
            batch size always runs in chunks of it.

        Raises:
          KeyError: an input of the signature is missing.
        """
        missing = [n for n in self.input_details if n not in inputs]
        if missing:
            raise KeyError(f"{self.path}: needs inputs {missing}, got {sorted(inputs)}")
        names = tuple(outputs) if outputs is not None else tuple(self.output_details)
        x = {n: np.asarray(inputs[n], np.float32) for n in self.input_details}
        n = len(next(iter(x.values())))
        step = self.fixed_batch or batch_size
        if step is None or (n == step and self.fixed_batch is None):
            return self._call(x, names)
        chunks: dict[str, list] = {k: [] for k in names}
        for start in range(0, n, step):
            part = {}
            for name, v in x.items():
                piece = v[start : start + step]  # [<=step, ...]
                pad = step - len(piece) if self.fixed_batch else 0
                part[name] = (
                    np.concatenate([piece, np.zeros((pad, *v.shape[1:]), v.dtype)])
                    if pad
                    else piece
                )
            got = self._call(part, names)
            for k in names:
                chunks[k].append(got[k][: min(step, n - start)])
        return {k: np.concatenate(v) for k, v in chunks.items()}
