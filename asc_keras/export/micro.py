"""The microcontroller export: an int8 file run in TensorFlow Lite for Microcontrollers (TFLM).

`export_micro(folder, trained, calibration, examples, ...)` is the `export.py --micro` stage. It
writes `<folder>/micro/model.tflite` (`MICRO_DIR`, `MICRO_MODEL`): the trained network with its
layers as trained (`rewrite.flatten_time_distributed` only, not the XNNPACK rewrites of
`rewrite.for_tflite`, whose stacked frequency neighbours made the tiny TAU 2022 model's arena
241,416 bytes instead of 43,600 and its file 15,864 bytes instead of 9,304) converted at batch
size 1, int8 in and int8 out, WITHOUT the normalization layers of `model_int8.tflite`: the
device normalizes its features with the training mean and std and quantizes them with the
input's scale and zero point (`firmware.features_record`). Batch 1 makes every shape known,
so the converter folds the shape arithmetic of a Dense over frames (SHAPE, GATHER,
REDUCE_PROD, PACK), which TFLM lacks, into constants. Then, in the `tflite-micro` package's
Python interpreter (`tflite_micro.runtime`, TFLM's reference kernels):

1. Operators: the interpreter is created with a large arena; a file with an operator TFLM has
   no kernel for is refused with one line naming the operator and the file
   (`unsupported_operator`, read from what TFLM prints while it prepares the model).
2. Arena: `arena_bytes` bisects the smallest `arena_size` the interpreter can be created with
   (it allocates every tensor, scratch buffer and persistent struct then, so an interpreter
   that was created runs). On the TAU 2022 models it equals the total TFLM's recording
   allocator prints (`print_allocations`). Measured on this machine's 64-bit build: a 32-bit
   microcontroller needs a little less (smaller pointers in the persistent structs), optimized
   kernels (CMSIS-NN) may ask for scratch buffers on top.
3. Parity on the export's parity clips (normalized, quantized with the input's parameters):
   the int8 outputs of TFLM against LiteRT's builtin kernels without the XNNPACK delegate (the
   integer arithmetic TFLM's reference kernels share) within `STEP_TOLERANCE` quantization
   steps (measured: identical; LiteRT's default XNNPACK kernels round differently, up to 2
   steps on the tiny TAU 2022 model, reported as `xnnpack_max_steps`), and LiteRT's dequantized
   outputs against the Keras model within the int8 tolerance.

When every check passed, the C array and the feature parameters are written beside the file
(`firmware.write_firmware`). It returns the report's `micro` record and the failures (one line
each).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from asc_keras import atomic
from asc_keras.export import calibration as calibration_lib
from asc_keras.export import checks, firmware, rewrite, savedmodel, serving, tflite, verify
from asc_keras.export.errors import ExportError
from asc_keras.export.staging import remove_tree
from asc_keras.inference.tflite_runner import (
    TFLiteRunner,
    make_interpreter,
    quantize,
    tflite_io,
)

MICRO_DIR = "micro"
MICRO_MODEL = "model.tflite"
STEP_TOLERANCE = 1  # largest int8 difference, in quantization steps, of TFLM from LiteRT
PROBE_ARENA = 64 * 1024 * 1024  # the arena the operator check creates the interpreter with
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """What the C++ code prints on file descriptor 2 inside the block, as lines (after it)."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def interpreter(model: bytes, arena_size: int):
    """A TFLM interpreter of `model` with a tensor arena of `arena_size` bytes.

    Raises:
        RuntimeError: TFLM could not prepare the model in that arena (or at all).
    """
    from tflite_micro import runtime

    with _captured_stderr():
        return runtime.Interpreter.from_bytes(model, arena_size=int(arena_size))


def unsupported_operator(model: bytes, path: str) -> str | None:
    """None when TFLM prepares `model` (in `PROBE_ARENA`), else one line naming the operator it
    lacks (or what it printed) and `path`."""
    from tflite_micro import runtime

    with _captured_stderr() as printed:
        try:
            runtime.Interpreter.from_bytes(model, arena_size=PROBE_ARENA)
            failed = None
        except RuntimeError as exc:
            failed = exc
    if failed is None:
        return None
    for line in printed:
        match = _MISSING_OP.search(line)
        if match:
            return (
                f"{path}: operator {match.group(1)} is not supported by TensorFlow Lite for "
                "Microcontrollers"
            )
    why = printed[0] if printed else str(failed)
    return f"{path}: TensorFlow Lite for Microcontrollers cannot prepare the model: {why}"


