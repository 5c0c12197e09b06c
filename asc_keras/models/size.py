"""Model size, the two ways the paper and the challenge count it (SPEC.md section 3).

- `mib_float32`: every weight of the model (BatchNorm moving statistics included) at 4 bytes,
  in MiB (2**20 bytes): the paper's "MB" (1A CNN: 4,957,770 weights = 18.91 MiB). SPEC.md's
  "4,953,930 parameters" is the trainable count, without the 3,840 BatchNorm moving means and
  variances (`trainable_params`, 18.90 MiB); both round to the paper's 18.9 MB.
- The DCASE 2020 Task 1B rule: non-zero parameters only, BatchNorm layers excluded, bytes by
  the variable's dtype, KB = 1024 bytes; the limit is 500 KB. Zero-valued weights do not count,
  so an untrained model (zero-initialised biases) measures a little smaller than a trained one.

Input: a built `keras.Model`; output: a `SizeReport`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

DCASE_1B_LIMIT_KB = 500.0


@dataclasses.dataclass(frozen=True)
class SizeReport:
    """Sizes of one model.

    Attributes:
        params: Every weight, BatchNorm moving statistics included.
        trainable_params: Trainable weights only (1A CNN: 4,953,930).
        mib_float32: `params * 4 / 2**20` (the paper's "MB").
        dcase_params: Non-zero weights outside BatchNorm layers.
        dcase_bytes: Their bytes, by dtype.
        dcase_kb: `dcase_bytes / 1024`.
        within_1b_limit: `dcase_kb <= 500`.
    """

    params: int
    trainable_params: int
    mib_float32: float
    dcase_params: int
    dcase_bytes: int
    dcase_kb: float
    within_1b_limit: bool

    @property
    def kib_float32(self) -> float:
        return self.mib_float32 * 1024

    def __str__(self) -> str:
        return self.text()

    def text(self, *, task: str = "1b", untrained: bool = False) -> str:
        """Two lines: the float32 size, and the DCASE rule (judged against 500 KB for 1B only).

        Args:
            task: '1b' judges the 500 KB limit; another task only measures by the rule.
            untrained: Add that the rule counts non-zero values, so that a trained model (whose
                biases are no longer zero) measures a little more.
        """
        rule = (f"DCASE 2020 1B rule: {self.dcase_params:,} non-zero non-BN parameters = "
                f"{self.dcase_kb:.1f} KB")
        if task == "1b":
            limit = "within" if self.within_1b_limit else "OVER"
            rule += f" ({limit} the {DCASE_1B_LIMIT_KB:.0f} KB limit)"
        else:
            rule += f" (the {DCASE_1B_LIMIT_KB:.0f} KB limit applies to 1B models only)"
        if untrained:
            rule += ("\n  (an untrained model: the rule counts non-zero values, so the trained "
                     "model, e.g. in export.py, measures a little more)")
        return (f"weights: {self.params:,} ({self.trainable_params:,} trainable) = "
                f"{self.mib_float32:.2f} MiB float32 ({self.kib_float32:.1f} KiB)\n{rule}")


def _batchnorm_variable_ids(layer) -> set[int]:
    """ids of the variables of every BatchNormalization layer in `layer`, nested ones included."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return {id(v) for v in layer.weights}
    ids = set()
    children = list(getattr(layer, "layers", []))
    if getattr(layer, "layer", None) is not None:  # wrappers such as TimeDistributed
        children.append(layer.layer)
    for child in children:
        ids |= _batchnorm_variable_ids(child)
    return ids


def model_size(model: keras.Model) -> SizeReport:
    """Both size figures of `model` (see the module docstring)."""
    params = sum(int(np.prod(v.shape)) for v in model.weights)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    batchnorm = _batchnorm_variable_ids(model)
    dcase_params = dcase_bytes = 0
    for v in model.weights:
        if id(v) in batchnorm:
            continue
        nonzero = int(np.count_nonzero(keras.ops.convert_to_numpy(v.value)))
        dcase_params += nonzero
        dcase_bytes += nonzero * np.dtype(v.dtype).itemsize
    return SizeReport(
        params=params,
        trainable_params=trainable,
        mib_float32=params * 4 / 2**20,
        dcase_params=dcase_params,
        dcase_bytes=dcase_bytes,
        dcase_kb=dcase_bytes / 1024,
        within_1b_limit=dcase_bytes / 1024 <= DCASE_1B_LIMIT_KB,
    )
