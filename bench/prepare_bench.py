"""Benchmark: feature precompute throughput (clips/s) against a naive librosa loop.

    python bench/prepare_bench.py [--clips=48] [--task=1a]

Generates a synthetic dataset of 10-second clips in the official layout, then runs, each in a
fresh process so that times and peak memory are not shared:

- `naive`: one core, per clip `librosa.load` then one library call per representation
  (`melspectrogram`, `cqt`, `mfcc` from the audio, and the gammatone package's `fft_gtgram`),
  as a straightforward script would;
- `ours, 1 worker` and `ours, 2 workers`: `asc_keras.data.precompute.ensure_features`
  (shared STFT, cached filter banks, TFRecord shards written, manifest and statistics).

Each is run on a small dataset and on one about 3x larger: peak memory (max RSS over the
process and its workers) must not grow with the number of clips. Prints a table; the target is
>= 3.5x the naive loop with 2 workers, and the projected time for 1A fold 1 (16,930 clips)
<= 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
FOLD1_1A_CLIPS = 13962 + 2968


def _naive(data_dir: str) -> int:
    import glob

    import librosa
    import numpy as np
    from gammatone.fftweight import fft_gtgram

    sr, n_fft, hop = 44100, 2048, 512
    files = sorted(glob.glob(os.path.join(data_dir, "audio", "*.wav")))
    for path in files:
        y, _ = librosa.load(path, sr=sr, mono=True)
        y = librosa.util.fix_length(y, size=10 * sr)
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=40)
        librosa.power_to_db(mel, amin=1e-10)
        librosa.amplitude_to_db(
            np.abs(librosa.cqt(y, sr=sr, hop_length=hop, fmin=220.0, n_bins=64, bins_per_octave=12))
        )
        fft_gtgram(y, sr, n_fft / sr, hop / sr, 64, 20.0)
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40, n_fft=n_fft, hop_length=hop, n_mels=128)
    return len(files)


def _ours(data_dir: str, workers: int, task: str) -> int:
    from asc_keras.config import DataConfig, FeatureConfig
    from asc_keras.data import manifest, precompute

    with tempfile.TemporaryDirectory() as out:
        data_cfg = DataConfig(
            data_dir=data_dir, features_dir=out, task=task, num_workers=workers, clips_per_shard=64
        )
        folder = precompute.ensure_features(
            FeatureConfig(), data_cfg, progress=False, log=lambda *_: None
        )
        m = manifest.load_manifest(folder)
        return sum(s.num_examples for s in m.splits.values())


def _child(mode: str, data_dir: str, task: str) -> None:
    # One-off library warm-up (numba compilation) is not part of the steady-state rate.
    import librosa
    import numpy as np

    librosa.feature.melspectrogram(y=np.zeros(44100, np.float32), sr=44100)
    t0 = time.perf_counter()
    n = _naive(data_dir) if mode == "naive" else _ours(data_dir, int(mode[-1]), task)
    seconds = time.perf_counter() - t0
    peak = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    print(json.dumps({"clips": n, "seconds": seconds, "peak_mib": peak}))


def _measure(mode: str, data_dir: str, task: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--data_dir", data_dir, "--task", task],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _dataset(root: str, task: str, clips_per_class: int) -> str:
    from asc_keras.data import synthetic

    synthetic.generate(
        root, task=task, clips_per_class=clips_per_class, clips_per_location=1, seed=0
    )
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--clips_per_class",
        type=int,
        default=4,
        help="device-a clips per class in the smaller dataset (the larger has 3x)",
    )
    p.add_argument("--task", default="1a", choices=["1a", "1b"])
    p.add_argument("--child")
    p.add_argument("--data_dir")
    a = p.parse_args()
    if a.child:
        _child(a.child, a.data_dir, a.task)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {}
        for k in (1, 3):
            d = _dataset(os.path.join(tmp, f"x{k}"), a.task, a.clips_per_class * k)
            for mode in ("naive", "ours1", "ours2"):
                r = _measure(mode, d, a.task)
                sizes.setdefault(mode, []).append(r)

        def marginal(mode):  # fixed costs (start-up, imports, warm-up) cancel out
            small, big = sizes[mode]
            return (big["clips"] - small["clips"]) / (big["seconds"] - small["seconds"])

        naive_rate = marginal("naive")
        print(
            f"\nFeature precompute, task {a.task}, 10 s clips, all four representations, "
            f"{os.cpu_count()} cores; clips/s = marginal rate between the two runs "
            f"({sizes['naive'][0]['clips']} and {sizes['naive'][1]['clips']} clips)"
        )
        print(
            f"{'method':20s} {'wall s (small/3x)':>18s} {'clips/s':>8s} {'x naive':>8s} "
            f"{'peak MiB (small/3x)':>20s} {'1A fold 1 (min)':>16s}"
        )
        for mode, label in (
            ("naive", "naive librosa loop"),
            ("ours1", "ours, 1 worker"),
            ("ours2", "ours, 2 workers"),
        ):
            small, big = sizes[mode]
            rate = marginal(mode)
            rows.append((label, rate))
            wall = f"{small['seconds']:.1f} / {big['seconds']:.1f}"
            peak = f"{small['peak_mib']:.0f} / {big['peak_mib']:.0f}"
            print(
                f"{label:20s} {wall:>18s} {rate:8.2f} {rate / naive_rate:8.2f} {peak:>20s} "
                f"{FOLD1_1A_CLIPS / rate / 60:16.1f}"
            )


if __name__ == "__main__":
    main()