def arena_bytes(model: bytes, *, high: int = PROBE_ARENA) -> int:
    """The smallest tensor arena (bytes) TFLM prepares `model` in, by bisection up to `high`.

    Raises:
        RuntimeError: Not even `high` bytes are enough.
    """

    def fits(n: int) -> bool:
        try:
            interpreter(model, n)
        except RuntimeError:
            return False
        return True

    if not fits(high):
        raise RuntimeError(f"the model needs a tensor arena over {high:,} bytes")
    low = 1
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low


def network_model(model):
    """The trained network as the micro file's converter reads it: normalized features in by
    representation name, the named outputs (`probs` first), SPSMT's frame-wise Dense as one
    Dense (`rewrite.flatten_time_distributed`), every other layer as trained."""
    import keras

    inputs = {
        t.name: keras.Input(shape=tuple(t.shape[1:]), name=t.name, dtype="float32")
        for t in model.inputs
    }
    out = rewrite.flatten_time_distributed(model)(inputs)
    if not isinstance(out, Mapping):
        out = {"probs": out}
    return keras.Model(
        inputs, {n: out[n] for n in serving.output_names(model)}, name=f"{model.name}_micro"
    )


def convert(
    model, normalization: Mapping, calibration: calibration_lib.Examples, source: str
) -> bytes:
    """The micro file's bytes: batch 1, int8 in and out, calibrated on the normalized
    `calibration` clips; `source` is a temporary SavedModel folder (removed after)."""
    remove_tree(source)
    try:
        savedmodel.export_saved_model(network_model(model), source, batch_size=1)

        def representative():
            for batch in calibration.batches(batch_size=1):
                yield checks.normalized(batch, normalization)

        return tflite.convert_int8(source, representative, int8_inputs=True)
    finally:
        remove_tree(source)


def io_details(path: str) -> tuple[list[dict], list[dict]]:
    """`(inputs, outputs)` of a file in the subgraph's order (TFLM's indices), each
    `{'name' (signature name), 'index', 'shape', 'dtype', 'scale', 'zero_point', 'details'}`."""
    by_index = [{v["index"]: (k, v) for k, v in side.items()} for side in tflite_io(path)]
    interp = make_interpreter(path)
    sides = []
    for lookup, details in zip(
        by_index, (interp.get_input_details(), interp.get_output_details()), strict=True
    ):
        rows = []
        for d in details:
            name, sig = lookup[d["index"]]
            scale, zero = sig["quantization"]
            rows.append(
                {
                    "name": name,
                    "index": len(rows),
                    "shape": [int(s) for s in d["shape"]],
                    "dtype": np.dtype(d["dtype"]).name,
                    "scale": float(np.float32(scale)),
                    "zero_point": int(zero),
                    "details": sig,
                }
            )
        sides.append(rows)
    return sides[0], sides[1]


def int8_outputs(path: str, model: bytes, arena: int, quantized: Mapping) -> tuple[dict, ...]:
    """Raw int8 outputs `{name: [N, ...]}` of TFLM, LiteRT without and with XNNPACK, clip by
    clip, for int8 inputs `quantized` `{name: [N, ...]}`."""
    ins, outs = io_details(path)
    micro = interpreter(model, arena)
    runtimes = [make_interpreter(path, delegates=False), make_interpreter(path)]
    for r in runtimes:
        r.allocate_tensors()
    lite_in = [d["index"] for d in runtimes[0].get_input_details()]
    lite_out = [d["index"] for d in runtimes[0].get_output_details()]
    got: list[dict] = [{o["name"]: [] for o in outs} for _ in range(3)]
    n = len(next(iter(quantized.values())))
    for k in range(n):
        for i, d in enumerate(ins):
            x = np.ascontiguousarray(quantized[d["name"]][k : k + 1])
            micro.set_input(x, i)
            for r in runtimes:
                r.set_tensor(lite_in[i], x)
        micro.invoke()
        for r in runtimes:
            r.invoke()
        for j, o in enumerate(outs):
            got[0][o["name"]].append(np.array(micro.get_output(j)))
            for g, r in zip(got[1:], runtimes, strict=True):
                g[o["name"]].append(np.array(r.get_tensor(lite_out[j])))
    return tuple({k: np.concatenate(v) for k, v in g.items()} for g in got)


