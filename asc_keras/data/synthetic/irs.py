"""Synthetic device impulse responses: a folder of WAV files for DIR augmentation tests and demos.

`write_device_irs(out_dir, count, *, sample_rate, seed)` writes `<out_dir>/device_irs/
ir_000.wav ...`: 24-bit mono responses of 10-40 ms, each an impulse plus a short exponentially
decaying noise tail, band-limited by a high-pass (60-400 Hz) and a low-pass (3-12 kHz) of its
own and scaled to a 0.9 peak, like a small microphone's response. Deterministic: the same
arguments write byte-identical files. They stand in for a real set such as MicIRP.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from asc_keras.data.synthetic.signals import band_filter, decay_envelope, seeded_rng
from asc_keras.data.synthetic.writing import write_wav

IR_FOLDER = "device_irs"


def device_ir(index: int, *, sample_rate: int = 44100, seed: int = 0) -> np.ndarray:
    """Response `index` of the set of `seed`: float32 `[n]`, peak 0.9."""
    rng = seeded_rng(seed, "device_ir", index)
    n = int(rng.uniform(0.010, 0.040) * sample_rate)
    tail = rng.standard_normal(n) * decay_envelope(n, sample_rate, rng.uniform(0.002, 0.008))
    x = np.zeros(n)
    x[0] = 1.0
    x += rng.uniform(0.2, 0.8) * tail
    y = band_filter(x, sample_rate, rng.uniform(60.0, 400.0), rng.uniform(3000.0, 12000.0))
    return (0.9 * y / np.max(np.abs(y))).astype(np.float32)


def write_device_irs(
    out_dir: str | os.PathLike, count: int, *, sample_rate: int = 44100, seed: int = 0
) -> pathlib.Path:
    """Write `count` responses to `<out_dir>/device_irs/ir_NNN.wav`; returns that folder."""
    folder = pathlib.Path(out_dir) / IR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        ir = device_ir(i, sample_rate=sample_rate, seed=seed)
        write_wav(folder / f"ir_{i:03d}.wav", ir[:, None], sample_rate)
    return folder
