"""Decision-level fusion: the mean of several systems' class probabilities (paper eq. 3).

SPSMR averages the softmax outputs of the four single-representation CNNs,
`y = (y1 + y2 + y3 + y4) / 4`; the same mean fuses SPSMF bands (eq. 4), SPSMT frames (eq. 5)
and whole systems (SPSMR + SPSMF + SPSMT). `fuse_probs([probs_1 [N, C], ...]) -> [N, C]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fuse_probs(
    probs: Sequence[np.ndarray], *, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Average of `K` probability arrays of equal shape.

    Args:
      probs: `K` float arrays `[N, C]` (the same clips in the same order).
      weights: optional `K` non-negative weights (normalised to sum 1); default equal weights,
        which is the paper's fusion.

    Returns:
      float32 `[N, C]`.
    """
    if not probs:
        raise ValueError("nothing to fuse")
    arrays = [np.asarray(p, dtype=np.float64) for p in probs]  # K x [N, C]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"cannot fuse probabilities of different shapes {sorted(shapes)}")
    stacked = np.stack(arrays)  # [K, N, C]
    if weights is None:
        return stacked.mean(axis=0).astype(np.float32)  # [N, C]
    w = np.asarray(weights, dtype=np.float64)  # [K]
    if w.shape != (len(arrays),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"need {len(arrays)} non-negative weights, got {list(weights)}")
    return np.tensordot(w / w.sum(), stacked, axes=1).astype(np.float32)  # [N, C]
