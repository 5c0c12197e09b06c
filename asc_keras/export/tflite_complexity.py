"""Complexity of a deployed `.tflite` file, counted from the file itself: per-op MACs,
parameter bytes and the peak activation memory (tensor arena) of a sequential interpreter.

Reads the flatbuffer with the TFLite schema shipped by `ai_edge_litert`
(`schema_py_generated`, generated flatbuffers code; no interpreter, no TensorFlow, no Keras).
Input: the bytes or path of a `.tflite` file; output: a `FileComplexity` (rows, totals), its
table (`table_lines`); `export.file_rule` judges it by a task's complexity rule.
Counted per example, on the file's static shapes (its batch dimension is 1; the output of a
`RESHAPE` that folds the batch with another axis takes its input's size).

- MACs, as `asc_keras.models.complexity` counts the Keras model: `CONV_2D` `out elements *
  kh * kw * in_channels / groups`, `DEPTHWISE_CONV_2D` `out elements * kh * kw`,
  `FULLY_CONNECTED` `out elements * in_units`, `BATCH_MATMUL` `out elements * K`; every other
  op (pooling, `MEAN`, `ADD`, `MUL`, activations, reshapes, quantize) 0. The export rewrites
  each 2D average pool into a depthwise convolution of weights `1 / pool size`
  (`export.rewrite`), so a file counts `pool size` MACs per pooled value where the Keras count
  has 0 (`tests/test_tflite_complexity.py` checks that difference for every flagfile).
- Parameters: the constant tensors an op reads (weights, biases, the normalization's mean and
  1 / std; a float16 weight read through a `DEQUANTIZE` counts as the float16 constant). An
  int32 / int64 constant other than a bias (reshape shapes, transpose permutations, slice
  bounds, axes) is index data, totalled as `index_bytes`, not a parameter. A buffer shared by
  several tensors or ops counts once, at the first op that reads it. Bytes are each buffer's
  stored bytes (an int8 file: int8 weights, int32 biases, float32 normalization constants),
  the way NeSsi (the DCASE 2022 checker, from `eliberis/tflite-tools`) measured files.
- Peak arena: every non-constant tensor (inputs, activations, outputs) lives from the op that
  produces it (the subgraph's inputs: from the first op) to the last op that reads it (its
  outputs: to the last op). At op `i` the live bytes are the sum over tensors live at `i` (its
  inputs and outputs included); the peak is their maximum over ops in execution order. Scratch
  buffers of kernels (im2col) and a planner's reuse of freed gaps within one op are not
  modelled; the float32 copies of a float16 file's weights (made once, at load, by its
  `DEQUANTIZE` ops) are reported apart (`dequantized_bytes`), not in the arena.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from ai_edge_litert import schema_py_generated as schema

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if isinstance(v, int)}
TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if isinstance(v, int)}
TYPE_BYTES = {"int4": 0.5, "bool": 1, "string": 1}
BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
INDEX_TYPES = ("int32", "int64")
# Ops whose first output holds as many values as their first input: a tensor they make gets
# its size from that input (a RESHAPE to `[-1, units]` folds the batch with the frames, and the
# file stores 1 for the -1).
SAME_SIZE = (
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "QUANTIZE",
    "DEQUANTIZE",
    "RELU",
    "RELU6",
    "LOGISTIC",
    "TANH",
    "SOFTMAX",
    "HARD_SWISH",
)


@dataclasses.dataclass(frozen=True)
class OpRow:
    """One op of the file, in execution order.

    Attributes:
        index: Its position in the subgraph.
        kind: The builtin op name (`CONV_2D`).
        output: The name of its first output tensor.
        macs: Multiply-accumulates per example.
        params: Parameters first read here.
        param_bytes: Their stored bytes.
        live_bytes: Bytes of the non-constant tensors live while it runs.
    """

    index: int
    kind: str
    output: str
    macs: int
    params: int
    param_bytes: int
    live_bytes: int


@dataclasses.dataclass(frozen=True)
class FileComplexity:
    """The file's counts (see the module docstring).

    Attributes:
        rows: One `OpRow` per op of subgraph 0.
        macs, params, param_bytes: Their totals.
        nonzero_params, nonzero_bytes: The same, of the non-zero parameter values only.
        bytes_by_dtype: `{dtype: parameter bytes}`.
        index_bytes: Bytes of the constant index data (shapes, axes, permutations).
        peak_arena_bytes: The largest `live_bytes`.
        peak_op: The index of the op where it occurs.
        dequantized_bytes: float32 copies of float16 constants (`DEQUANTIZE` at load).
        precision: 'int8' (int8 weights), 'float16' (float16 weights) or 'float32'.
    """

    rows: tuple[OpRow, ...]
    macs: int
    params: int
    param_bytes: int
    nonzero_params: int
    nonzero_bytes: int
    bytes_by_dtype: Mapping[str, int]
    index_bytes: int
    peak_arena_bytes: int
    peak_op: int
    dequantized_bytes: int
    precision: str

    def to_dict(self) -> dict:
        """JSON-ready (rows as lists of dicts)."""
        out = dataclasses.asdict(self)
        out["bytes_by_dtype"] = dict(self.bytes_by_dtype)
        out["rows"] = [dataclasses.asdict(r) for r in self.rows]
        return out


def from_dict(d: Mapping) -> FileComplexity:
    """The `FileComplexity` of `FileComplexity.to_dict()` (e.g. read back from a report)."""
    fields = dict(d)
    fields["rows"] = tuple(OpRow(**r) for r in d["rows"])
    return FileComplexity(**fields)


def _type_name(code: int) -> str:
    return TYPE_NAMES.get(code, f"type{code}")


def _itemsize(name: str) -> float:
    if name in TYPE_BYTES:
        return TYPE_BYTES[name]
    try:
        return np.dtype(name).itemsize
    except TypeError:
        return 1


class _Graph:
    """Subgraph 0 of a flatbuffer: tensors, buffers and ops as plain Python values."""

    def __init__(self, content: bytes):
        model = schema.Model.GetRootAs(content, 0)
        graph = model.Subgraphs(0)
        self.content = content
        self.codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            self.codes.append(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        self.tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
        self.ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
        self.inputs = [int(i) for i in graph.InputsAsNumpy()]
        self.outputs = [int(i) for i in graph.OutputsAsNumpy()]
        self.model = model

    def kind(self, op) -> str:
        code = self.codes[op.OpcodeIndex()]
        return OP_NAMES.get(code, f"OP{code}")

    @staticmethod
    def op_inputs(op) -> list[int]:
        return [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []

    @staticmethod
    def op_outputs(op) -> list[int]:
        return [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []

    def shape(self, t: int) -> tuple[int, ...]:
        tensor = self.tensors[t]
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def dtype(self, t: int) -> str:
        return _type_name(self.tensors[t].Type())

    def name(self, t: int) -> str:
        name = self.tensors[t].Name()
        return name.decode() if name else ""

    def data(self, t: int) -> bytes | None:
        """The stored bytes of a constant tensor; None for a tensor without data."""
        index = self.tensors[t].Buffer()
        if index <= 0:
            return None
        buffer = self.model.Buffers(index)
        if buffer.Offset() > 1:  # a file over 2 GB keeps buffers after the flatbuffer
            return bytes(self.content[buffer.Offset() : buffer.Offset() + buffer.Size()])
        if buffer.DataLength() == 0:
            return None
        return buffer.DataAsNumpy().tobytes()


def _nonzero(data: bytes, dtype: str, n: int) -> int:
    """Non-zero values among the `n` stored in `data` (all `n` for a dtype NumPy lacks)."""
    try:
        values = np.frombuffer(data, np.dtype(dtype))
    except TypeError:
        return n
    return int(np.count_nonzero(values)) if values.size == n else n


def _elements(shape: Sequence[int]) -> int:
    return int(np.prod([max(d, 1) for d in shape], dtype=np.int64)) if shape else 1


def _sizes(g: _Graph) -> dict[int, int]:
    """`{tensor: values per example}`: the stored shape's, or for the output of a `SAME_SIZE`
    op or of `FULLY_CONNECTED` the count implied by its input."""
    sizes = {t: _elements(g.shape(t)) for t in range(len(g.tensors))}
    for op in g.ops:
        kind, ins, outs = g.kind(op), g.op_inputs(op), g.op_outputs(op)
        if not ins or not outs or ins[0] < 0:
            continue
        if kind in SAME_SIZE:
            sizes[outs[0]] = sizes[ins[0]]
        elif kind == "FULLY_CONNECTED":
            units, in_units = g.shape(ins[1])
            sizes[outs[0]] = sizes[ins[0]] // in_units * units
    return sizes


def _op_macs(g: _Graph, op, kind: str, sizes: Mapping[int, int]) -> int:
    ins, outs = g.op_inputs(op), g.op_outputs(op)
    if not outs or not ins:
        return 0
    out = sizes[outs[0]]
    if kind == "CONV_2D":
        _, kh, kw, cin = g.shape(ins[1])  # [out_channels, kh, kw, in_channels / groups]
        return out * kh * kw * cin
    if kind == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = g.shape(ins[1])  # [1, kh, kw, channels * multiplier]
        return out * kh * kw
    if kind == "FULLY_CONNECTED":
        return out * g.shape(ins[1])[-1]  # weights [units, in_units]
    if kind == "BATCH_MATMUL":
        table = op.BuiltinOptions()
        adj_x = False
        if table is not None:
            options = schema.BatchMatMulOptions()
            options.Init(table.Bytes, table.Pos)
            adj_x = bool(options.AdjX())
        x = g.shape(ins[0])
        return out * (x[-2] if adj_x else x[-1])
    return 0


def _dequantized_constants(g: _Graph) -> dict[int, int]:
    """`{DEQUANTIZE output: its constant input}` (a float16 file's weights)."""
    out = {}
    for op in g.ops:
        ins, outs = g.op_inputs(op), g.op_outputs(op)
        if g.kind(op) == "DEQUANTIZE" and ins and outs and g.data(ins[0]) is not None:
            out[outs[0]] = ins[0]
    return out


def _precision(g: _Graph) -> str:
    weights = set()
    for op in g.ops:
        kind = g.kind(op)
        if kind in BIAS_INPUT or kind == "DEQUANTIZE":
            ins = g.op_inputs(op)
            slot = 0 if kind == "DEQUANTIZE" else 1
            if len(ins) > slot and ins[slot] >= 0 and g.data(ins[slot]) is not None:
                weights.add(g.dtype(ins[slot]))
    for name in ("int8", "float16"):
        if name in weights:
            return name
    return "float32"


def analyze(model: bytes | str) -> FileComplexity:
    """Per-op MACs, parameter bytes and live bytes of a `.tflite` file (bytes or a path)."""
    if isinstance(model, str):
        with open(model, "rb") as f:
            model = f.read()
    g = _Graph(bytes(model))
    values = _sizes(g)
    dequantized = _dequantized_constants(g)
    last_op = len(g.ops) - 1
    constant = {t for t in range(len(g.tensors)) if g.data(t) is not None} | set(dequantized)
    start = {t: 0 for t in g.inputs}
    end = {t: last_op for t in g.outputs}
    for i, op in enumerate(g.ops):
        for t in g.op_outputs(op):
            start.setdefault(t, i)
        for t in g.op_inputs(op):
            if t >= 0:
                end[t] = max(end.get(t, i), i)
    live = [t for t in start if t not in constant]
    sizes = {t: int(values[t] * _itemsize(g.dtype(t))) for t in live}
    seen_buffers: set[int] = set()
    by_dtype: dict[str, int] = {}
    totals = {"params": 0, "bytes": 0, "nz_params": 0, "nz_bytes": 0, "index": 0}
    rows = []
    for i, op in enumerate(g.ops):
        kind = g.kind(op)
        params = param_bytes = 0
        if kind != "DEQUANTIZE" or g.op_outputs(op)[0] not in dequantized:
            for slot, t in enumerate(g.op_inputs(op)):
                if t < 0 or t not in constant:
                    continue
                source = dequantized.get(t, t)
                buffer = g.tensors[source].Buffer()
                if buffer in seen_buffers:
                    continue
                seen_buffers.add(buffer)
                data, dtype = g.data(source), g.dtype(source)
                if dtype in INDEX_TYPES and BIAS_INPUT.get(kind) != slot:
                    totals["index"] += len(data)
                    continue
                n = _elements(g.shape(source))
                nz = _nonzero(data, dtype, n)
                params += n
                param_bytes += len(data)
                totals["nz_params"] += nz
                totals["nz_bytes"] += int(round(len(data) * nz / max(n, 1)))
                by_dtype[dtype] = by_dtype.get(dtype, 0) + len(data)
        totals["params"] += params
        totals["bytes"] += param_bytes
        outs = g.op_outputs(op)
        rows.append(
            OpRow(
                index=i,
                kind=kind,
                output=g.name(outs[0]) if outs else "",
                macs=_op_macs(g, op, kind, values),
                params=params,
                param_bytes=param_bytes,
                live_bytes=sum(sizes[t] for t in live if start[t] <= i <= end.get(t, i)),
            )
        )
    peak = max(rows, key=lambda r: r.live_bytes) if rows else None
    return FileComplexity(
        rows=tuple(rows),
        macs=sum(r.macs for r in rows),
        params=totals["params"],
        param_bytes=totals["bytes"],
        nonzero_params=totals["nz_params"],
        nonzero_bytes=totals["nz_bytes"],
        bytes_by_dtype=dict(sorted(by_dtype.items())),
        index_bytes=totals["index"],
        peak_arena_bytes=peak.live_bytes if peak else 0,
        peak_op=peak.index if peak else -1,
        dequantized_bytes=sum(
            _elements(g.shape(t)) * int(_itemsize(g.dtype(t))) for t in dequantized
        ),
        precision=_precision(g),
    )


def table_lines(fc: FileComplexity, *, title: str = "") -> list[str]:
    """The per-op table, the totals and the peak arena, as printable lines."""
    header = f"{'op':>4s}  {'kind':22s} {'MACs':>13s} {'params':>9s} {'param bytes':>12s}  output"
    lines = [f"{title} ({fc.precision} weights)" if title else f"({fc.precision} weights)"]
    lines += [header, "-" * (len(header) + 20)]
    for r in fc.rows:
        lines.append(
            f"{r.index:>4d}  {r.kind:22s} {r.macs:>13,} {r.params:>9,} {r.param_bytes:>12,}  "
            f"{r.output}"
        )
    by_dtype = ", ".join(f"{d} {b:,}" for d, b in fc.bytes_by_dtype.items())
    lines += [
        f"{'':4s}  {'total':22s} {fc.macs:>13,} {fc.params:>9,} {fc.param_bytes:>12,}",
        f"parameters: {fc.params:,} = {fc.param_bytes:,} bytes as stored ({by_dtype}); "
        f"index data {fc.index_bytes:,} bytes (not counted)",
        f"multiply-accumulates: {fc.macs:,} per example ({fc.macs / 1e6:.2f} M)",
        f"peak activation memory: {fc.peak_arena_bytes:,} bytes at op {fc.peak_op} "
        "(sequential interpreter: each non-constant tensor live from its producer to its last "
        "reader)",
    ]
    if fc.dequantized_bytes:
        lines.append(
            f"float32 copies of float16 weights made at load: {fc.dequantized_bytes:,} bytes"
        )
    return lines
