"""Synthetic DCASE 2020 Task 1 development sets, written in the official folder layout.

The job of this module is to stand in for TAU Urban Acoustic Scenes 2020 Mobile (1A) and
3Class (1B) where the real data is absent: as the test fixture and as the demo's data. It writes

- `audio/<scene>-<city>-<location>-<segment>-<device>.wav`: 24-bit PCM; 1A 44.1 kHz mono,
  1B 48 kHz stereo (two correlated "binaural" channels);
- `meta.csv` (`filename  scene_label  identifier  source_label`), `evaluation_setup/fold1_train.csv`
  and `fold1_evaluate.csv` (`filename  scene_label`), `fold1_test.csv` (`filename`), all
  tab-separated and sorted by file name, exactly as the official packages; 1B's `scene_label`
  holds the 3-class label while the file name keeps the 10-scene prefix;
- `README.txt` saying that the data is synthetic and how it was made.

How a clip sounds. Every scene has a profile: a coloured noise bed (spectral tilt, band limits),
a tonal hum (bus engine, metro motor whine, tram rail hum, indoor HVAC/mains), continuous layers
(babble, music, wind, distant traffic, rail joints) and events at scene-specific rates (footsteps,
voices as formant-filtered pulse trains, announcements with chimes, beeps, bird trills, car
pass-bys with Doppler, horns, train arrivals, brake squeal, rolling suitcases, cutlery clinks,
doors), all sent through a room (exponentially decaying noise impulse response: long indoors,
short outdoors). Cities shift levels, tilt, event rates and reverberation; locations jitter every
profile value; clips draw their own event timing. So classes overlap, partially. A recording
device then colours the sound: band limits, a fixed EQ curve, self noise, gain and (for phones)
soft saturation. 1A segments are recorded by device `a` and, in parallel, by other devices (a
fraction of the training segments by b, c, s1-s3; every evaluate segment by all nine devices, so
s4-s6 occur only in the evaluate split), exactly the same sound coloured differently. As in the
official setup, where only the parallel-recorded part of the evaluate locations is used, 1A
evaluate locations keep one segment in three; evaluate then has equal counts for every device.

Whole locations (`identifier`) sit on one side of the train/evaluate split (about 70/30 of the
locations of each class). Generation is deterministic: the same arguments write byte-identical
files. Everything between the room and the device runs in one FFT per clip (numpy/scipy only).

`generate` writes a development set, `make_unlabeled_eval` a challenge-evaluation-style folder
(`audio/0.wav`, ..., `evaluation_setup/fold1_test.csv` without labels). Command line:

    python -m asc_keras.data.synthetic --task=1b --out=DIR [--clips_per_class=90]
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np
import soundfile as sf
from scipy import fft as sfft
from scipy import signal

from asc_keras import labels

SAMPLE_RATES = MappingProxyType({"1a": 44100, "1b": 48000})
CHANNELS = MappingProxyType({"1a": 1, "1b": 2})
SUBTYPE = "PCM_24"
TRAIN_DEVICES_1A = ("b", "c", "s1", "s2", "s3")  # recorded in parallel with `a` in train

_PRE_ROLL_S = 0.5  # generated before the clip so that reverberation tails enter it
_MAX_IR_S = 2.0  # room impulse responses are truncated here
_PEAK = 0.95  # files are scaled down when their peak exceeds this
_SPEED_OF_SOUND = 343.0
_EAR_DISTANCE_M = 0.18
_SEGMENT_STEP = 10000  # segment ids of one location: 0, 10000, 20000, ...
_MARK = "SYNTHETIC"  # first word of README.txt; `overwrite` deletes only folders that have it
_EVAL_THINNING_1A = 3  # 1A evaluate locations keep one segment in 3, recorded by all devices

Generator = Callable[[np.random.Generator, int], tuple[np.ndarray, "float | np.ndarray"]]


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """What `generate` / `make_unlabeled_eval` wrote.

    Attributes:
        root: the dataset folder.
        task: "1a" or "1b".
        classes: the task's class list.
        sample_rate: Hz.
        channels: 1 (1A) or 2 (1B).
        clip_seconds: duration of every clip.
        num_train: rows of `fold1_train.csv` (0 for an unlabeled set).
        num_evaluate: rows of `fold1_evaluate.csv`, or of `fold1_test.csv` for an unlabeled set.
        num_locations: distinct `identifier`s (0 for an unlabeled set).
        devices: devices that occur in the set.
        seconds: wall-clock generation time.
    """

    root: pathlib.Path
    task: str
    classes: tuple[str, ...]
    sample_rate: int
    channels: int
    clip_seconds: float
    num_train: int
    num_evaluate: int
    num_locations: int
    devices: tuple[str, ...]
    seconds: float

    @property
    def num_files(self) -> int:
        return self.num_train + self.num_evaluate

    def line(self) -> str:
        """One-line human-readable summary."""
        return (
            f"synthetic {self.task.upper()} at {self.root}: {self.num_files} files "
            f"({self.num_train} train / {self.num_evaluate} evaluate), {len(self.classes)} "
            f"classes, {self.num_locations} locations, devices {','.join(self.devices)}, "
            f"{self.clip_seconds:g} s at {self.sample_rate} Hz x{self.channels}, "
            f"{self.seconds:.1f} s"
        )


# ----------------------------------------------------------------------------------------------
# Scene, city and device descriptions (immutable tables).


@dataclasses.dataclass(frozen=True)
class _Profile:
    bed_db: float  # RMS of the noise bed, dBFS
    tilt: float  # bed slope, dB per octave (0 dB at 1 kHz)
    bed_band: tuple[float, float]  # bed high-pass and low-pass corners, Hz
    hum: str | None  # "engine", "motor", "rail", "hvac"
    hum_f0: float  # Hz
    hum_db: float  # RMS dBFS
    layers: tuple[tuple[str, float], ...]  # continuous layers: (kind, RMS dBFS)
    events: tuple[tuple[str, float, float], ...]  # (kind, events per minute, peak dBFS)
    rt60: float  # seconds
    wet_db: float  # reverberant energy relative to the direct sound, dB


# Fields in order: bed_db, tilt, bed_band, hum, hum_f0, hum_db, layers, events, rt60, wet_db.
_PROFILES = MappingProxyType(
    {
        "airport": _Profile(
            -42, -4.5, (40, 9000), "hvac", 120, -40, (("babble", -37),),
            (("announcement", 2.0, -21), ("footsteps", 6, -27), ("suitcase", 4, -28),
             ("voice", 7, -25), ("beeps", 0.5, -29)),
            1.8, -3,
        ),
        "shopping_mall": _Profile(
            -43, -3.8, (40, 10000), "hvac", 100, -42, (("babble", -34), ("music", -34)),
            (("voice", 10, -25), ("footsteps", 8, -28), ("clink", 6, -27),
             ("announcement", 0.5, -24)),
            1.3, -5,
        ),
        "metro_station": _Profile(
            -40, -4.5, (30, 8000), "hvac", 140, -40, (("babble", -38),),
            (("train_pass", 2.5, -17), ("announcement", 2, -21), ("beeps", 2, -25),
             ("footsteps", 8, -28), ("squeal", 1, -27)),
            2.4, -2,
        ),
        "park": _Profile(
            -50, -2.0, (20, 14000), None, 0, -99, (("wind", -42), ("traffic", -48)),
            (("bird", 20, -24), ("voice", 3, -30), ("footsteps", 4, -32), ("car_pass", 0.5, -34)),
            0.15, -16,
        ),
        "public_square": _Profile(
            -44, -2.3, (25, 13000), None, 0, -99, (("babble", -38), ("traffic", -41)),
            (("voice", 10, -25), ("footsteps", 10, -28), ("bird", 4, -29), ("car_pass", 2, -27)),
            0.45, -10,
        ),
        "street_pedestrian": _Profile(
            -43, -2.5, (25, 13000), None, 0, -99, (("babble", -37), ("traffic", -39)),
            (("footsteps", 16, -26), ("voice", 10, -25), ("car_pass", 3, -25), ("bird", 1, -31)),
            0.3, -12,
        ),
        "street_traffic": _Profile(
            -41, -2.6, (20, 13000), "engine", 32, -47, (("traffic", -37),),
            (("car_pass", 14, -17), ("horn", 1.5, -21), ("footsteps", 2, -32)),
            0.2, -14,
        ),
        "bus": _Profile(
            -35, -5.5, (20, 6000), "engine", 36, -29, (("babble", -44),),
            (("voice", 5, -27), ("beeps", 1, -26), ("announcement", 1, -26), ("door", 1, -25)),
            0.35, -8,
        ),
        "metro": _Profile(
            -34, -5.0, (20, 7000), "motor", 420, -33, (("rail", -33),),
            (("announcement", 2, -24), ("beeps", 1, -26), ("door", 1, -25), ("squeal", 1, -30),
             ("voice", 3, -30)),
            0.3, -8,
        ),
        "tram": _Profile(
            -37, -4.5, (20, 8000), "rail", 110, -35, (("rail", -36),),
            (("squeal", 2, -26), ("beeps", 2, -24), ("announcement", 1, -26), ("voice", 5, -28),
             ("door", 1, -25)),
            0.35, -9,
        ),
    }
)


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


@dataclasses.dataclass(frozen=True)
class _Location:
    """Per-location draw of a scene profile (the same room for every clip there)."""

    scene: str
    city: str
    location: str
    bed_db: float
    tilt: float
    bed_band: tuple[float, float]
    hum_f0: float
    hum_db: float
    layer_db: tuple[float, ...]
    rates: tuple[float, ...]
    event_db: tuple[float, ...]
    rt60: float
    wet_db: float
    seed_keys: tuple[int | str, ...]

    @property
    def identifier(self) -> str:
        return f"{self.city}-{self.location}"


# ----------------------------------------------------------------------------------------------
# Small signal helpers.


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent, order-free random stream for (seed, keys); strings hashed stably."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence([seed, *ints]))


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def _normalize_peak(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def _smooth(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """Slowly varying random contour in about [-1, 1], `rate` knots per second; float32."""
    knots = max(2, int(math.ceil(n / sr * rate)) + 2)
    values = rng.uniform(-1.0, 1.0, knots)
    return np.interp(np.arange(n) * (rate / sr), np.arange(knots), values).astype(np.float32)


def _white(rng: np.random.Generator, channels: int, n: int, coherence: float = 0.0) -> np.ndarray:
    """[channels, n] float32 white noise; two channels correlate by `coherence`."""
    noise = rng.standard_normal((channels, n), dtype=np.float32)
    if channels == 2 and coherence:
        noise[1] = coherence * noise[0] + math.sqrt(1.0 - coherence**2) * noise[1]
    return noise


def _biquad(kind: str, corner: float, sr: int) -> list[float]:
    """One Butterworth (Q = 1/sqrt(2)) second-order section, RBJ cookbook form."""
    w = 2.0 * math.pi * corner / sr
    cw, alpha = math.cos(w), math.sin(w) / math.sqrt(2.0)
    b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2] if kind == "low" else [(1 + cw) / 2, -1 - cw,
                                                                     (1 + cw) / 2]
    a0 = 1 + alpha
    return [b[0] / a0, b[1] / a0, b[2] / a0, 1.0, -2 * cw / a0, (1 - alpha) / a0]


def _filter(x: np.ndarray, sr: int, lo: float | None, hi: float | None) -> np.ndarray:
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


def _decay(n: int, sr: int, tau: float, attack: float = 0.002) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(1.0, t / attack) * np.exp(-t / tau)


def _tone(f: np.ndarray | float, n: int, sr: int, amps: Sequence[float] = (1.0,)) -> np.ndarray:
    """Harmonic tone with (possibly time-varying) fundamental `f` in Hz."""
    f = np.broadcast_to(np.asarray(f, dtype=float), (n,))
    phase = 2.0 * np.pi * np.cumsum(f) / sr
    kmax = max(1, int(0.45 * sr / max(float(f.max()), 1.0)))
    return _harmonics(phase, list(amps)[:kmax])


# ----------------------------------------------------------------------------------------------
# Events: each returns (mono waveform, pan in [-1, 1] as a scalar or a per-sample trajectory).


def _click(rng: np.random.Generator, sr: int, lo: float, hi: float, tau: float) -> np.ndarray:
    n = int(5 * tau * sr)
    return _filter(rng.standard_normal(n) * _decay(n, sr, tau, 0.0005), sr, lo, hi)


def _footsteps(rng, sr):
    steps = int(rng.integers(4, 15))
    period = rng.uniform(0.45, 0.65)
    hi = rng.uniform(2000, 6500)
    n = int((steps * period + 0.3) * sr)
    out = np.zeros(n)
    for k in range(steps):
        start = int((k * period + rng.normal(0, 0.02)) * sr) if k else 0
        for offset, level in ((0, 1.0), (rng.uniform(0.02, 0.05), rng.uniform(0.3, 0.7))):
            click = level * _click(rng, sr, 150, hi, rng.uniform(0.006, 0.015))
            s = max(0, start + int(offset * sr))
            m = min(len(click), n - s)
            out[s : s + m] += click[:m]
    p0 = rng.uniform(-1, 1)
    return out, np.linspace(p0, np.clip(p0 + rng.uniform(-0.8, 0.8), -1, 1), n)


_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (300, 870, 2240),
           (660, 1720, 2410), (490, 1350, 1690), (570, 840, 2410), (440, 1020, 2240))


def _speech(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """Formant-filtered glottal pulse train, syllable by syllable."""
    n = int(seconds * sr)
    f0 = rng.uniform(90, 140) if rng.random() < 0.5 else rng.uniform(170, 260)
    contour = f0 * (1.0 + 0.12 * _smooth(rng, n, sr, 4.0)) * np.linspace(1.05, 0.92, n)
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
            out[pos : pos + m] += 0.3 * _filter(rng.standard_normal(m), sr, 3000, None) * (
                np.hanning(m) * np.max(np.abs(seg))
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
    speech = 0.8 * _filter(_speech(rng, sr, rng.uniform(1.5, 4.0)), sr, 300, 3500)
    gap = np.zeros(int(rng.uniform(0.1, 0.4) * sr))
    return _normalize_peak(np.concatenate([chime, gap, speech])), rng.uniform(-0.3, 0.3)


def _beeps(rng, sr):
    count = int(rng.integers(3, 9))
    f = rng.uniform(1000, 3200)
    on, off = int(rng.uniform(0.08, 0.2) * sr), int(rng.uniform(0.06, 0.2) * sr)
    beep = _tone(f, on, sr, (1.0, 0, 0.25)) * np.hanning(on) ** 0.2
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
        parts.append(_tone(f, m, sr, (1.0, 0.2)) * np.hanning(m))
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
    tyres = _filter(rng.standard_normal(n), sr, 150, rng.uniform(2000, 5000)) * 2.0
    f0 = rng.uniform(25, 55) * _SPEED_OF_SOUND / (_SPEED_OF_SOUND + v * approach)
    engine = _tone(f0, n, sr, (1.0, 0.6, 0.5, 0.3, 0.2, 0.1))
    out = (tyres + rng.uniform(0.1, 0.4) * engine) * (d / r)
    return _normalize_peak(out), rng.choice([-0.9, 0.9]) * approach


def _horn(rng, sr):
    n = int(rng.uniform(0.25, 1.0) * sr)
    f = rng.uniform(350, 480)
    amps = (1.0, 0.1, 0.5, 0.1, 0.3, 0.05, 0.2)
    out = _tone(f, n, sr, amps) + _tone(f * 1.26, n, sr, amps)
    env = np.minimum(1.0, np.arange(n) / (0.01 * sr)) * np.minimum(1.0, np.arange(n)[::-1] / (
        0.03 * sr))
    return _normalize_peak(out * env), rng.uniform(-1, 1)


def _squeal_wave(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    vib = 1.0 + rng.uniform(0.005, 0.03) * np.sin(
        2 * np.pi * rng.uniform(5, 12) * np.arange(n) / sr
    )
    out = _tone(rng.uniform(2500, 5500) * vib, n, sr, (1.0, 0.3, 0.15))
    return out * np.hanning(n) ** 0.5 * (0.6 + 0.4 * _smooth(rng, n, sr, 6.0))


def _squeal(rng, sr):
    return _squeal_wave(rng, sr, int(rng.uniform(0.3, 2.0) * sr)), rng.uniform(-1, 1)


def _train_pass(rng, sr):
    seconds = rng.uniform(6, 12)
    n = int(seconds * sr)
    env = np.hanning(n) ** rng.uniform(0.5, 1.5)
    rumble = _filter(rng.standard_normal(n), sr, 30, rng.uniform(300, 1500)) * 2.0
    whine_f = np.linspace(rng.uniform(500, 900), rng.uniform(150, 300), n)
    out = rumble + 0.4 * _tone(whine_f, n, sr, (1.0, 0.3))
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
    roll = _filter(rng.standard_normal(n), sr, 150, 2000) * 0.4
    out = _filter(clicks * rng.standard_normal(n), sr, 200, 4000) + roll
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
    hiss = _filter(rng.standard_normal(m), sr, 2000, None) * np.hanning(m)
    k = int(0.3 * sr)
    thump = np.sin(2 * np.pi * rng.uniform(50, 90) * np.arange(k) / sr) * _decay(k, sr, 0.05)
    out = np.concatenate([0.5 * _normalize_peak(beeps), 0.7 * _normalize_peak(hiss), thump])
    return out, rng.uniform(-0.8, 0.8)


_EVENTS: MappingProxyType[str, Generator] = MappingProxyType(
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


# ----------------------------------------------------------------------------------------------
# Continuous layers and hum: each returns a [channels, n] array with RMS about 1.


def _layer(kind: str, rng: np.random.Generator, sr: int, n: int, channels: int) -> np.ndarray:
    if kind == "babble":
        noise = _filter(_white(rng, channels, n, 0.4), sr, 150, 3500)
        env = 1.0 + 0.6 * _smooth(rng, n, sr, 5.0) + 0.3 * _smooth(rng, n, sr, 1.0)
        out = noise * env
    elif kind == "wind":
        noise = _filter(_white(rng, channels, n, 0.2), sr, None, rng.uniform(200, 600))
        out = noise * (1.0 + 0.8 * _smooth(rng, n, sr, 0.7))
    elif kind == "traffic":
        noise = _filter(_white(rng, channels, n, 0.7), sr, 40, rng.uniform(500, 1500))
        out = noise * (1.0 + 0.5 * _smooth(rng, n, sr, 0.3))
    elif kind == "rail":  # wheels over rail joints: bogie click pairs at a steady period
        period = rng.uniform(0.8, 2.0)
        out = np.zeros((channels, n))
        for start in np.arange(rng.uniform(0, period), n / sr, period):
            for offset in (0.0, rng.uniform(0.12, 0.25)):
                click = _click(rng, sr, 40, 1500, 0.02)
                s = int((start + offset) * sr)
                m = min(len(click), n - s)
                if m > 0:
                    out[:, s : s + m] += click[:m]
        out += 0.3 * _filter(_white(rng, channels, n, 0.8), sr, 30, 200)
    elif kind == "music":
        root = rng.uniform(110, 220)
        out = np.zeros((channels, n))
        pos = 0
        while pos < n:
            m = min(int(rng.uniform(1.2, 2.5) * sr), n - pos)
            degree = int(rng.choice([0, 2, 4, 5, 7, 9]))
            third = 4 if degree in (0, 5, 7) else 3
            notes = root * 2.0 ** ((np.array([0, third, 7, -12]) + degree) / 12.0)
            chord = sum(_tone(f, m, sr, (1.0, 0.3, 0.1)) for f in notes)
            out[:, pos : pos + m] += chord * _decay(m, sr, 1.5, 0.02)
            pos += m
    else:
        raise ValueError(f"unknown layer {kind!r}")
    rms = np.sqrt(np.mean(out**2))
    return out / rms if rms > 0 else out


def _hum(kind: str, rng: np.random.Generator, sr: int, n: int, f0: float) -> np.ndarray:
    if kind == "engine":  # rpm follows the drive: accelerate, cruise, idle
        f = f0 * (1.0 + 0.35 * _smooth(rng, n, sr, 0.3))
        out = _tone(f, n, sr, (1.0, 0.7, 0.5, 0.4, 0.25, 0.15, 0.1, 0.05))
        out *= 1.0 + 0.3 * _smooth(rng, n, sr, 2.0)
    elif kind == "motor":  # traction inverter whine sweeping with speed, plus gear mesh
        f = f0 * (1.0 + 0.5 * _smooth(rng, n, sr, 0.2))
        out = _tone(f, n, sr, (1.0, 0.2, 0.3)) + 0.5 * _tone(f * 0.137, n, sr, (1.0, 0.5, 0.3))
    elif kind == "rail":
        f = f0 * (1.0 + 0.2 * _smooth(rng, n, sr, 0.25))
        out = _tone(f, n, sr, (1.0, 0.5, 0.3, 0.2)) + 0.3 * _tone(f * 7.1, n, sr, (1.0,))
    elif kind == "hvac":  # mains hum and a fan's blade tone
        mains = _tone(50.0 * rng.uniform(0.998, 1.002), n, sr, (0.5, 1.0, 0.4, 0.2))
        out = mains + _tone(f0 * (1.0 + 0.01 * _smooth(rng, n, sr, 0.5)), n, sr, (1.0, 0.3))
    else:
        raise ValueError(f"unknown hum {kind!r}")
    return out / np.sqrt(np.mean(out**2))


# ----------------------------------------------------------------------------------------------
# Rooms, devices and clips.


def _place(track: np.ndarray, wave: np.ndarray, start: int, pan, sr: int) -> None:
    """Adds `wave` into `track` [channels, n] at `start` with a level/time difference by `pan`."""
    n = track.shape[1]
    lo, hi = max(0, start), min(n, start + len(wave))
    if hi <= lo:
        return
    seg = wave[lo - start : hi - start]
    if track.shape[0] == 1:
        track[0, lo:hi] += seg
        return
    pan = pan[lo - start : hi - start] if isinstance(pan, np.ndarray) else pan
    gains = (np.sqrt(0.5 * (1.0 - 0.8 * pan)), np.sqrt(0.5 * (1.0 + 0.8 * pan)))
    itd = 0 if isinstance(pan, np.ndarray) else int(round(abs(pan) * 0.0006 * sr))
    late = 0 if np.mean(pan) > 0 else 1  # the ear away from the source hears it later
    for ch in range(2):
        shift = itd if ch == late else 0
        if shift:
            track[ch, lo + shift : hi] += (gains[ch] * seg)[: hi - lo - shift]
        else:
            track[ch, lo:hi] += gains[ch] * seg


@dataclasses.dataclass(frozen=True)
class _Grid:
    """Sample rate, channels, clip length and the shared FFT grid of one dataset."""

    sr: int
    channels: int
    n: int  # samples of a clip
    pre: int  # samples generated before the clip
    nfft: int  # FFT size of the room/device stage (clip + pre-roll + longest IR)
    freqs: np.ndarray  # [nfft // 2 + 1] Hz
    rho: np.ndarray  # [nfft // 2 + 1] diffuse-field coherence of the two ears


def _grid(task: str, clip_seconds: float) -> _Grid:
    sr = SAMPLE_RATES[task]
    n = int(round(clip_seconds * sr))
    pre = int(_PRE_ROLL_S * sr)
    nfft = sfft.next_fast_len(n + pre + int(_MAX_IR_S * sr) + 1, real=True)
    freqs = sfft.rfftfreq(nfft, 1.0 / sr)
    rho = np.sinc(2.0 * freqs * _EAR_DISTANCE_M / _SPEED_OF_SOUND).astype(np.float32)
    return _Grid(sr, CHANNELS[task], n, pre, nfft, freqs, rho)


def _room_response(loc: _Location, grid: _Grid) -> np.ndarray:
    """Direct sound plus a decaying-noise reverberation tail, [channels, nfft // 2 + 1]."""
    sr, channels, nfft = grid.sr, grid.channels, grid.nfft
    rng = _rng(*loc.seed_keys, "room")
    length = int(min(loc.rt60, _MAX_IR_S) * sr)
    t = np.arange(length) / sr
    env = np.exp(-6.91 * t / loc.rt60) * np.minimum(1.0, t / 0.01)
    fade = length // 10
    env[length - fade :] *= np.linspace(1.0, 0.0, fade)
    predelay = int(rng.uniform(0.003, 0.03) * sr)
    tail = _white(rng, channels, length) * env.astype(np.float32)
    tail *= np.float32(_db(loc.wet_db)) / np.sqrt(np.sum(tail**2, axis=1, keepdims=True))
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


def _bed_shape(loc: _Location, freqs: np.ndarray) -> np.ndarray:
    f = np.maximum(freqs, 1.0)
    lo, hi = loc.bed_band
    shape = (f / 1000.0) ** (loc.tilt / 6.02)
    shape /= np.sqrt(1.0 + (lo / f) ** 4) * np.sqrt(1.0 + (f / hi) ** 4)
    return shape / np.sqrt(np.mean(shape**2))


def _draw_location(
    scene: str, city: str, location: str, *, seed: int, city_style: tuple[float, ...]
) -> _Location:
    prof = _PROFILES[scene]
    keys = (seed, "location", scene, city, location)
    rng = _rng(*keys)
    tilt_off, level_off, rate_factor, rt_factor = city_style
    jitter = rng.normal
    return _Location(
        scene=scene,
        city=city,
        location=location,
        bed_db=prof.bed_db + level_off + jitter(0, 3.0),
        tilt=prof.tilt + tilt_off + jitter(0, 0.8),
        bed_band=(
            prof.bed_band[0] * rng.uniform(0.7, 1.4),
            prof.bed_band[1] * rng.uniform(0.7, 1.3),
        ),
        hum_f0=prof.hum_f0 * rng.uniform(0.85, 1.15),
        hum_db=prof.hum_db + level_off + jitter(0, 4.0),
        layer_db=tuple(db + level_off + jitter(0, 3.0) for _, db in prof.layers),
        rates=tuple(rate * rate_factor * rng.lognormal(0, 0.45) for _, rate, _ in prof.events),
        event_db=tuple(db + level_off + jitter(0, 3.0) for _, _, db in prof.events),
        rt60=prof.rt60 * rt_factor * rng.uniform(0.7, 1.4),
        wet_db=prof.wet_db + jitter(0, 2.0),
        seed_keys=keys,
    )


def _city_style(seed: int, city: str) -> tuple[float, float, float, float]:
    rng = _rng(seed, "city", city)
    return (
        rng.normal(0, 0.5),  # tilt offset, dB/octave
        rng.normal(0, 2.0),  # level offset, dB
        rng.lognormal(0, 0.25),  # event rate factor
        rng.uniform(0.85, 1.2),  # reverberation factor
    )


def _location_filters(
    loc: _Location, devices: Sequence[str], grid: _Grid
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per device: (room x device [channels, F] complex64, bed-plus-self-noise x device [F])."""
    room = _room_response(loc, grid)
    bed = _db(loc.bed_db) * _bed_shape(loc, grid.freqs)
    out = {}
    for name in devices:
        response = _device_response(name, grid.freqs)
        noise = np.sqrt(bed**2 + _db(_DEVICES[name].noise_db) ** 2) * response
        out[name] = ((room * response).astype(np.complex64), noise.astype(np.float32))
    return out


def _dry(loc: _Location, rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    """Hum, layers and events of one segment before the room, [channels, pre + n] float32."""
    prof = _PROFILES[loc.scene]
    sr, total = grid.sr, grid.pre + grid.n
    dry = np.zeros((grid.channels, total), dtype=np.float32)
    if prof.hum:
        f0 = loc.hum_f0 * rng.uniform(0.97, 1.03)
        dry += _db(loc.hum_db) * _hum(prof.hum, rng, sr, total, f0)
    for (kind, _), db in zip(prof.layers, loc.layer_db, strict=True):
        dry += _db(db + rng.normal(0, 1.5)) * _layer(kind, rng, sr, total, grid.channels)
    for (kind, _, _), rate, db in zip(prof.events, loc.rates, loc.event_db, strict=True):
        for _ in range(rng.poisson(rate * total / sr / 60.0)):
            wave, pan = _EVENTS[kind](rng, sr)
            start = int(rng.uniform(-0.5 * len(wave), total - 0.5 * len(wave)))
            _place(dry, _db(db + rng.normal(0, 3.0)) * wave, start, pan, sr)
    return dry


def _render(
    loc: _Location,
    segment: str,
    filters: dict[str, tuple[np.ndarray, np.ndarray]],
    grid: _Grid,
) -> dict[str, np.ndarray]:
    """One segment of `loc` as recorded by each device of `filters`: {device: [n, channels]}."""
    rng = _rng(*loc.seed_keys, "segment", segment)
    spectrum = sfft.rfft(_dry(loc, rng, grid), n=grid.nfft, axis=-1)  # [channels, F] complex64
    bins = len(grid.freqs)
    parts = rng.standard_normal((2, grid.channels, bins), dtype=np.float32)
    white = (parts[0] + 1j * parts[1]) * np.float32(math.sqrt(grid.nfft / 2))  # E|W|^2 = nfft
    if grid.channels == 2:  # diffuse field: the ears are coherent at low frequencies only
        white[1] = grid.rho * white[0] + np.sqrt(1.0 - grid.rho**2) * white[1]
    out = {}
    for name, (room, noise) in filters.items():
        dev = _DEVICES[name]
        y = sfft.irfft(spectrum * room + white * noise, n=grid.nfft, axis=-1)
        y = y[:, grid.pre : grid.pre + grid.n].astype(np.float64) * _db(dev.gain_db)
        if dev.drive:
            y = np.tanh(dev.drive * y) / dev.drive
        peak = np.max(np.abs(y))
        if peak > _PEAK:
            y *= _PEAK / peak
        out[name] = y.T
    return out


# ----------------------------------------------------------------------------------------------
# Folder layout.


@dataclasses.dataclass(frozen=True)
class _Clip:
    loc: _Location
    segment: str
    split: str  # "train" or "evaluate"
    devices: tuple[str, ...]


def _check_out_dir(root: pathlib.Path, *, overwrite: bool) -> None:
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True to replace it")
        readme = root / "README.txt"
        if not (readme.is_file() and readme.read_text(encoding="utf-8").startswith(_MARK)):
            raise FileExistsError(
                f"{root} holds files this module did not write (no synthetic README.txt); "
                "refusing to delete them"
            )
        for sub in ("audio", "evaluation_setup"):
            if (root / sub).is_dir():
                shutil.rmtree(root / sub)
        for name in ("meta.csv", "README.txt"):
            (root / name).unlink(missing_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)


def _write_tsv(path: pathlib.Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plan(
    task: str,
    *,
    clips_per_class: int,
    clips_per_location: int,
    cities: Sequence[str],
    evaluate_fraction: float,
    parallel_fraction: float,
    seed: int,
) -> list[_Clip]:
    """Locations, segments, splits and devices of every clip (no audio yet)."""
    class_names = labels.classes(task)
    if task == "1a":
        members = {scene: [scene] for scene in labels.SCENES_1A}
    else:
        members = {c: [s for s in labels.SCENES_1A if labels.SCENE_TO_1B[s] == c] for c in
                   class_names}
    city_styles = {city: _city_style(seed, city) for city in cities}
    next_location = dict.fromkeys(cities, 0)
    clips: list[_Clip] = []
    for ci, cls in enumerate(class_names):
        scenes = members[cls]
        per_scene = [clips_per_class // len(scenes) + (j < clips_per_class % len(scenes))
                     for j in range(len(scenes))]
        by_scene = []  # locations of each scene: (loc, number of segments)
        for si, (scene, count) in enumerate(zip(scenes, per_scene, strict=True)):
            locs = []
            for k in range(math.ceil(count / clips_per_location)):
                city = cities[(k + ci + si) % len(cities)]
                location = str(next_location[city])
                next_location[city] += 1
                loc = _draw_location(scene, city, location, seed=seed,
                                     city_style=city_styles[city])
                locs.append((loc, min(clips_per_location, count - k * clips_per_location)))
            by_scene.append(locs)
        # Interleave the scenes' locations so that evaluate covers every scene of the class.
        order = []
        split_rng = _rng(seed, "split", cls)
        for locs in by_scene:
            split_rng.shuffle(locs)
        for k in range(max(len(locs) for locs in by_scene)):
            order.extend(locs[k] for locs in by_scene if k < len(locs))
        if len(order) < 2:
            raise ValueError(
                f"class {cls!r} has {len(order)} location(s); both splits need one: raise "
                "clips_per_class or lower clips_per_location"
            )
        num_eval = min(len(order) - 1, max(1, round(evaluate_fraction * len(order))))
        for i, (loc, count) in enumerate(order):
            split = "evaluate" if i < num_eval else "train"
            if split == "evaluate" and task == "1a":  # only the parallel-recorded segments
                count = math.ceil(count / _EVAL_THINNING_1A)
            for k in range(count):
                clips.append(_Clip(loc, str(_SEGMENT_STEP * k), split, ("a",)))
    if task == "1a":
        clips = _add_parallel_devices(clips, parallel_fraction=parallel_fraction, seed=seed)
    return clips


def _add_parallel_devices(
    clips: list[_Clip], *, parallel_fraction: float, seed: int
) -> list[_Clip]:
    """1A: every evaluate segment gets all devices, a fraction of train segments b, c, s1-s3."""
    rng = _rng(seed, "devices")
    train = [i for i, c in enumerate(clips) if c.split == "train"]
    extra: dict[int, list[str]] = {i: [] for i in train}
    for dev in TRAIN_DEVICES_1A:
        count = round(parallel_fraction * len(train))
        for i in rng.choice(len(train), size=count, replace=False):
            extra[train[int(i)]].append(dev)
    out = []
    for i, clip in enumerate(clips):
        if clip.split == "evaluate":
            devs = labels.DEVICES_1A
        else:
            devs = ("a", *sorted(extra[i], key=labels.DEVICES_1A.index))
        out.append(dataclasses.replace(clip, devices=devs))
    return out


def _write_wav(path: pathlib.Path, y: np.ndarray, sr: int) -> None:
    sf.write(path, y[:, 0] if y.shape[1] == 1 else y, sr, subtype=SUBTYPE, format="WAV")


def _filename(loc: _Location, segment: str, device: str) -> str:
    return f"audio/{loc.scene}-{loc.city}-{loc.location}-{segment}-{device}.wav"


def _readme(subtask: str, **settings) -> str:
    lines = [
        f"{_MARK} stand-in for the DCASE 2020 Task 1{subtask[1].upper()} data.",
        "",
        "Written by asc_keras.data.synthetic. No recording in this folder is real: every clip is",
        "synthesised (coloured noise beds, hums, scene-typical events, room reverberation and a",
        "device colouring). Use it to test and demonstrate code, never to report results.",
        "Layout, file names and CSV headers follow the official TAU Urban Acoustic Scenes 2020",
        "packages.",
        "",
        "Settings:",
    ]
    lines += [f"  {key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _validate(task: str, clip_seconds: float, seed: int) -> None:
    if task not in SAMPLE_RATES:
        raise ValueError(f"unknown task {task!r}; expected '1a' or '1b'")
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def generate(
    out_dir: str | os.PathLike,
    *,
    task: str,
    clips_per_class: int = 90,
    clips_per_location: int = 3,
    num_cities: int = 10,
    clip_seconds: float = 10.0,
    evaluate_fraction: float = 0.3,
    parallel_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetSummary:
    """Writes a synthetic DCASE 2020 Task 1 development set in the official layout.

    Sizes: every class of the task (10 scenes for 1A, 3 classes for 1B) gets `clips_per_class`
    segments recorded by device `a` (1B spreads them evenly over the class's scenes), grouped
    into locations of `clips_per_location` segments each; about `evaluate_fraction` of each
    class's locations (at least one, never all) form the evaluate split. In 1A, each of devices
    b, c, s1, s2, s3 also records `parallel_fraction` of the training segments; evaluate
    locations keep one segment in three (rounded up), each recorded by all nine devices (so
    s4-s6 occur only in evaluate, and every device has the same evaluate count). With the
    defaults, 1A has about 95 train and 81 evaluate files per scene, 1B 187 train and 83 evaluate
    files in all.

    Args:
        out_dir: dataset folder; created if needed, must be empty unless `overwrite`.
        task: "1a" (44.1 kHz mono, 10 scenes, 9 devices) or "1b" (48 kHz stereo, 3 classes,
            device a).
        clips_per_class: device-a segments per class, both splits together.
        clips_per_location: segments per location (the last location of a scene may have fewer).
        num_cities: the first `num_cities` of `labels.CITIES` are used, cycled over locations.
        clip_seconds: duration of every clip; the official sets have 10 s.
        evaluate_fraction: share of each class's locations that go to the evaluate split.
        parallel_fraction: 1A only, share of training segments each of b, c, s1-s3 records.
        seed: non-negative; equal arguments write byte-identical files.
        overwrite: replace the files of an earlier synthetic set in `out_dir` (a folder whose
            README.txt was not written by this module is never touched).

    Returns:
        A `DatasetSummary` of what was written.

    Raises:
        ValueError: for an unknown task, a non-positive size, or a class with a single location.
        FileExistsError: when `out_dir` is not empty and `overwrite` is False, or when it holds
            something other than a synthetic set.
    """
    started = time.perf_counter()
    _validate(task, clip_seconds, seed)
    if clips_per_class < 2 or clips_per_location < 1 or not 1 <= num_cities <= len(labels.CITIES):
        raise ValueError(
            f"need clips_per_class >= 2, clips_per_location >= 1 and 1 <= num_cities <= "
            f"{len(labels.CITIES)}; got {clips_per_class}, {clips_per_location}, {num_cities}"
        )
    if not 0.0 < evaluate_fraction < 1.0 or not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError("evaluate_fraction must lie in (0, 1) and parallel_fraction in [0, 1]")
    root = pathlib.Path(out_dir)
    grid = _grid(task, clip_seconds)
    clips = _plan(
        task,
        clips_per_class=clips_per_class,
        clips_per_location=clips_per_location,
        cities=labels.CITIES[:num_cities],
        evaluate_fraction=evaluate_fraction,
        parallel_fraction=parallel_fraction,
        seed=seed,
    )
    _check_out_dir(root, overwrite=overwrite)
    settings = dict(task=task, clips_per_class=clips_per_class,
                    clips_per_location=clips_per_location, num_cities=num_cities,
                    clip_seconds=clip_seconds, evaluate_fraction=evaluate_fraction,
                    parallel_fraction=parallel_fraction, seed=seed)
    # Written first: an interrupted run leaves a folder that `overwrite` recognises as ours.
    (root / "README.txt").write_text(_readme(task, **settings), encoding="utf-8")

    meta, train, evaluate = [], [], []
    location_devices: dict[str, set[str]] = {}
    for clip in clips:
        location_devices.setdefault(clip.loc.identifier, set()).update(clip.devices)
    ident, filters = None, {}
    for clip in clips:
        if clip.loc.identifier != ident:  # clips of a location are consecutive
            ident = clip.loc.identifier
            filters = _location_filters(clip.loc, sorted(location_devices[ident]), grid)
        audio = _render(clip.loc, clip.segment, {d: filters[d] for d in clip.devices}, grid)
        label = clip.loc.scene if task == "1a" else labels.SCENE_TO_1B[clip.loc.scene]
        for device, y in audio.items():
            name = _filename(clip.loc, clip.segment, device)
            _write_wav(root / name, y, grid.sr)
            meta.append((name, label, ident, device))
            (train if clip.split == "train" else evaluate).append((name, label))
    meta.sort()
    train.sort()
    evaluate.sort()
    _write_tsv(root / "meta.csv", ("filename", "scene_label", "identifier", "source_label"), meta)
    setup = root / "evaluation_setup"
    _write_tsv(setup / "fold1_train.csv", ("filename", "scene_label"), train)
    _write_tsv(setup / "fold1_evaluate.csv", ("filename", "scene_label"), evaluate)
    _write_tsv(setup / "fold1_test.csv", ("filename",), [(f,) for f, _ in evaluate])
    devices = tuple(d for d in labels.devices(task) if any(row[3] == d for row in meta))
    return DatasetSummary(
        root=root,
        task=task,
        classes=labels.classes(task),
        sample_rate=grid.sr,
        channels=grid.channels,
        clip_seconds=clip_seconds,
        num_train=len(train),
        num_evaluate=len(evaluate),
        num_locations=len({row[2] for row in meta}),
        devices=devices,
        seconds=time.perf_counter() - started,
    )


def make_unlabeled_eval(
    out_dir: str | os.PathLike,
    *,
    task: str,
    num_clips: int = 20,
    clip_seconds: float = 10.0,
    seed: int = 1,
    answer_key: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> DatasetSummary:
    """Writes a challenge-evaluation-style folder: `audio/0.wav` ... and an unlabeled test list.

    Scenes, cities and (1A) devices are drawn at random; `evaluation_setup/fold1_test.csv` has the
    header `filename` only. No label is stored in the folder; `answer_key`, when given, receives
    a tab-separated `filename  scene_label` file (place it outside `out_dir`).

    Args:
        out_dir: dataset folder; created if needed, must be empty unless `overwrite`.
        task: "1a" or "1b".
        num_clips: number of files.
        clip_seconds: duration of every clip.
        seed: non-negative; use a different seed from the development set's.
        answer_key: optional path of the hidden labels (task classes).
        overwrite: replace the files of an earlier synthetic set in `out_dir`.

    Returns:
        A `DatasetSummary` (`num_evaluate` = `num_clips`, no train rows, no locations).
    """
    started = time.perf_counter()
    _validate(task, clip_seconds, seed)
    if num_clips < 1:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    root = pathlib.Path(out_dir)
    _check_out_dir(root, overwrite=overwrite)
    (root / "README.txt").write_text(
        _readme(task, kind="unlabeled evaluation set", num_clips=num_clips,
                clip_seconds=clip_seconds, seed=seed),
        encoding="utf-8",
    )
    grid = _grid(task, clip_seconds)
    rng = _rng(seed, "unlabeled", task)
    names, key, used = [], [], set()
    for i in range(num_clips):
        scene = str(rng.choice(labels.SCENES_1A))
        city = str(rng.choice(labels.CITIES))
        device = str(rng.choice(labels.devices(task)))
        loc = _draw_location(scene, city, f"eval{i}", seed=seed,
                             city_style=_city_style(seed, city))
        y = _render(loc, "0", _location_filters(loc, (device,), grid), grid)
        name = f"audio/{i}.wav"
        _write_wav(root / name, y[device], grid.sr)
        names.append((name,))
        key.append((name, scene if task == "1a" else labels.SCENE_TO_1B[scene]))
        used.add(device)
    _write_tsv(root / "evaluation_setup" / "fold1_test.csv", ("filename",), names)
    if answer_key is not None:
        _write_tsv(pathlib.Path(answer_key), ("filename", "scene_label"), key)
    return DatasetSummary(
        root=root,
        task=task,
        classes=labels.classes(task),
        sample_rate=grid.sr,
        channels=grid.channels,
        clip_seconds=clip_seconds,
        num_train=0,
        num_evaluate=num_clips,
        num_locations=0,
        devices=tuple(d for d in labels.devices(task) if d in used),
        seconds=time.perf_counter() - started,
    )


# ----------------------------------------------------------------------------------------------
# Command line.


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_enum("task", "1b", ["1a", "1b"], "Which development set to imitate.")
    flags.DEFINE_string("out", None, "Output dataset folder.", required=True)
    flags.DEFINE_integer("clips_per_class", 90, "Device-a segments per class.", lower_bound=2)
    flags.DEFINE_integer("clips_per_location", 3, "Segments per location.", lower_bound=1)
    flags.DEFINE_integer("num_cities", 10, "Number of cities.", lower_bound=1, upper_bound=10)
    flags.DEFINE_float("clip_seconds", 10.0, "Clip duration in seconds.", lower_bound=0.01)
    flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
    flags.DEFINE_integer(
        "unlabeled_clips", 0,
        "If positive, write a challenge-style unlabeled evaluation folder of this many clips "
        "instead of a development set.", lower_bound=0,
    )
    flags.DEFINE_bool("overwrite", False, "Replace an earlier synthetic set in --out.")


def main(argv: Sequence[str]) -> None:
    """CLI entry: writes one synthetic folder and prints a one-line summary."""
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    if f.unlabeled_clips:
        summary = make_unlabeled_eval(f.out, task=f.task, num_clips=f.unlabeled_clips,
                                      clip_seconds=f.clip_seconds, seed=f.seed,
                                      overwrite=f.overwrite)
    else:
        summary = generate(f.out, task=f.task, clips_per_class=f.clips_per_class,
                           clips_per_location=f.clips_per_location, num_cities=f.num_cities,
                           clip_seconds=f.clip_seconds, seed=f.seed, overwrite=f.overwrite)
    print(summary.line())


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
