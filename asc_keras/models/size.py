"""Model size, the two ways the paper counts it.

- `mib_float32`: every weight of the model (BatchNorm moving statistics included) at 4 bytes,
  in MiB (2**20 bytes): the paper's "MB" (1A CNN: 4,957,770 weights = 18.91 MiB). The
  4,953,930 parameters often quoted are the trainable count, without the 3,840 BatchNorm moving
  means and variances (`trainable_params`, 18.90 MiB); both round to the paper's 18.9 MB.
- The DCASE 2020 Task 1B count (the paper's 1B "KB"): non-zero parameters only, BatchNorm layers
  excluded, bytes by the variable's dtype, KB = 1024 bytes; the limit is 500 KB = 512,000
  bytes (`tasks.LIMITS_2020_1B`). Zero-valued weights do not count, so an untrained model
  (zero-initialised biases) measures a little smaller than a trained one.

A task's own complexity rule, with its verdicts, is applied by `asc_keras.models.rules`.

Input: a built `keras.Model`; output: a `SizeReport`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from asc_keras.models import complexity
from asc_keras.tasks import LIMITS_2020_1B

DCASE_1B_LIMIT_KB = LIMITS_2020_1B.limit_in_unit  # 500 (KB = 1024 bytes)


@dataclasses.dataclass(frozen=True)
class SizeReport:
    """Sizes of one model.

    Attributes:
        params: Every weight, BatchNorm moving statistics included.
        trainable_params: Trainable weights only (1A CNN: 4,953,930).
        mib_float32: `params * 4 / 2**20` (the paper's "MB").
        dcase_params: Non-zero weights outside BatchNorm layers.
        dcase_bytes: Their bytes, by dtype.
        dcase_kb: `dcase_bytes / 1024` (the 2020 rule's KB).
        within_1b_limit: `dcase_bytes <= 512,000`.
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

    def text(self) -> str:
        """One line: every weight, and their float32 size."""
        return (
            f"weights: {self.params:,} ({self.trainable_params:,} trainable) = "
            f"{self.params * 4:,} bytes float32 = {self.mib_float32:.2f} MiB "
            f"({self.kib_float32:.1f} KiB)"
        )


def model_size(model: keras.Model) -> SizeReport:
    """Both size figures of `model` (see the module docstring)."""
    params = sum(int(np.prod(v.shape)) for v in model.weights)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    dcase = complexity.parameter_memory(
        model,
        LIMITS_2020_1B.dtype,
        count_batchnorm=LIMITS_2020_1B.count_batchnorm,
        count_zeros=LIMITS_2020_1B.count_zeros,
    )
    return SizeReport(
        params=params,
        trainable_params=trainable,
        mib_float32=params * 4 / 2**20,
        dcase_params=dcase["params"],
        dcase_bytes=dcase["bytes"],
        dcase_kb=dcase["bytes"] / LIMITS_2020_1B.unit_bytes,
        within_1b_limit=dcase["bytes"] <= LIMITS_2020_1B.max_bytes,
    )
