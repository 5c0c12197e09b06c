"""Run every exported artifact on the same inputs and compare its outputs by name.

Inputs are batches `{input name: float32 [N, ...]}` (raw features `[N, T, F]`, or `waveform`
`[N, num_samples]`); every runner returns `{output name: float32 [N, ...]}`:

- `keras_outputs(model, inputs)`: a Keras model (the reference);
- `saved_model_outputs(path, inputs)`: the SavedModel's `serving_default` signature;
- `tflite_outputs(path, inputs, runtime=...)`: a `.tflite` file through its `serving_default`
  signature runner, one clip at a time (batch 1, as deployed), in the LiteRT or TensorFlow
  interpreter (`RUNTIMES`). The file runs in `asc_keras.inference.tflite_runner.TFLiteRunner`,
  the runner predict.py and evaluate.py use: integer inputs quantized and integer outputs
  dequantized with each tensor's own scale and zero point.

`compare(reference, outputs, tolerance=...)` gives a `Parity`: the largest and mean absolute
difference of every output the two share, the argmax agreement of `probs`, and whether every
output stayed within `tolerance` (an output missing from the artifact fails).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras.export.savedmodel import SIGNATURE
from asc_keras.inference.tflite_runner import RUNTIMES, TFLiteRunner

__all__ = [
    "RUNTIMES",
    "Parity",
    "agreement_by_device",
    "compare",
    "keras_outputs",
    "saved_model_outputs",
    "tflite_outputs",
]


def keras_outputs(
    model, inputs: Mapping[str, np.ndarray], *, batch_size: int = 8
) -> dict[str, np.ndarray]:
    """`{output: float32 [N, ...]}` of a Keras model (inference mode)."""
    names = [t.name for t in model.inputs]
    n = len(next(iter(inputs.values())))
    chunks: dict[str, list] = {}
    for start in range(0, n, batch_size):
        batch = {k: np.asarray(inputs[k][start : start + batch_size], np.float32) for k in names}
        out = model(batch, training=False)
        if not isinstance(out, Mapping):
            out = {"probs": out}
        for k, v in out.items():
            chunks.setdefault(k, []).append(np.asarray(v, np.float32))
    return {k: np.concatenate(v) for k, v in chunks.items()}


def saved_model_outputs(
    path: str, inputs: Mapping[str, np.ndarray], *, signature: str = SIGNATURE
) -> dict[str, np.ndarray]:
    """`{output: float32 [N, ...]}` of a SavedModel signature."""
    import tensorflow as tf

    module = tf.saved_model.load(path)
    fn = module.signatures[signature]
    names = list(fn.structured_input_signature[1])
    out = fn(**{k: tf.constant(np.asarray(inputs[k], np.float32)) for k in names})
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def tflite_outputs(
    path: str,
    inputs: Mapping[str, np.ndarray],
    *,
    runtime: str = "litert",
    num_threads: int | None = None,
    signature: str = SIGNATURE,
) -> dict[str, np.ndarray]:
    """`{output: float32 [N, ...]}` of a `.tflite` file, run clip by clip (batch 1)."""
    runner = TFLiteRunner(path, runtime=runtime, signature=signature, num_threads=num_threads)
    return runner.run(inputs, batch_size=1)


@dataclasses.dataclass(frozen=True)
class Parity:
    """Outputs of one artifact against a reference.

    Attributes:
        artifact: What was checked (e.g. `model_int8.tflite (litert)`).
        reference: What it was checked against (e.g. `keras`).
        tolerance: The largest allowed absolute difference.
        outputs: `{output: {'max_abs_diff', 'mean_abs_diff'}}` of the outputs both have.
        missing: Reference outputs the artifact lacks.
        argmax_agreement: Fraction of clips whose `probs` argmax agree (None without `probs`).
        num_examples: Clips compared.
    """

    artifact: str
    reference: str
    tolerance: float
    outputs: Mapping[str, Mapping[str, float]]
    missing: tuple[str, ...]
    argmax_agreement: float | None
    num_examples: int

    @property
    def max_abs_diff(self) -> float:
        return max((o["max_abs_diff"] for o in self.outputs.values()), default=float("inf"))

    @property
    def passed(self) -> bool:
        return not self.missing and bool(self.outputs) and self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(
            outputs={k: dict(v) for k, v in self.outputs.items()},
            missing=list(self.missing),
            max_abs_diff=self.max_abs_diff,
            passed=self.passed,
        )
        return d


def compare(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    *,
    tolerance: float,
    artifact: str,
    reference_name: str = "keras",
) -> Parity:
    """Compare `outputs` with `reference` output by output (see `Parity`)."""
    diffs = {}
    for name, ref in reference.items():
        if name not in outputs:
            continue
        got = np.asarray(outputs[name], np.float32)
        if got.shape != ref.shape:
            raise ValueError(
                f"{artifact}: output {name!r} has shape {got.shape}, {reference_name} {ref.shape}"
            )
        d = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        diffs[name] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean())}
    agreement = None
    if "probs" in reference and "probs" in outputs:
        agreement = float(
            np.mean(np.argmax(reference["probs"], -1) == np.argmax(outputs["probs"], -1))
        )
    return Parity(
        artifact=artifact,
        reference=reference_name,
        tolerance=float(tolerance),
        outputs=diffs,
        missing=tuple(n for n in reference if n not in outputs),
        argmax_agreement=agreement,
        num_examples=len(next(iter(reference.values()))),
    )


def agreement_by_device(
    reference: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], devices: Sequence[str]
) -> dict[str, dict]:
    """`{device: {'num_examples', 'argmax_agreement', 'max_abs_diff'}}` of `probs`, clips grouped
    by recording device (sorted by name)."""
    devices = np.asarray(devices, str)
    ref = np.asarray(reference["probs"], np.float64)
    got = np.asarray(outputs["probs"], np.float64)
    table = {}
    for device in sorted(set(devices.tolist())):
        rows = devices == device
        table[device] = {
            "num_examples": int(rows.sum()),
            "argmax_agreement": float(np.mean(ref[rows].argmax(-1) == got[rows].argmax(-1))),
            "max_abs_diff": float(np.abs(ref[rows] - got[rows]).max()),
        }
    return table
