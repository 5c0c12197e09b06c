"""Device impulse responses (DIR): a folder of responses, the seeded draw, and the convolution.

The DCASE 2023 winner's device-generalization trick (Schmid et al., `cpjku_dcase23`): a clip
recorded by the reference device `a` is convolved with the impulse response of another
microphone (e.g. the MicIRP set), so the network hears device-a scenes through other devices.

- `ir_files(folder)`: the responses, every `*.wav` below `folder` (any depth), sorted by their
  path relative to it; `folder_hash(folder)` hashes their names and contents (a changed folder
  makes new copies).
- `load_irs(folder, sample_rate)`: float32 `[n_i]` each, mono (channel average), resampled to
  the features' rate with the project's audio module (soxr HQ). A file that does not decode, or
  holds an empty or all-zero response, is an `ImpulseResponseError`, one line naming it.
- `draw(seed, clip, copy, num_irs)`: which response copy `copy` of `clip` uses: the first 8
  bytes of `sha256(f"{seed}/{clip}/{copy}")` as a big-endian integer, modulo `num_irs`. No
  random state: the same (seed, clip, copy) always draws the same response, in any process.
- `apply_ir(wave, ir)`: `y[t] = sum_k ir[k] * wave[t - k]` for `t < len(wave)`, i.e. the full
  linear convolution truncated to the clip's length (as the winner's code: no time shift, no
  rescaling, so the response's own gain colours the level too). float32 `[num_samples]`.
- `convolved_copies(wave, clip, irs, *, seed, copies)`: the `copies` convolved waves of a clip.

Pure NumPy/SciPy; no TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np

from asc_keras import audio
from asc_keras.errors import AscError

IR_SUFFIX = ".wav"


class ImpulseResponseError(AscError, ValueError):
    """A device impulse response folder or file that cannot be used; one line naming it."""


def ir_files(folder: str) -> list[str]:
    """Paths of the `*.wav` files below `folder`, relative to it, sorted.

    Raises:
      ImpulseResponseError: the folder is missing or holds no WAV file.
    """
    if not os.path.isdir(folder):
        raise ImpulseResponseError(f"{folder}: device impulse response folder not found")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if name.lower().endswith(IR_SUFFIX) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    if not found:
        raise ImpulseResponseError(f"{folder}: no *.wav device impulse responses in it")
    return sorted(p.replace(os.sep, "/") for p in found)


def folder_hash(folder: str) -> str:
    """sha256 (hex) over the sorted relative names and contents of the folder's responses."""
    h = hashlib.sha256()
    for name in ir_files(folder):
        with open(os.path.join(folder, name), "rb") as f:
            content = hashlib.sha256(f.read()).hexdigest()
        h.update(f"{name}\0{content}\n".encode())
    return h.hexdigest()


def load_ir(path: str, sample_rate: int) -> np.ndarray:
    """One response: float32 `[n]`, mono, at `sample_rate`.

    Raises:
      ImpulseResponseError: undecodable (see `audio.decode`), empty or all-zero.
    """
    try:
        samples, rate = audio.decode(path)  # [frames, channels]
    except audio.AudioError as e:
        raise ImpulseResponseError(f"{path}: bad device impulse response: {e.reason}") from None
    ir = audio.resample(audio.to_mono(samples), rate, sample_rate)  # [n]
    if ir.size == 0 or not np.any(ir):
        raise ImpulseResponseError(f"{path}: bad device impulse response: empty or all zeros")
    return np.ascontiguousarray(ir, dtype=np.float32)


def load_irs(folder: str, sample_rate: int) -> list[np.ndarray]:
    """Every response of `folder` in `ir_files` order (see `load_ir`)."""
    return [load_ir(os.path.join(folder, name), sample_rate) for name in ir_files(folder)]


def draw(seed: int, clip: str, copy: int, num_irs: int) -> int:
    """The response index of copy `copy` of `clip`: sha256 of `seed/clip/copy` mod `num_irs`."""
    if num_irs < 1:
        raise ValueError(f"need at least one impulse response, got {num_irs}")
    digest = hashlib.sha256(f"{int(seed)}/{clip}/{int(copy)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % num_irs


def apply_ir(wave: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """The full convolution of `wave` `[n]` with `ir` `[m]`, truncated to `[n]` (float32)."""
    from scipy import signal

    wave = np.asarray(wave, np.float32)
    y = signal.fftconvolve(wave.astype(np.float64), np.asarray(ir, np.float64))  # [n + m - 1]
    return np.ascontiguousarray(y[: wave.shape[0]], dtype=np.float32)  # [n]


def convolved_copies(
    wave: np.ndarray, clip: str, irs: Sequence[np.ndarray], *, seed: int, copies: int
) -> list[np.ndarray]:
    """The `copies` waves `apply_ir(wave, irs[draw(seed, clip, c, len(irs))])`, c = 0, 1, ..."""
    return [apply_ir(wave, irs[draw(seed, clip, c, len(irs))]) for c in range(copies)]
