"""FeatureConfig: how audio becomes the four spectrograms.

Axis convention everywhere: features are `[time, freq]`, batches `[batch, time, freq, channels]`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from asc_keras.config.settings import setting

REPRESENTATIONS = ("logmel", "cqt", "gamma", "mfcc")
FEATURE_DTYPES = ("float32", "float16")


def check_representations(names: tuple[str, ...]) -> None:
    """Refuse unknown, duplicate or no representation names (one ValueError line)."""
    unknown = [n for n in names if n not in REPRESENTATIONS]
    if unknown or not names:
        raise ValueError(f"unknown or empty representations {names!r}; known: {REPRESENTATIONS}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate representations in {names!r}")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes the four spectrograms.

    Every field changes the numbers, so every field goes into `settings_hash`. Unset, the clip
    length, sample rate and Log-Mel bins follow `--task` (`asc_keras.tasks`).
    """

    representations: tuple[str, ...] = setting(
        REPRESENTATIONS, "Representations to precompute: logmel,cqt,gamma,mfcc."
    )
    sample_rate: int = setting(
        44100,
        "Sample rate the audio is resampled to; default: the task's (44100).",
        lower_bound=1000,
        flag_default=None,
    )
    clip_seconds: float = setting(
        10.0,
        "Clip length in seconds: audio is padded or cut to this; default: the task's (10 s for "
        "DCASE 2020, 1 s for tau2022; for custom, the length the clips share).",
        lower_bound=0.01,
        flag_default=None,
    )
    n_fft: int = setting(2048, "STFT window and FFT size.")
    hop_length: int = setting(512, "STFT hop in samples.")
    logmel_bins: int = setting(
        40,
        "Log-Mel bands; default: the task's (40 for 1a and custom, 64 for 1b and tau2022).",
        flag_default=None,
    )
    logmel_fmin: float = 0.0
    logmel_fmax: float = 22050.0
    cqt_bins: int = setting(64, "CQT bins (12 per octave from --cqt_fmin).")
    cqt_fmin: float = setting(220.0, "Lowest CQT frequency in Hz.")
    cqt_bins_per_octave: int = 12
    gamma_bins: int = setting(64, "Gammatone bands.")
    gamma_fmin: float = 20.0
    gamma_fmax: float = 22050.0
    mfcc_bins: int = setting(40, "MFCC coefficients.")
    mfcc_mels: int = 128
    top_db: float | None = None
    # Storage dtype of the TFRecords.
    dtype: str = setting(
        "float32",
        "Storage dtype of the precomputed features.",
        flag="feature_dtype",
        choices=FEATURE_DTYPES,
    )

    def __post_init__(self):
        check_representations(self.representations)
        if self.dtype not in FEATURE_DTYPES:
            raise ValueError(f"feature dtype must be float32 or float16, got {self.dtype!r}")

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def num_frames(self) -> int:
        """Frames of a `center=True` STFT of a fixed-length clip (862 at the paper settings)."""
        return 1 + self.num_samples // self.hop_length

    def bins(self, name: str) -> int:
        return {
            "logmel": self.logmel_bins,
            "cqt": self.cqt_bins,
            "gamma": self.gamma_bins,
            "mfcc": self.mfcc_bins,
        }[name]

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """`{representation: (time, freq)}` for the stored representations."""
        return {n: (self.num_frames, self.bins(n)) for n in self.representations}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["representations"] = list(self.representations)
        return d

    def settings_hash(self, *extra: str) -> str:
        """Short stable hash of every setting (plus `extra` strings, e.g. a dataset fingerprint)."""
        payload = json.dumps([self.to_dict(), list(extra)], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
