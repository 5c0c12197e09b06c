"""The four spectrograms of a clip and their per-bin normalization statistics.

`compute_features(wave [num_samples], cfg) -> {name: float32 [num_frames, bins]}`;
`RunningStats` accumulates per-frequency-bin mean/std over `[time, freq]` features of the
training split; `normalize` applies them.
"""

from asc_keras.features.normalization import RunningStats, normalize
from asc_keras.features.spectrograms import FEATURE_CODE_VERSION, compute_features

__all__ = ["FEATURE_CODE_VERSION", "RunningStats", "compute_features", "normalize"]
