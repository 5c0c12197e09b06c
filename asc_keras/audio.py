"""Decode one audio file into a fixed-length mono clip at the feature sample rate.

Input: a WAV (or any container soundfile reads) holding PCM 16/24/32-bit or float samples, any
sample rate, any number of channels. Output: float32 `[cfg.num_samples]` (441,000 samples for
10 s at 44.1 kHz), the channel average, resampled with soxr's high-quality mode (what librosa's
default `res_type='soxr_hq'` uses), then zero-padded or truncated to exactly `cfg.num_samples`.

soundfile is used rather than `tf.audio.decode_wav`, which rejects the 24-bit PCM of the DCASE
2020 data. Every failure is an `AudioError` whose message is one line naming the file; what
libsndfile's MP3 decoder writes straight to the process's stderr while it probes a file that is no
audio is captured and dropped, and libsndfile's misleading "does not exist" for such a file is
reported as "not a recognised audio format".
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import sys
import tempfile

import numpy as np
import soundfile as sf
import soxr

from asc_keras.config import FeatureConfig
from asc_keras.errors import AscError

SUPPORTED_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
RESAMPLE_QUALITY = "HQ"  # soxr's default; librosa's default res_type 'soxr_hq' is the same mode

_RIFF_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF)  # data sizes left unset by streaming writers
# libsndfile's words for "no format of mine": after the MP3 probe fails it says the file "does
# not exist or is not a regular file", which is false here (existence is checked first).
_NOT_AUDIO = ("Format not recognised", "does not exist")
_OPENING = re.compile(r"^Error opening .*?: ")  # soundfile's prefix, naming the path again


class AudioError(AscError, ValueError):
    """A file that cannot become a clip; `str()` is one line, `"<path>: <reason>"`.

    `path` and `reason` are kept as attributes and as `args`, so the error pickles across
    worker processes unchanged.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(os.fspath(path), reason)
        self.path = os.fspath(path)
        self.reason = " ".join(str(reason).split())

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _truncated_wav(path: str | os.PathLike) -> tuple[int, int] | None:
    """`(declared, available)` bytes of a RIFF/WAVE data chunk cut short, else None.

    libsndfile silently shortens such a file to the bytes present, so the header is walked here:
    chunk by chunk up to `data`, whose declared size is compared with the bytes that follow it.
    Files that are not RIFF/WAVE, and the placeholder sizes of streaming writers, are not checked.
    """
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= file_size:
            f.seek(pos)
            chunk_id, size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = file_size - pos - 8
                if size not in _RIFF_PLACEHOLDER_SIZES and size > available:
                    return size, available
                return None
            pos += 8 + size + (size & 1)
    return None


@contextlib.contextmanager
def _stderr_captured():
    """Point file descriptor 2 at a scratch file for the duration (libmpg123, which libsndfile
    tries on files it does not recognise, prints its complaints there, naming no file)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to protect
        yield
        return
    try:
        with tempfile.TemporaryFile() as scratch:
            os.dup2(scratch.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _decode_failure(exc: Exception) -> str:
    """The reason of a libsndfile failure, without the repeated path or its false detail."""
    detail = _OPENING.sub("", " ".join(str(exc).split()))
    if any(words in detail for words in _NOT_AUDIO):
        return "cannot decode audio (not a WAV or any other recognised audio format)"
    return f"cannot decode audio ({detail})"


def decode(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file with soundfile.

    Args:
        path: the audio file.

    Returns:
        `(samples, sample_rate)`: float32 `[frames, channels]` in [-1, 1] (24-bit PCM is exact),
        and the file's sample rate in Hz.

    Raises:
        AudioError: missing file, undecodable or truncated file, a sample format other than
            `SUPPORTED_SUBTYPES`, or non-finite samples.
    """
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    try:
        with _stderr_captured(), sf.SoundFile(path) as f:
            if f.subtype not in SUPPORTED_SUBTYPES:
                raise AudioError(
                    path,
                    f"unsupported sample format {f.subtype}; "
                    f"expected {'/'.join(SUPPORTED_SUBTYPES)}",
                )
            sample_rate = int(f.samplerate)
            declared_frames = f.frames
            samples = f.read(dtype="float32", always_2d=True)  # [frames, channels]
        cut = _truncated_wav(path)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(path, _decode_failure(exc)) from exc
    if samples.shape[0] != declared_frames:
        raise AudioError(
            path, f"truncated audio: header declares {declared_frames} frames, read {len(samples)}"
        )
    if cut is not None:
        raise AudioError(
            path, f"truncated WAV: data chunk declares {cut[0]} bytes, file holds {cut[1]}"
        )
    if sample_rate <= 0:
        raise AudioError(path, f"invalid sample rate {sample_rate}")
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return samples, sample_rate


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio in a file, from its header (nothing is decoded).

    Raises:
        AudioError: missing file, or not a recognised audio format.
    """
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    try:
        with _stderr_captured():
            info = sf.info(path)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(path, _decode_failure(exc)) from exc
    if info.samplerate <= 0:
        raise AudioError(path, f"invalid sample rate {info.samplerate}")
    return info.frames / info.samplerate


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels: float `[frames, channels]` -> float32 `[frames]`."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0], dtype=np.float32)
    return samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample float32 `[n]` -> float32 `[~n * target_rate / orig_rate]` with soxr 'HQ'."""
    if orig_rate == target_rate:
        return wave
    out = soxr.resample(wave, orig_rate, target_rate, quality=RESAMPLE_QUALITY)
    return out.astype(np.float32, copy=False)


def fix_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or truncate: `[n]` -> `[length]`."""
    if wave.shape[0] >= length:
        return wave[:length]
    return np.pad(wave, (0, length - wave.shape[0]))


def load_clip(
    path: str | os.PathLike, cfg: FeatureConfig, *, max_length_error_seconds: float = 1.0
) -> np.ndarray:
    """Load one clip as the features expect it.

    Args:
        path: the audio file (any channel count and sample rate; PCM 16/24/32 or float).
        cfg: gives `sample_rate`, `clip_seconds` and `num_samples`.
        max_length_error_seconds: the largest allowed difference between the file's duration
            and `cfg.clip_seconds`; a file further off is an error, one within is zero-padded or
            truncated.

    Returns:
        float32 `[cfg.num_samples]`, mono, at `cfg.sample_rate`.

    Raises:
        AudioError: see `decode`, plus a duration too far from `cfg.clip_seconds`.
    """
    samples, rate = decode(path)  # [frames, channels]
    duration = samples.shape[0] / rate
    if abs(duration - cfg.clip_seconds) > max_length_error_seconds:
        raise AudioError(
            path,
            f"{duration:.2f} s long, expected {cfg.clip_seconds:.2f} s "
            f"(+/- {max_length_error_seconds:.2f} s)",
        )
    wave = to_mono(samples)  # [frames]
    wave = resample(wave, rate, cfg.sample_rate)  # [~duration * cfg.sample_rate]
    return np.ascontiguousarray(fix_length(wave, cfg.num_samples))  # [cfg.num_samples]