def _max_steps(a: Mapping, b: Mapping) -> int:
    return max(int(np.abs(a[k].astype(np.int64) - b[k].astype(np.int64)).max()) for k in a)


def export_micro(
    folder: str,
    trained: serving.TrainedRun,
    calibration: calibration_lib.Examples,
    examples: calibration_lib.Examples,
    *,
    int8_tolerance: float,
    log: Callable[[str], None] = print,
) -> tuple[dict, list[str]]:
    """Write `<folder>/micro/model.tflite` and check it in TFLM (see the module docstring).

    Returns:
        `(record, failures)`: the report's `micro` record (file, bytes, operators, arena bytes,
        parity) and one line per failed check (an unsupported operator: the only one).
    """
    try:
        import tflite_micro  # noqa: F401
    except ImportError as exc:
        raise ExportError(
            "--micro needs the tflite-micro package: pip install 'asc-keras[micro]'"
        ) from exc
    out_dir = os.path.join(folder, MICRO_DIR)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, MICRO_MODEL)
    model = convert(
        trained.model, trained.normalization, calibration, os.path.join(folder, "micro_source")
    )
    atomic.write_bytes(path, model)
    shown = os.path.join(MICRO_DIR, MICRO_MODEL)
    record = {
        "file": shown,
        "bytes": len(model),
        "operators": sorted({op for op, _ in tflite_ops(model)}),
        "arena_bytes": None,
        "parity": None,
        "files": [shown],
    }
    refused = unsupported_operator(model, shown)
    if refused:
        log(f"micro: {refused}")
        return record, [refused]
    record["arena_bytes"] = arena_bytes(model)
    ins, outs = io_details(path)
    norm = checks.normalized(examples.features, trained.normalization)
    quantized = {d["name"]: quantize(norm[d["name"]], d["details"]) for d in ins}
    micro_q, ref_q, xnn_q = int8_outputs(path, model, record["arena_bytes"], quantized)
    steps = _max_steps(micro_q, ref_q)
    reference = verify.keras_outputs(trained.model, norm)
    lite = TFLiteRunner(path).run(norm, batch_size=1)
    keras_check = verify.compare(
        reference, lite, tolerance=int8_tolerance, artifact=f"{shown} litert"
    )
    record["parity"] = {
        "num_examples": len(examples),
        "max_steps": steps,
        "step_tolerance": STEP_TOLERANCE,
        "reference": "litert builtin kernels (no XNNPACK)",
        "xnnpack_max_steps": _max_steps(micro_q, xnn_q),
        "keras": keras_check.to_dict(),
    }
    failures = []
    if steps > STEP_TOLERANCE:
        failures.append(f"{shown} tflite-micro vs litert: {steps} int8 steps > {STEP_TOLERANCE}")
    if not keras_check.passed:
        failures.append(
            f"{shown} litert vs keras: max |diff| {keras_check.max_abs_diff:.3g} > "
            f"{int8_tolerance:g}"
        )
    if not failures:
        written = firmware.write_firmware(
            out_dir,
            model,
            arena_bytes=record["arena_bytes"],
            inputs=ins,
            outputs=outs,
            feature_cfg=trained.feature_config,
            normalization=trained.normalization,
        )
        record["files"] += [os.path.join(MICRO_DIR, f) for f in written]
    log(
        f"micro: {shown} ({len(model):,} bytes), arena {record['arena_bytes']:,} bytes, "
        f"tflite-micro vs litert {steps} step(s), litert vs keras "
        f"{keras_check.max_abs_diff:.2g}"
    )
    return record, failures


def tflite_ops(model: bytes) -> list[tuple[str, str]]:
    """`(op name, output tensor name)` of every op of a flatbuffer (LiteRT's op listing)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    return [
        (op["op_name"], names.get(int(op["outputs"][0]), "?"))
        for op in interp._get_ops_details()  # noqa: SLF001 (the only op listing LiteRT has)
    ]
