"""Device colouring and rooms: room responses on the shared FFT grid of a set, the fixed device
curves (band limits, EQ, self noise, gain, saturation) and `render`, which turns one segment of a
location into what each device records: `{device: float [n, channels]}`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from types import MappingProxyType

import numpy as np
from scipy import fft as sfft

from asc_keras.data.synthetic.grid import MAX_IR_SECONDS, Grid
from asc_keras.data.synthetic.scenes import Location, bed_shape, dry_segment
from asc_keras.data.synthetic.signals import db_gain, seeded_rng, white_noise

_PEAK = 0.95  # files are scaled down when their peak exceeds this


@dataclasses.dataclass(frozen=True)
class _Device:
    highpass: float  # Hz, 4th-order Butterworth magnitude
    lowpass: float  # Hz, 4th-order Butterworth magnitude
    eq: tuple[tuple[float, float, float], ...]  # (centre Hz, gain dB, width in octaves)
    noise_db: float  # self noise, RMS dBFS (white before the band limits)
    gain_db: float
    drive: float  # soft saturation tanh(drive * x) / drive; 0 for none


# Fixed (seed-independent) device colourings, in the spirit of the real 1A set: a is the
# reference binaural microphone, b and c phones (Samsung Galaxy S7, iPhone SE in the real set),
# s1-s6 simulated devices. Fields: highpass, lowpass, eq, noise_db, gain_db, drive.
_DEVICES = MappingProxyType(
    {
        "a": _Device(20, 20000, (), -92, 0, 0),
        "b": _Device(180, 9500, ((500, -4, 1.0), (2500, 5, 1.0)), -72, -3, 2.0),
        "c": _Device(120, 14000, ((1000, -3, 1.5), (4000, 3, 1.0)), -76, 2, 1.5),
        "s1": _Device(250, 7000, ((1500, 6, 1.2),), -66, -2, 0),
        "s2": _Device(80, 16000, ((300, -6, 1.4), (8000, 4, 1.0)), -80, 1, 0),
        "s3": _Device(300, 11000, ((3200, 8, 0.4),), -70, -4, 0),
        "s4": _Device(150, 6000, ((800, 4, 1.0), (3000, -5, 0.8)), -68, 0, 0),
        "s5": _Device(60, 12500, ((2000, -5, 1.0), (5000, 5, 0.8)), -78, 3, 0),
        "s6": _Device(400, 10000, ((1200, 6, 0.5),), -62, -1, 1.0),
    }
)


def _room_response(loc: Location, grid: Grid) -> np.ndarray:
    """Direct sound plus a decaying-noise reverberation tail, [channels, nfft // 2 + 1]."""
    sr, channels, nfft = grid.sr, grid.channels, grid.nfft
    rng = seeded_rng(*loc.seed_keys, "room")
    length = int(min(loc.rt60, MAX_IR_SECONDS) * sr)
    t = np.arange(length) / sr
    env = np.exp(-6.91 * t / loc.rt60) * np.minimum(1.0, t / 0.01)
    fade = length // 10
    env[length - fade :] *= np.linspace(1.0, 0.0, fade)
    predelay = int(rng.uniform(0.003, 0.03) * sr)
    tail = white_noise(rng, channels, length) * env.astype(np.float32)
    tail *= np.float32(db_gain(loc.wet_db)) / np.sqrt(np.sum(tail**2, axis=1, keepdims=True))
    ir = np.zeros((channels, nfft), dtype=np.float32)
    ir[:, predelay : predelay + length] = tail
    absorption = 1.0 / np.sqrt(1.0 + (grid.freqs / rng.uniform(3000, 7000)) ** 2)
    return 1.0 + sfft.rfft(ir, axis=-1) * absorption.astype(np.float32)


def _device_response(name: str, freqs: np.ndarray) -> np.ndarray:
    dev = _DEVICES[name]
    f = np.maximum(freqs, 1.0)
    mag = 1.0 / np.sqrt(1.0 + (dev.highpass / f) ** 8) / np.sqrt(1.0 + (f / dev.lowpass) ** 8)
    gain_db = np.zeros_like(f)
    for centre, g, width in dev.eq:
        gain_db += g * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
    return mag * 10.0 ** (gain_db / 20.0)


def location_filters(
    loc: Location, devices: Sequence[str], grid: Grid
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per device: (room x device [channels, F] complex64, bed-plus-self-noise x device [F])."""
    room = _room_response(loc, grid)
    bed = db_gain(loc.bed_db) * bed_shape(loc, grid.freqs)
    out = {}
    for name in devices:
        response = _device_response(name, grid.freqs)
        noise = np.sqrt(bed**2 + db_gain(_DEVICES[name].noise_db) ** 2) * response
        out[name] = ((room * response).astype(np.complex64), noise.astype(np.float32))
    return out


def render(
    loc: Location,
    segment: str,
    filters: dict[str, tuple[np.ndarray, np.ndarray]],
    grid: Grid,
) -> dict[str, np.ndarray]:
    """One segment of `loc` as recorded by each device of `filters`: {device: [n, channels]}."""
    rng = seeded_rng(*loc.seed_keys, "segment", segment)
    spectrum = sfft.rfft(
        dry_segment(loc, rng, grid), n=grid.nfft, axis=-1
    )  # [channels, F] complex64
    bins = len(grid.freqs)
    parts = rng.standard_normal((2, grid.channels, bins), dtype=np.float32)
    white = (parts[0] + 1j * parts[1]) * np.float32(math.sqrt(grid.nfft / 2))  # E|W|^2 = nfft
    if grid.channels == 2:  # diffuse field: the ears are coherent at low frequencies only
        white[1] = grid.rho * white[0] + np.sqrt(1.0 - grid.rho**2) * white[1]
    out = {}
    for name, (room, noise) in filters.items():
        dev = _DEVICES[name]
        y = sfft.irfft(spectrum * room + white * noise, n=grid.nfft, axis=-1)
        y = y[:, grid.pre : grid.pre + grid.n].astype(np.float64) * db_gain(dev.gain_db)
        if dev.drive:
            y = np.tanh(dev.drive * y) / dev.drive
        peak = np.max(np.abs(y))
        if peak > _PEAK:
            y *= _PEAK / peak
        out[name] = y.T
    return out
