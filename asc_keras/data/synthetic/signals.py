"""Scene sounds, part 1: small signal helpers and the event generators of the synthetic sets.

Every event generator takes `(rng, sample_rate)` and returns `(wave [n] float, pan)`, pan being a
constant in [-1, 1] or a per-sample array (moving sources). Deterministic for a given rng.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np
from scipy import signal

Generator = Callable[[np.random.Generator, int], tuple[np.ndarray, "float | np.ndarray"]]
SPEED_OF_SOUND = 343.0


# ----------------------------------------------------------------------------------------------
# Small signal helpers.


def seeded_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent, order-free random stream for (seed, keys); strings hashed stably."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence([seed, *ints]))


def db_gain(x: float) -> float:
    return 10.0 ** (x / 20.0)


def _normalize_peak(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def smooth_noise(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """Slowly varying random contour in about [-1, 1], `rate` knots per second; float32."""
    knots = max(2, int(math.ceil(n / sr * rate)) + 2)
    values = rng.uniform(-1.0, 1.0, knots)
    return np.interp(np.arange(n) * (rate / sr), np.arange(knots), values).astype(np.float32)


def white_noise(
    rng: np.random.Generator, channels: int, n: int, coherence: float = 0.0
) -> np.ndarray:
    """[channels, n] float32 white noise; two channels correlate by `coherence`."""
    noise = rng.standard_normal((channels, n), dtype=np.float32)
    if channels == 2 and coherence:
        noise[1] = coherence * noise[0] + math.sqrt(1.0 - coherence**2) * noise[1]
    return noise


def _biquad(kind: str, corner: float, sr: int) -> list[float]:
    """One Butterworth (Q = 1/sqrt(2)) second-order section, RBJ cookbook form."""
    w = 2.0 * math.pi * corner / sr
    cw, alpha = math.cos(w), math.sin(w) / math.sqrt(2.0)
    b = (
        [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        if kind == "low"
        else [(1 + cw) / 2, -1 - cw, (1 + cw) / 2]
    )
    a0 = 1 + alpha
    return [b[0] / a0, b[1] / a0, b[2] / a0, 1.0, -2 * cw / a0, (1 - alpha) / a0]


def band_filter(x: np.ndarray, sr: int, lo: float | None, hi: float | None) -> np.ndarray:
    """Second-order high-pass at `lo` and/or low-pass at `hi` along the last axis."""
    sections = []
    if lo is not None and lo > 1.0:
        sections.append(_biquad("high", lo, sr))
    if hi is not None and hi < 0.45 * sr:
        sections.append(_biquad("low", hi, sr))
    if not sections:
        return x
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return signal.sosfilt(np.array(sections, dtype=dtype), x, axis=-1)


def _harmonics(phase: np.ndarray, amps: Sequence[float]) -> np.ndarray:
    """sum_k amps[k] * sin((k + 1) * phase), by the Chebyshev recurrence; float32."""
    phase = np.mod(phase, 2.0 * np.pi).astype(np.float32)
    s_cur = np.sin(phase)
    out = amps[0] * s_cur
    c2 = 2.0 * np.cos(phase)
    s_prev = np.zeros_like(phase)
    scratch = np.empty_like(phase)
    for amp in amps[1:]:
        s_next = np.multiply(c2, s_cur)
        s_next -= s_prev
        if amp:
            out += np.multiply(s_next, np.float32(amp), out=scratch)
        s_prev, s_cur = s_cur, s_next
    return out


def decay_envelope(n: int, sr: int, tau: float, attack: float = 0.002) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(1.0, t / attack) * np.exp(-t / tau)


def tone(f: np.ndarray | float, n: int, sr: int, amps: Sequence[float] = (1.0,)) -> np.ndarray:
    """Harmonic tone with (possibly time-varying) fundamental `f` in Hz."""
    f = np.broadcast_to(np.asarray(f, dtype=float), (n,))
    phase = 2.0 * np.pi * np.cumsum(f) / sr
    kmax = max(1, int(0.45 * sr / max(float(f.max()), 1.0)))
    return _harmonics(phase, list(amps)[:kmax])


# ----------------------------------------------------------------------------------------------
# Events: each returns (mono waveform, pan in [-1, 1] as a scalar or a per-sample trajectory).


def click_burst(rng: np.random.Generator, sr: int, lo: float, hi: float, tau: float) -> np.ndarray:
    n = int(5 * tau * sr)
    return band_filter(rng.standard_normal(n) * decay_envelope(n, sr, tau, 0.0005), sr, lo, hi)


def _footsteps(rng, sr):
    steps = int(rng.integers(4, 15))
    period = rng.uniform(0.45, 0.65)
    hi = rng.uniform(2000, 6500)
    n = int((steps * period + 0.3) * sr)
    out = np.zeros(n)
    for k in range(steps):
        start = int((k * period + rng.normal(0, 0.02)) * sr) if k else 0
        for offset, level in ((0, 1.0), (rng.uniform(0.02, 0.05), rng.uniform(0.3, 0.7))):
            click = level * click_burst(rng, sr, 150, hi, rng.uniform(0.006, 0.015))
            s = max(0, start + int(offset * sr))
            m = min(len(click), n - s)
            out[s : s + m] += click[:m]
    p0 = rng.uniform(-1, 1)
    return out, np.linspace(p0, np.clip(p0 + rng.uniform(-0.8, 0.8), -1, 1), n)


_VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (530, 1840, 2480),
    (300, 870, 2240),
    (660, 1720, 2410),
    (490, 1350, 1690),
    (570, 840, 2410),
    (440, 1020, 2240),
)


def _speech(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """Formant-filtered glottal pulse train, syllable by syllable."""
    n = int(seconds * sr)
    f0 = rng.uniform(90, 140) if rng.random() < 0.5 else rng.uniform(170, 260)
    contour = f0 * (1.0 + 0.12 * smooth_noise(rng, n, sr, 4.0)) * np.linspace(1.05, 0.92, n)
    cycles = np.floor(np.cumsum(contour) / sr)
    pulses = np.zeros(n)
    pulses[1:][np.diff(cycles) > 0] = 1.0
    source = signal.lfilter([1.0], [1.0, -0.92], pulses)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(int(rng.uniform(0.12, 0.32) * sr), n - pos)
        if length < 64:
            break
        formants = np.array(_VOWELS[int(rng.integers(len(_VOWELS)))]) * rng.uniform(0.9, 1.15)
        sos = []
        for i, fc in enumerate(formants):
            r = math.exp(-math.pi * (60 + 40 * i) / sr)
            theta = 2 * math.pi * min(fc, 0.45 * sr) / sr
            sos.append([1 - r, 0, 0, 1, -2 * r * math.cos(theta), r * r])
        seg = signal.sosfilt(np.array(sos), source[pos : pos + length])
        seg *= np.sin(np.linspace(0, np.pi, length)) ** 0.7 * rng.uniform(0.5, 1.0)
        out[pos : pos + length] += seg
        if rng.random() < 0.35:  # a fricative
            m = min(int(rng.uniform(0.03, 0.08) * sr), length)
            out[pos : pos + m] += (
                0.3
                * band_filter(rng.standard_normal(m), sr, 3000, None)
                * (np.hanning(m) * np.max(np.abs(seg)))
            )
        pos += length + (int(rng.uniform(0.1, 0.4) * sr) if rng.random() < 0.15 else 0)
    return _normalize_peak(out)


def _voice(rng, sr):
    return _speech(rng, sr, rng.uniform(0.6, 2.5)), rng.uniform(-1, 1)


def _chime(rng: np.random.Generator, sr: int) -> np.ndarray:
    notes = int(rng.integers(2, 4))
    f = rng.uniform(500, 900)
    step = rng.choice([0.8, 0.75, 1.25, 1.33])
    note_len = int(rng.uniform(0.35, 0.6) * sr)
    n = int(notes * note_len + 0.6 * sr)
    out = np.zeros(n)
    t = np.arange(n) / sr
    for k in range(notes):
        fk = f * step**k
        s = k * note_len
        tt = t[: n - s]
        bell = (
            np.sin(2 * np.pi * fk * tt) * np.exp(-tt / 0.5)
            + 0.4 * np.sin(2 * np.pi * 2.76 * fk * tt) * np.exp(-tt / 0.2)
            + 0.2 * np.sin(2 * np.pi * 5.4 * fk * tt) * np.exp(-tt / 0.08)
        )
        out[s:] += bell * np.minimum(1.0, tt / 0.003)
    return _normalize_peak(out)


def _announcement(rng, sr):
    chime = _chime(rng, sr)
    speech = 0.8 * band_filter(_speech(rng, sr, rng.uniform(1.5, 4.0)), sr, 300, 3500)
    gap = np.zeros(int(rng.uniform(0.1, 0.4) * sr))
    return _normalize_peak(np.concatenate([chime, gap, speech])), rng.uniform(-0.3, 0.3)


def _beeps(rng, sr):
    count = int(rng.integers(3, 9))
    f = rng.uniform(1000, 3200)
    on, off = int(rng.uniform(0.08, 0.2) * sr), int(rng.uniform(0.06, 0.2) * sr)
    beep = tone(f, on, sr, (1.0, 0, 0.25)) * np.hanning(on) ** 0.2
    pattern = np.concatenate([beep, np.zeros(off)])
    return np.tile(pattern, count), rng.uniform(-0.7, 0.7)


def _bird(rng, sr):
    chirps = int(rng.integers(3, 13))
    f1 = rng.uniform(2500, 5500)
    ratio = rng.uniform(0.6, 1.8)
    parts = []
    for _ in range(chirps):
        m = int(rng.uniform(0.04, 0.15) * sr)
        f = np.geomspace(f1, min(f1 * ratio, 0.4 * sr), m) * rng.uniform(0.93, 1.07)
        parts.append(tone(f, m, sr, (1.0, 0.2)) * np.hanning(m))
        parts.append(np.zeros(int(rng.uniform(0.03, 0.2) * sr)))
    return np.concatenate(parts), rng.uniform(-1, 1)


def _car_pass(rng, sr):
    seconds = rng.uniform(4, 9)
    n = int(seconds * sr)
    t = np.arange(n) / sr - seconds / 2
    v = rng.uniform(8, 16)
    d = rng.uniform(2, 10)
    r = np.sqrt(d * d + (v * t) ** 2)
    approach = v * t / r  # -1 (coming) .. 1 (gone)
    tyres = band_filter(rng.standard_normal(n), sr, 150, rng.uniform(2000, 5000)) * 2.0
    f0 = rng.uniform(25, 55) * SPEED_OF_SOUND / (SPEED_OF_SOUND + v * approach)
    engine = tone(f0, n, sr, (1.0, 0.6, 0.5, 0.3, 0.2, 0.1))
    out = (tyres + rng.uniform(0.1, 0.4) * engine) * (d / r)
    return _normalize_peak(out), rng.choice([-0.9, 0.9]) * approach


def _horn(rng, sr):
    n = int(rng.uniform(0.25, 1.0) * sr)
    f = rng.uniform(350, 480)
    amps = (1.0, 0.1, 0.5, 0.1, 0.3, 0.05, 0.2)
    out = tone(f, n, sr, amps) + tone(f * 1.26, n, sr, amps)
    env = np.minimum(1.0, np.arange(n) / (0.01 * sr)) * np.minimum(
        1.0, np.arange(n)[::-1] / (0.03 * sr)
    )
    return _normalize_peak(out * env), rng.uniform(-1, 1)


def _squeal_wave(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    vib = 1.0 + rng.uniform(0.005, 0.03) * np.sin(
        2 * np.pi * rng.uniform(5, 12) * np.arange(n) / sr
    )
    out = tone(rng.uniform(2500, 5500) * vib, n, sr, (1.0, 0.3, 0.15))
    return out * np.hanning(n) ** 0.5 * (0.6 + 0.4 * smooth_noise(rng, n, sr, 6.0))


def _squeal(rng, sr):
    return _squeal_wave(rng, sr, int(rng.uniform(0.3, 2.0) * sr)), rng.uniform(-1, 1)


def _train_pass(rng, sr):
    seconds = rng.uniform(6, 12)
    n = int(seconds * sr)
    env = np.hanning(n) ** rng.uniform(0.5, 1.5)
    rumble = band_filter(rng.standard_normal(n), sr, 30, rng.uniform(300, 1500)) * 2.0
    whine_f = np.linspace(rng.uniform(500, 900), rng.uniform(150, 300), n)
    out = rumble + 0.4 * tone(whine_f, n, sr, (1.0, 0.3))
    if rng.random() < 0.5:
        m = int(min(seconds / 3, rng.uniform(0.5, 2.0)) * sr)
        out[n - m - n // 6 : n - n // 6] += 0.6 * _squeal_wave(rng, sr, m)
    return _normalize_peak(out * env), np.linspace(-0.9, 0.9, n) * rng.choice([-1, 1])


def _suitcase(rng, sr):
    seconds = rng.uniform(2, 5)
    n = int(seconds * sr)
    rate = rng.uniform(8, 18)
    clicks = np.zeros(n)
    clicks[(np.arange(0, seconds, 1 / rate) * sr).astype(int)] = 1.0
    clicks = signal.lfilter([1.0], [1.0, -0.995], clicks)
    roll = band_filter(rng.standard_normal(n), sr, 150, 2000) * 0.4
    out = band_filter(clicks * rng.standard_normal(n), sr, 200, 4000) + roll
    return _normalize_peak(out * np.hanning(n) ** 0.3), np.linspace(-0.8, 0.8, n) * rng.choice(
        [-1, 1]
    )


def _clink(rng, sr):
    n = int(0.3 * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        f = rng.uniform(2500, 7000)
        s = int(rng.uniform(0, 0.1) * sr)
        out[s:] += np.sin(2 * np.pi * f * t[: n - s]) * np.exp(-t[: n - s] / rng.uniform(0.03, 0.1))
    return _normalize_peak(out), rng.uniform(-1, 1)


def _door(rng, sr):
    beeps, _ = _beeps(rng, sr)
    m = int(rng.uniform(0.4, 0.9) * sr)
    hiss = band_filter(rng.standard_normal(m), sr, 2000, None) * np.hanning(m)
    k = int(0.3 * sr)
    thump = np.sin(2 * np.pi * rng.uniform(50, 90) * np.arange(k) / sr) * decay_envelope(
        k, sr, 0.05
    )
    out = np.concatenate([0.5 * _normalize_peak(beeps), 0.7 * _normalize_peak(hiss), thump])
    return out, rng.uniform(-0.8, 0.8)


EVENTS: MappingProxyType[str, Generator] = MappingProxyType(
    {
        "footsteps": _footsteps,
        "voice": _voice,
        "announcement": _announcement,
        "beeps": _beeps,
        "bird": _bird,
        "car_pass": _car_pass,
        "horn": _horn,
        "squeal": _squeal,
        "train_pass": _train_pass,
        "suitcase": _suitcase,
        "clink": _clink,
        "door": _door,
    }
)
