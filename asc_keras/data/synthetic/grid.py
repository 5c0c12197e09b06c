"""The shared time and frequency grid of one synthetic dataset: sample rate, channels, clip
length, the pre-roll generated before each clip and the FFT size of the room and device stage.

`scenes` renders a segment's dry sound on it and `devices` filters that sound through rooms and
devices on its frequencies.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import fft as sfft

from asc_keras.data.synthetic.signals import SPEED_OF_SOUND

PRE_ROLL_SECONDS = 0.5  # generated before the clip so that reverberation tails enter it
MAX_IR_SECONDS = 2.0  # room impulse responses are truncated here
_EAR_DISTANCE_M = 0.18


@dataclasses.dataclass(frozen=True)
class Grid:
    """Sample rate, channels, clip length and the shared FFT grid of one dataset."""

    sr: int
    channels: int
    n: int  # samples of a clip
    pre: int  # samples generated before the clip
    nfft: int  # FFT size of the room/device stage (clip + pre-roll + longest IR)
    freqs: np.ndarray  # [nfft // 2 + 1] Hz
    rho: np.ndarray  # [nfft // 2 + 1] diffuse-field coherence of the two ears


def clip_grid(sr: int, channels: int, clip_seconds: float) -> Grid:
    n = int(round(clip_seconds * sr))
    pre = int(PRE_ROLL_SECONDS * sr)
    nfft = sfft.next_fast_len(n + pre + int(MAX_IR_SECONDS * sr) + 1, real=True)
    freqs = sfft.rfftfreq(nfft, 1.0 / sr)
    rho = np.sinc(2.0 * freqs * _EAR_DISTANCE_M / SPEED_OF_SOUND).astype(np.float32)
    return Grid(sr, channels, n, pre, nfft, freqs, rho)
