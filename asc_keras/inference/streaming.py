"""Sliding-window classification of a recording longer than the model's clip, in bounded memory.

audio file -> soundfile blocks `[block, channels]` -> mono -> soxr's streaming resampler
(`soxr.ResampleStream`, the same 'HQ' quality as `asc_keras.audio.resample`) -> a buffer of at
most one window plus one block -> windows `[window]` every `hop` samples, each zero-padded to the
model's clip (`asc_keras.audio.fix_length`, as training pads) -> `Classifier.inputs` (the
training features) -> the model, a few windows per batch -> one `Window` (start, end, scene, top
probability, probabilities `[C]`) per window. The overall scene is the mean of the window
probabilities.

Works with every `asc_keras.inference.classify.Classifier`: a Keras run, a SavedModel, float and
int8 TFLite, and the waveform-in models. A one-hour recording at 44.1 kHz is read block by block,
never whole.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np
import soundfile as sf
import soxr

from asc_keras.audio import RESAMPLE_QUALITY, AudioError, fix_length, to_mono

BLOCK_SECONDS = 2.0  # audio read per soundfile block (at the file's rate)
BATCH_WINDOWS = 8  # windows classified per model call


@dataclasses.dataclass(frozen=True)
class Window:
    start: float  # seconds
    end: float  # seconds (the recording's end for a last, padded window)
    scene: str
    top: float  # probability of `scene`
    probs: np.ndarray  # float32 [C]


def _duration(path: str) -> float:
    try:
        return float(sf.info(path).duration)
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise AudioError(path, f"cannot decode audio ({' '.join(str(e).split())})") from None


def duration(path: str) -> float:
    """Seconds of audio in `path` (header only).

    Raises:
        AudioError: missing or undecodable file.
    """
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    return _duration(path)


def windows(
    path: str, *, sample_rate: int, window: int, hop: int, block_seconds: float = BLOCK_SECONDS
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Slide over a file: `(start, end, float32 [window])` in samples at `sample_rate`.

    Windows start every `hop` samples; when samples remain after the last one, a last window
    ends at the recording's end (overlapping its predecessor); a recording shorter than one
    window gives one zero-padded window. Memory holds about one block and one window.

    Raises:
        AudioError: missing or undecodable file (one line naming it).
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive samples")
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    try:
        f = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise AudioError(path, f"cannot decode audio ({' '.join(str(e).split())})") from None
    with f:
        resampler = None
        if f.samplerate != sample_rate:
            resampler = soxr.ResampleStream(
                f.samplerate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
            )
        buf = np.zeros(0, np.float32)  # samples from `offset` on
        offset = 0  # absolute sample index of buf[0]
        start = 0  # next window start
        last_end = 0  # end of the last window emitted
        block = max(1, int(block_seconds * f.samplerate))
        while True:
            x = f.read(block, dtype="float32", always_2d=True)  # [<=block, channels]
            done = len(x) < block
            y = to_mono(x) if len(x) else np.zeros(0, np.float32)  # [<=block]
            if resampler is not None:
                y = resampler.resample_chunk(y, last=done)
            buf = np.concatenate([buf, y.astype(np.float32, copy=False)])
            while start + window <= offset + len(buf):
                lo = start - offset
                yield start, start + window, buf[lo : lo + window].copy()
                last_end = start + window
                start += hop
            # Keep the last `window` samples: a last window may end at the recording's end.
            drop = min(start, offset + len(buf) - window) - offset
            if drop > 0:
                buf, offset = buf[drop:], offset + drop
            if done:
                break
        total = offset + len(buf)
        if last_end == 0:  # shorter than one window: all of it, zero-padded
            yield 0, total, fix_length(buf, window)
        elif total > last_end:  # the uncovered end: the last `window` samples
            yield total - window, total, buf[len(buf) - window :].copy()


def timeline(
    classifier, path: str, *, window_seconds: float | None = None, hop_seconds: float | None = None
) -> Iterator[Window]:
    """Classify `path` window by window with `classifier` (an `inference.Classifier`).

    Args:
        classifier: gives the feature settings (sample rate, clip length) and the model.
        path: the recording (any length, rate and channel count soundfile reads).
        window_seconds: window length; default (None) the model's clip length. A shorter window
            is zero-padded to the clip, as training pads short clips; a longer one is refused.
        hop_seconds: step between window starts; default the window length.

    Raises:
        ValueError: a window longer than the model's clip, or a non-positive length.
        AudioError: the file cannot be read.
    """
    cfg = classifier.feature_config
    window_seconds = cfg.clip_seconds if window_seconds is None else window_seconds
    hop_seconds = window_seconds if hop_seconds is None else hop_seconds
    if not 0 < window_seconds <= cfg.clip_seconds + 1e-9 or hop_seconds <= 0:
        raise ValueError(
            f"--window_seconds={window_seconds:g} --hop_seconds={hop_seconds:g}: "
            f"need 0 < window <= the model's clip ({cfg.clip_seconds:g} s), hop > 0"
        )
    sr = cfg.sample_rate
    window, hop = int(round(window_seconds * sr)), int(round(hop_seconds * sr))
    pending: list[tuple[int, int, dict]] = []

    def flush():
        batch = {k: np.concatenate([p[2][k] for p in pending]) for k in pending[0][2]}
        probs = np.asarray(classifier.predictor(batch), np.float32)  # [B, C]
        for (s, e, _), p in zip(pending, probs, strict=True):
            k = int(np.argmax(p))
            yield Window(s / sr, e / sr, classifier.classes[k], float(p[k]), p)
        pending.clear()

    for s, e, wave in windows(path, sample_rate=sr, window=window, hop=hop):
        pending.append((s, e, classifier.inputs(fix_length(wave, cfg.num_samples))))
        if len(pending) == BATCH_WINDOWS:
            yield from flush()
    if pending:
        yield from flush()


def overall(items: Sequence[Window], classes: Sequence[str]) -> tuple[str, np.ndarray]:
    """`(scene, mean probabilities [C])` over the windows."""
    mean = np.mean([w.probs for w in items], axis=0)
    return classes[int(np.argmax(mean))], mean


def format_timeline(path: str, items: Sequence[Window], classes: Sequence[str]) -> str:
    """A printed timeline: one line per window, then the overall scene."""
    scene_w = max(len("scene"), *(len(c) for c in classes))
    lines = [
        f"{path}: {len(items)} windows",
        f"{'start':>9s}  {'end':>9s}  {'scene':{scene_w}s}  {'top':>6s}",
    ]
    lines += [f"{w.start:9.2f}  {w.end:9.2f}  {w.scene:{scene_w}s}  {w.top:6.3f}" for w in items]
    scene, mean = overall(items, classes)
    lines.append(f"overall: {scene} ({mean.max():.3f}, mean of the window probabilities)")
    return "\n".join(lines)


def write_timeline_csv(
    out: str, rows: Sequence[tuple[str, Window]], classes: Sequence[str]
) -> None:
    """`file,start,end,scene,top_probability,<class>...`, one row per window."""
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "start", "end", "scene", "top_probability", *classes])
        for path, x in rows:
            w.writerow(
                [
                    path,
                    f"{x.start:.3f}",
                    f"{x.end:.3f}",
                    x.scene,
                    f"{x.top:.6f}",
                    *(f"{p:.6f}" for p in x.probs),
                ]
            )
