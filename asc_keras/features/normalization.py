"""Per-frequency-bin mean and standard deviation of features, accumulated clip by clip.

`RunningStats(num_bins)` takes `[time, freq]` feature arrays one at a time (no clip is kept),
holds a frame count and float64 `[freq]` mean and sum of squared deviations (M2), and merges with
another instance by Chan et al.'s parallel formula, so per-worker statistics combine exactly.
It is meant for the training split only. `normalize` applies the result.
"""

from __future__ import annotations

import numpy as np

DEFAULT_STD_FLOOR = 1e-5


class RunningStats:
    """Streaming per-bin mean and population std over the frames of many `[time, freq]` arrays.

    Args:
        num_bins: the `freq` size every update must have.
        std_floor: the smallest `std` returned (guards constant bins against division by zero).
    """

    def __init__(self, num_bins: int, *, std_floor: float = DEFAULT_STD_FLOOR):
        if num_bins <= 0:
            raise ValueError(f"num_bins must be positive, got {num_bins}")
        self.num_bins = int(num_bins)
        self.std_floor = float(std_floor)
        self.count = 0
        self._mean = np.zeros(self.num_bins, np.float64)  # [freq]
        self._m2 = np.zeros(self.num_bins, np.float64)  # [freq] sum of squared deviations

    def _combine(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Chan's pairwise update with a batch of `count` frames, its `mean` and `m2` `[freq]`."""
        if count == 0:
            return
        total = self.count + count
        delta = mean - self._mean  # [freq]
        self._mean = self._mean + delta * (count / total)
        self._m2 = self._m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    def update(self, x: np.ndarray) -> None:
        """Add the frames of one feature array.

        Args:
            x: float `[time, freq]` with `freq == num_bins`; all values finite.

        Raises:
            ValueError: wrong shape or non-finite values.
        """
        if x.ndim != 2 or x.shape[1] != self.num_bins:
            raise ValueError(f"expected [time, {self.num_bins}] features, got shape {x.shape}")
        xd = np.asarray(x, dtype=np.float64)  # [time, freq]
        if not np.isfinite(xd).all():
            raise ValueError("features contain NaN or infinite values")
        mean = xd.mean(axis=0)  # [freq]
        m2 = np.square(xd - mean).sum(axis=0)  # [freq]
        self._combine(xd.shape[0], mean, m2)

    def merge(self, other: RunningStats) -> RunningStats:
        """Fold `other` (e.g. another worker's statistics) into this one; returns `self`."""
        if other.num_bins != self.num_bins:
            raise ValueError(f"cannot merge {other.num_bins} bins into {self.num_bins}")
        self._combine(other.count, other._mean, other._m2)
        return self

    def _require_data(self) -> None:
        if self.count == 0:
            raise ValueError("RunningStats has seen no frames")

    @property
    def mean(self) -> np.ndarray:
        """float64 `[freq]` per-bin mean."""
        self._require_data()
        return self._mean.copy()

    @property
    def std(self) -> np.ndarray:
        """float64 `[freq]` per-bin population std, at least `std_floor`."""
        self._require_data()
        return np.maximum(np.sqrt(self._m2 / self.count), self.std_floor)

    def to_dict(self) -> dict:
        """JSON-friendly state: count, float64 mean and M2 as lists, std floor."""
        return {
            "num_bins": self.num_bins,
            "count": self.count,
            "mean": self._mean.tolist(),
            "m2": self._m2.tolist(),
            "std_floor": self.std_floor,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunningStats:
        """Inverse of `to_dict` (exact: floats survive a JSON round trip)."""
        stats = cls(int(d["num_bins"]), std_floor=float(d["std_floor"]))
        mean = np.asarray(d["mean"], np.float64)
        m2 = np.asarray(d["m2"], np.float64)
        if mean.shape != (stats.num_bins,) or m2.shape != (stats.num_bins,):
            raise ValueError(f"mean/m2 must have {stats.num_bins} values")
        stats.count = int(d["count"])
        stats._mean, stats._m2 = mean, m2
        return stats


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardize each frequency bin: `[..., freq]` -> float32 `[..., freq]`, `(x - mean) / std`.

    Args:
        x: features, `[time, freq]` or any `[..., freq]`.
        mean: `[freq]` (e.g. `RunningStats.mean`).
        std: `[freq]`, positive (e.g. `RunningStats.std`).
    """
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    return (np.asarray(x, np.float32) - mean) / std
