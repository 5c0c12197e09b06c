"""Benchmark: streaming real-time factor of predict.py's sliding windows, and where the time goes.

    python bench/streaming_bench.py [--minutes=10] [--hop_seconds=0.5] [--model=EXPORT]
        [--compare]

Without --model: the TAU 2022 system of `configs/tau2022_ef_spsmt.flags` (EF of Log-Mel, CQT and
Gamma, 64 bins each, the 1B CNN at width 0.5, SPSMT; 1 s clips at 44.1 kHz) is built UNTRAINED
and exported to int8 (`model_int8.tflite`, stand-in normalization, synthetic calibration) with an
`export_config.json` holding its feature settings, as `predict.py --model=` reads it. A
synthetic recording of --minutes minutes (seeded noise and tones, mono float32, 44.1 kHz) is
written to a WAV file.

Pass 1 runs what `predict.py --model=... --hop_seconds=...` runs on that file
(`inference.streaming.timeline`: decode, features, model, 8 windows per call) and reports the
real-time factor: seconds of audio classified per second of CPU time of this process (one
core: LiteRT runs one thread, features one BLAS thread) and per second of wall time. Pass 2
repeats the same steps one by one on the same windows and times each: decode (soundfile
blocks, mono, the window buffer), the shared STFT, each representation, and the model
(quantize, invoke, dequantize through the predictor), as CPU seconds and their share.
The machine is shared: CPU time, not wall time, is the fair measure. --compare also runs
pass 1 with librosa building the CQT filter basis on every call (`features.cqt_filters` off, as
before it existed) and checks that both passes give the same window probabilities.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

EF_INPUTS = ("logmel", "cqt", "gamma")


def _export_tau2022(folder: str) -> str:
    """An untrained int8 TAU 2022 EF + SPSMT export folder; returns its `model_int8.tflite`."""
    from asc_keras import labels
    from asc_keras.config import FeatureConfig, ModelConfig
    from asc_keras.export import artifacts, calibration
    from asc_keras.strategies import build_model

    feature_cfg = FeatureConfig(
        logmel_bins=64, representations=EF_INPUTS, clip_seconds=1.0, sample_rate=44100
    )
    classes = labels.classes("tau2022")
    model = build_model(
        ModelConfig(
            backbone="1b",
            inputs=EF_INPUTS,
            input_bins={r: 64 for r in EF_INPUTS},
            num_frames=feature_cfg.num_frames,
            num_classes=len(classes),
            fusion="ef",
            strategies=("spsmt",),
            width=0.5,
        )
    )
    normalization = {r: {"mean": np.full(64, -40.0), "std": np.full(64, 12.0)} for r in EF_INPUTS}
    calib = calibration.synthetic_examples(feature_cfg.shapes, normalization, 32, seed=0)
    artifacts.write_artifacts(
        model,
        normalization,
        folder,
        feature_cfg=feature_cfg,
        calibration=calib,
        audio=False,
        log=lambda *_: None,
    )
    record = {"task": "tau2022", "classes": list(classes), "feature_config": feature_cfg.to_dict()}
    with open(os.path.join(folder, "export_config.json"), "w") as f:
        json.dump(record, f)
    return os.path.join(folder, "model_int8.tflite")


def _recording(path: str, minutes: float, sample_rate: int = 44100) -> float:
    """Write seeded noise and tones (mono float32) to `path`, block by block; its seconds."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    total = int(minutes * 60 * sample_rate)
    with sf.SoundFile(path, "w", sample_rate, 1, subtype="FLOAT") as f:
        for start in range(0, total, 10 * sample_rate):
            n = min(10 * sample_rate, total - start)
            t = (start + np.arange(n)) / sample_rate
            tone = 0.1 * np.sin(2 * np.pi * (220 + 50 * (start // sample_rate % 7)) * t)
            f.write((0.05 * rng.standard_normal(n) + tone).astype(np.float32))
    return total / sample_rate


def _clock():
    return time.process_time(), time.perf_counter()


def _timeline(classifier, wav: str, hop_seconds: float, *, reuse: bool = True):
    """`(windows, CPU s, wall s)` of `streaming.timeline`; `reuse=False`: no CQT filter reuse."""
    import contextlib
    from unittest import mock

    from asc_keras.features import cqt_filters
    from asc_keras.inference import streaming

    off = mock.patch.object(cqt_filters, "reused_filters", contextlib.nullcontext)
    with contextlib.nullcontext() if reuse else off:
        c0, t0 = _clock()
        items = list(streaming.timeline(classifier, wav, hop_seconds=hop_seconds))
        c1, t1 = _clock()
    return items, c1 - c0, t1 - t0


def _breakdown(classifier, path: str, hop_seconds: float) -> dict[str, float]:
    """CPU seconds of each step of `streaming.timeline`, done one by one on the same windows."""
    from asc_keras.audio import fix_length
    from asc_keras.features import spectrograms
    from asc_keras.inference import streaming

    cfg = classifier.feature_config
    sr = cfg.sample_rate
    spent = dict.fromkeys(("decode", "stft", "logmel", "gamma", "cqt", "other", "model"), 0.0)
    batch: list[dict] = []
    gen = streaming.windows(
        path, sample_rate=sr, window=cfg.num_samples, hop=int(round(hop_seconds * sr))
    )

    def run_model():
        c0 = time.process_time()
        x = {k: np.concatenate([b[k] for b in batch]) for k in batch[0]}
        classifier.predictor(x)
        spent["model"] += time.process_time() - c0
        batch.clear()

    while True:
        c0 = time.process_time()
        item = next(gen, None)
        spent["decode"] += time.process_time() - c0
        if item is None:
            break
        c0 = time.process_time()
        wave = np.ascontiguousarray(fix_length(item[2], cfg.num_samples), np.float32)
        c1 = time.process_time()
        power = np.square(spectrograms.stft_magnitude(wave, cfg))
        c2 = time.process_time()
        feats = {"logmel": spectrograms.logmel_from_power(power, cfg)}
        c3 = time.process_time()
        feats["gamma"] = spectrograms.gamma_from_power(power, cfg)
        c4 = time.process_time()
        feats["cqt"] = spectrograms.cqt_from_wave(wave, cfg)
        c5 = time.process_time()
        batch.append({r: np.asarray(feats[r], np.float32)[None] for r in EF_INPUTS})
        c6 = time.process_time()
        spent["stft"] += c2 - c1
        spent["logmel"] += c3 - c2
        spent["gamma"] += c4 - c3
        spent["cqt"] += c5 - c4
        spent["other"] += (c1 - c0) + (c6 - c5)
        if len(batch) == streaming.BATCH_WINDOWS:
            run_model()
    if batch:
        run_model()
    return spent


def main(argv=None) -> int:
    from asc_keras.cli import quiet

    quiet.setup(sys.argv)  # before TensorFlow loads: no native log lines unless asked
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--hop_seconds", type=float, default=0.5)
    parser.add_argument("--model", default=None, help="an exported .tflite (default: untrained)")
    parser.add_argument("--compare", action="store_true", help="also without CQT filter reuse")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from asc_keras.inference import loader

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or _export_tau2022(tmp)
        wav = os.path.join(tmp, "long.wav")
        seconds = _recording(wav, args.minutes)
        classifier = loader.load_classifier(model)
        cfg = classifier.feature_config
        classifier.probabilities(np.zeros(cfg.num_samples, np.float32))  # warm caches
        before = None
        if args.compare:
            before = _timeline(classifier, wav, args.hop_seconds, reuse=False)
        items, cpu, wall = _timeline(classifier, wav, args.hop_seconds)
        with threadpool_limits(limits=1):  # as compute_features runs
            spent = _breakdown(classifier, wav, args.hop_seconds)
    total = sum(spent.values())
    print(
        f"{os.path.basename(model)} ({cfg.clip_seconds:g} s windows, hop {args.hop_seconds:g} s): "
        f"{seconds / 60:g} min of audio, {len(items)} windows; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(
        f"real-time factor: {seconds / cpu:.1f}x per CPU second ({cpu:.2f} s CPU, "
        f"{1e3 * cpu / len(items):.2f} ms per window), {seconds / wall:.1f}x per wall second "
        f"({wall:.2f} s)"
    )
    if before is not None:
        same = all(np.array_equal(a.probs, b.probs) for a, b in zip(before[0], items, strict=True))
        print(
            f"without CQT filter reuse: {seconds / before[1]:.1f}x per CPU second "
            f"({before[1]:.2f} s CPU, {seconds / before[2]:.1f}x per wall second); with: "
            f"{seconds / cpu:.1f}x ({before[1] / cpu:.2f}x faster); same probabilities: {same}"
        )
    print(f"{'step (pass 2)':14s} {'CPU s':>8s} {'share':>7s} {'ms/window':>10s}")
    for step, s in spent.items():
        print(f"{step:14s} {s:8.2f} {100 * s / total:6.1f}% {1e3 * s / len(items):10.3f}")
    print(f"{'total':14s} {total:8.2f} {100.0:6.1f}% {1e3 * total / len(items):10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
