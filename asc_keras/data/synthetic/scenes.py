"""Scene sounds, part 2: scene profiles, per-location draws and the dry sound of a segment.

Every scene has a profile (noise bed, hum, continuous layers, events with rates and levels, room);
a location jitters every profile value (`draw_location`), a city shifts levels, tilt, rates and
reverberation (`draw_city_style`). `dry_segment` renders hum, layers and events of one segment
before the room on the dataset's `grid.Grid`: float32 `[channels, pre + n]`.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import numpy as np

from asc_keras.data.synthetic.grid import Grid
from asc_keras.data.synthetic.signals import (
    EVENTS,
    band_filter,
    click_burst,
    db_gain,
    decay_envelope,
    seeded_rng,
    smooth_noise,
    tone,
    white_noise,
)

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
            -42,
            -4.5,
            (40, 9000),
            "hvac",
            120,
            -40,
            (("babble", -37),),
            (
                ("announcement", 2.0, -21),
                ("footsteps", 6, -27),
                ("suitcase", 4, -28),
                ("voice", 7, -25),
                ("beeps", 0.5, -29),
            ),
            1.8,
            -3,
        ),
        "shopping_mall": _Profile(
            -43,
            -3.8,
            (40, 10000),
            "hvac",
            100,
            -42,
            (("babble", -34), ("music", -34)),
            (
                ("voice", 10, -25),
                ("footsteps", 8, -28),
                ("clink", 6, -27),
                ("announcement", 0.5, -24),
            ),
            1.3,
            -5,
        ),
        "metro_station": _Profile(
            -40,
            -4.5,
            (30, 8000),
            "hvac",
            140,
            -40,
            (("babble", -38),),
            (
                ("train_pass", 2.5, -17),
                ("announcement", 2, -21),
                ("beeps", 2, -25),
                ("footsteps", 8, -28),
                ("squeal", 1, -27),
            ),
            2.4,
            -2,
        ),
        "park": _Profile(
            -50,
            -2.0,
            (20, 14000),
            None,
            0,
            -99,
            (("wind", -42), ("traffic", -48)),
            (("bird", 20, -24), ("voice", 3, -30), ("footsteps", 4, -32), ("car_pass", 0.5, -34)),
            0.15,
            -16,
        ),
        "public_square": _Profile(
            -44,
            -2.3,
            (25, 13000),
            None,
            0,
            -99,
            (("babble", -38), ("traffic", -41)),
            (("voice", 10, -25), ("footsteps", 10, -28), ("bird", 4, -29), ("car_pass", 2, -27)),
            0.45,
            -10,
        ),
        "street_pedestrian": _Profile(
            -43,
            -2.5,
            (25, 13000),
            None,
            0,
            -99,
            (("babble", -37), ("traffic", -39)),
            (("footsteps", 16, -26), ("voice", 10, -25), ("car_pass", 3, -25), ("bird", 1, -31)),
            0.3,
            -12,
        ),
        "street_traffic": _Profile(
            -41,
            -2.6,
            (20, 13000),
            "engine",
            32,
            -47,
            (("traffic", -37),),
            (("car_pass", 14, -17), ("horn", 1.5, -21), ("footsteps", 2, -32)),
            0.2,
            -14,
        ),
        "bus": _Profile(
            -35,
            -5.5,
            (20, 6000),
            "engine",
            36,
            -29,
            (("babble", -44),),
            (("voice", 5, -27), ("beeps", 1, -26), ("announcement", 1, -26), ("door", 1, -25)),
            0.35,
            -8,
        ),
        "metro": _Profile(
            -34,
            -5.0,
            (20, 7000),
            "motor",
            420,
            -33,
            (("rail", -33),),
            (
                ("announcement", 2, -24),
                ("beeps", 1, -26),
                ("door", 1, -25),
                ("squeal", 1, -30),
                ("voice", 3, -30),
            ),
            0.3,
            -8,
        ),
        "tram": _Profile(
            -37,
            -4.5,
            (20, 8000),
            "rail",
            110,
            -35,
            (("rail", -36),),
            (
                ("squeal", 2, -26),
                ("beeps", 2, -24),
                ("announcement", 1, -26),
                ("voice", 5, -28),
                ("door", 1, -25),
            ),
            0.35,
            -9,
        ),
    }
)


@dataclasses.dataclass(frozen=True)
class Location:
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
# Continuous layers and hum: each returns a [channels, n] array with RMS about 1.


def _layer(kind: str, rng: np.random.Generator, sr: int, n: int, channels: int) -> np.ndarray:
    if kind == "babble":
        noise = band_filter(white_noise(rng, channels, n, 0.4), sr, 150, 3500)
        env = 1.0 + 0.6 * smooth_noise(rng, n, sr, 5.0) + 0.3 * smooth_noise(rng, n, sr, 1.0)
        out = noise * env
    elif kind == "wind":
        noise = band_filter(white_noise(rng, channels, n, 0.2), sr, None, rng.uniform(200, 600))
        out = noise * (1.0 + 0.8 * smooth_noise(rng, n, sr, 0.7))
    elif kind == "traffic":
        noise = band_filter(white_noise(rng, channels, n, 0.7), sr, 40, rng.uniform(500, 1500))
        out = noise * (1.0 + 0.5 * smooth_noise(rng, n, sr, 0.3))
    elif kind == "rail":  # wheels over rail joints: bogie click pairs at a steady period
        period = rng.uniform(0.8, 2.0)
        out = np.zeros((channels, n))
        for start in np.arange(rng.uniform(0, period), n / sr, period):
            for offset in (0.0, rng.uniform(0.12, 0.25)):
                click = click_burst(rng, sr, 40, 1500, 0.02)
                s = int((start + offset) * sr)
                m = min(len(click), n - s)
                if m > 0:
                    out[:, s : s + m] += click[:m]
        out += 0.3 * band_filter(white_noise(rng, channels, n, 0.8), sr, 30, 200)
    elif kind == "music":
        root = rng.uniform(110, 220)
        out = np.zeros((channels, n))
        pos = 0
        while pos < n:
            m = min(int(rng.uniform(1.2, 2.5) * sr), n - pos)
            degree = int(rng.choice([0, 2, 4, 5, 7, 9]))
            third = 4 if degree in (0, 5, 7) else 3
            notes = root * 2.0 ** ((np.array([0, third, 7, -12]) + degree) / 12.0)
            chord = sum(tone(f, m, sr, (1.0, 0.3, 0.1)) for f in notes)
            out[:, pos : pos + m] += chord * decay_envelope(m, sr, 1.5, 0.02)
            pos += m
    else:
        raise ValueError(f"unknown layer {kind!r}")
    rms = np.sqrt(np.mean(out**2))
    return out / rms if rms > 0 else out


def _hum(kind: str, rng: np.random.Generator, sr: int, n: int, f0: float) -> np.ndarray:
    if kind == "engine":  # rpm follows the drive: accelerate, cruise, idle
        f = f0 * (1.0 + 0.35 * smooth_noise(rng, n, sr, 0.3))
        out = tone(f, n, sr, (1.0, 0.7, 0.5, 0.4, 0.25, 0.15, 0.1, 0.05))
        out *= 1.0 + 0.3 * smooth_noise(rng, n, sr, 2.0)
    elif kind == "motor":  # traction inverter whine sweeping with speed, plus gear mesh
        f = f0 * (1.0 + 0.5 * smooth_noise(rng, n, sr, 0.2))
        out = tone(f, n, sr, (1.0, 0.2, 0.3)) + 0.5 * tone(f * 0.137, n, sr, (1.0, 0.5, 0.3))
    elif kind == "rail":
        f = f0 * (1.0 + 0.2 * smooth_noise(rng, n, sr, 0.25))
        out = tone(f, n, sr, (1.0, 0.5, 0.3, 0.2)) + 0.3 * tone(f * 7.1, n, sr, (1.0,))
    elif kind == "hvac":  # mains hum and a fan's blade tone
        mains = tone(50.0 * rng.uniform(0.998, 1.002), n, sr, (0.5, 1.0, 0.4, 0.2))
        out = mains + tone(f0 * (1.0 + 0.01 * smooth_noise(rng, n, sr, 0.5)), n, sr, (1.0, 0.3))
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


def bed_shape(loc: Location, freqs: np.ndarray) -> np.ndarray:
    f = np.maximum(freqs, 1.0)
    lo, hi = loc.bed_band
    shape = (f / 1000.0) ** (loc.tilt / 6.02)
    shape /= np.sqrt(1.0 + (lo / f) ** 4) * np.sqrt(1.0 + (f / hi) ** 4)
    return shape / np.sqrt(np.mean(shape**2))


def draw_location(
    scene: str, city: str, location: str, *, seed: int, city_style: tuple[float, ...]
) -> Location:
    prof = _PROFILES[scene]
    keys = (seed, "location", scene, city, location)
    rng = seeded_rng(*keys)
    tilt_off, level_off, rate_factor, rt_factor = city_style
    jitter = rng.normal
    return Location(
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


def draw_city_style(seed: int, city: str) -> tuple[float, float, float, float]:
    rng = seeded_rng(seed, "city", city)
    return (
        rng.normal(0, 0.5),  # tilt offset, dB/octave
        rng.normal(0, 2.0),  # level offset, dB
        rng.lognormal(0, 0.25),  # event rate factor
        rng.uniform(0.85, 1.2),  # reverberation factor
    )


def dry_segment(loc: Location, rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """Hum, layers and events of one segment before the room, [channels, pre + n] float32."""
    prof = _PROFILES[loc.scene]
    sr, total = grid.sr, grid.pre + grid.n
    dry = np.zeros((grid.channels, total), dtype=np.float32)
    if prof.hum:
        f0 = loc.hum_f0 * rng.uniform(0.97, 1.03)
        dry += db_gain(loc.hum_db) * _hum(prof.hum, rng, sr, total, f0)
    for (kind, _), db in zip(prof.layers, loc.layer_db, strict=True):
        dry += db_gain(db + rng.normal(0, 1.5)) * _layer(kind, rng, sr, total, grid.channels)
    for (kind, _, _), rate, db in zip(prof.events, loc.rates, loc.event_db, strict=True):
        for _ in range(rng.poisson(rate * total / sr / 60.0)):
            wave, pan = EVENTS[kind](rng, sr)
            start = int(rng.uniform(-0.5 * len(wave), total - 0.5 * len(wave)))
            _place(dry, db_gain(db + rng.normal(0, 3.0)) * wave, start, pan, sr)
    return dry
