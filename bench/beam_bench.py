"""Benchmark: precompute throughput (clips/s) of the Beam DirectRunner against the local engine.

    python bench/beam_bench.py [--clips_per_class=2] [--task=1a] [--workers=2]
        [--clips_per_shard=8]

Generates a synthetic dataset of 10-second clips in the official layout (and one 3x larger),
then precomputes every representation of its train and evaluate splits, each run in a fresh
process with the same cores:

- `local`: `ensure_features` with `--num_workers` worker processes (the default engine);
- `beam`: `ensure_features` with `engine="beam"`: the DirectRunner with as many worker processes
  (`--direct_running_mode=multi_processing`).

Each run is repeated `--repeats` times, engines alternating, and the fastest kept (a shared
machine's noise only ever slows a run down). Prints one table: wall seconds on both sizes,
clips/s over the whole larger run (start-up included), the marginal clips/s between the two
sizes (fixed costs such as starting workers and importing TensorFlow cancel out), CPU seconds
per clip (this process and its workers, user + system; insensitive to other load), and whether
both engines wrote the same bytes (sha256 of every file). Needs the `beam` extra
(`pip install -e '.[beam]'`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
ENGINES = ("local", "beam")


def _digest(folder: str) -> str:
    """One sha256 over the names and contents of every file in a features folder."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        h.update(name.encode())
        with open(os.path.join(folder, name), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _child(
    engine: str, data_dir: str, out: str, task: str, workers: int, clips_per_shard: int
) -> None:
    """One timed precompute in this fresh process; prints `{"clips", "seconds", "cpu",
    "digest"}`."""
    from asc_keras.config import DataConfig, FeatureConfig
    from asc_keras.data import manifest, precompute

    data_cfg = DataConfig(
        data_dir=data_dir,
        features_dir=out,
        task=task,
        num_workers=workers,
        clips_per_shard=clips_per_shard,
        engine=engine,
    )
    t0 = time.perf_counter()
    folder = precompute.ensure_features(
        FeatureConfig(), data_cfg, progress=False, log=lambda *_: None
    )
    seconds = time.perf_counter() - t0
    cpu = sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    m = manifest.load_manifest(folder)
    print(
        json.dumps(
            {
                "clips": sum(s.num_examples for s in m.splits.values()),
                "seconds": seconds,
                "cpu": cpu,
                "digest": _digest(folder),
            }
        )
    )


def _measure(engine: str, data_dir: str, out: str, a: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        engine,
        "--data_dir",
        data_dir,
        "--out",
        out,
        "--task",
        a.task,
        "--workers",
        str(a.workers),
        "--clips_per_shard",
        str(a.clips_per_shard),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{engine} run failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--clips_per_class",
        type=int,
        default=2,
        help="device-a clips per class in the smaller dataset (the larger has 3x)",
    )
    p.add_argument("--task", default="1a", choices=["1a", "1b"])
    p.add_argument("--workers", type=int, default=2, help="processes for both engines")
    p.add_argument("--clips_per_shard", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2, help="runs per engine and size; best kept")
    p.add_argument("--child", choices=ENGINES)
    p.add_argument("--data_dir")
    p.add_argument("--out")
    a = p.parse_args()
    if a.child:
        _child(a.child, a.data_dir, a.out, a.task, a.workers, a.clips_per_shard)
        return
    from asc_keras.data import synthetic

    results = {e: [] for e in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        for k in (1, 3):
            data_dir = os.path.join(tmp, f"x{k}")
            synthetic.generate(
                data_dir,
                task=a.task,
                clips_per_class=a.clips_per_class * k,
                clips_per_location=1,
                seed=0,
            )
            runs = {e: [] for e in ENGINES}
            for r in range(a.repeats):
                for engine in ENGINES:  # the same data, engines alternating
                    out = os.path.join(tmp, f"features-{engine}-{k}-{r}")
                    runs[engine].append(_measure(engine, data_dir, out, a))
            for engine in ENGINES:
                results[engine].append(min(runs[engine], key=lambda x: x["seconds"]))
    same = all(results["local"][i]["digest"] == results["beam"][i]["digest"] for i in (0, 1))
    small, big = results["local"][0]["clips"], results["local"][1]["clips"]
    print(
        f"\nPrecompute, task {a.task}, 10 s clips, all four representations, {a.workers} "
        f"worker processes, {a.clips_per_shard} clips per shard, {os.cpu_count()} cores; "
        f"{small} and {big} clips"
    )
    print(
        f"{'engine':32s} {'wall s (small/3x)':>18s} {'clips/s (3x run)':>17s} "
        f"{'marginal clips/s':>17s} {'CPU s/clip (3x)':>16s}"
    )
    for engine, label in (
        ("local", f"local, {a.workers} processes"),
        ("beam", f"Beam DirectRunner, {a.workers} proc."),
    ):
        s, b = results[engine]
        marginal = (b["clips"] - s["clips"]) / (b["seconds"] - s["seconds"])
        print(
            f"{label:32s} {s['seconds']:8.1f} / {b['seconds']:7.1f} "
            f"{b['clips'] / b['seconds']:17.2f} {marginal:17.2f} {b['cpu'] / b['clips']:16.3f}"
        )
    print(f"same bytes (every shard, sidecar and the manifest): {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
