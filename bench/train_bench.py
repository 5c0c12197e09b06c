"""Benchmark: CPU training step time of the 1B EF + SPSMT model at the paper's shapes.

    python bench/train_bench.py [--batch_size=64] [--steps=5] [--warmup=2] [--jit_compile]
        [--model=1b_ef_spsmt|1b_logmel|1a_logmel]
    python bench/train_bench.py --loop_overhead [--width=0.0625] [--frames=44] [--batch_size=8]
        [--steps=200] [--repeats=3]

Builds the model (`asc_keras.strategies.build_model`), Adam on the paper's schedule and the
training step of `asc_keras.training.trainer` (forward, one loss per trained output, backward,
update) and times it on a fixed random batch `{rep: [B, 862, 64]}` with mixed soft labels, so
the input pipeline is not part of the number (`--keras_fit` times Keras' `train_on_batch` on the
same model and losses instead, for comparison). Prints the mean and best step time, examples/s,
the projected time of the paper's 12,000 steps and the peak memory (max RSS).

`--loop_overhead` measures what the host costs per step: a reduced-width model on short inputs
(so that the device work is small and the per-call overhead shows), trained by
`asc_keras.training.loop.make_train_loop` from a repeated in-memory batch: K=1 through the
K-step loop function, K=1 through the single-step function `train.py` uses for
`--steps_per_loop=1` (one `tf.function` call and one loss read-back per step either way, as
training was before `--steps_per_loop`), and K=50 (one call and one read-back per 50 steps),
alternated `--repeats` times; prints a Markdown table of the best steps/s of each, the ratios,
and the host overhead per step (`1/sps(K=1) - 1/sps(K=50)`) as a share of the K=1 step time.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODELS = {
    "1b_ef_spsmt": dict(
        backbone="1b",
        inputs=("logmel", "cqt", "gamma"),
        fusion="ef",
        strategies=("spsmt",),
        num_classes=3,
        bins=64,
    ),
    "1b_logmel": dict(
        backbone="1b", inputs=("logmel",), fusion="single", strategies=(), num_classes=3, bins=64
    ),
    "1a_logmel": dict(
        backbone="1a", inputs=("logmel",), fusion="single", strategies=(), num_classes=10, bins=40
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="1b_ef_spsmt", choices=sorted(MODELS))
    parser.add_argument(
        "--batch_size", type=int, default=None, help="default 64; 8 with --loop_overhead"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing)")
    parser.add_argument("--jit_compile", action="store_true", help="XLA-compile the step")
    parser.add_argument(
        "--keras_fit",
        action="store_true",
        help="time Keras' own train_on_batch on the same model instead",
    )
    parser.add_argument(
        "--loop_overhead",
        action="store_true",
        help="steps/s with K=1 vs K=50 steps per tf.function call",
    )
    parser.add_argument(
        "--width",
        type=float,
        default=None,
        help="channel width multiplier (default 1.0; 0.0625 with --loop_overhead)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help="input frames (default 862; 44 with --loop_overhead)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="--loop_overhead alternations")
    args = parser.parse_args()
    if args.loop_overhead:
        return loop_overhead(args)
    args.batch_size = args.batch_size or 64

    import numpy as np
    import tensorflow as tf

    from asc_keras.config import ModelConfig, TrainConfig
    from asc_keras.strategies import build_model, loss_outputs
    from asc_keras.training import optimizer as optimizer_lib
    from asc_keras.training.loop import make_train_step as _make_train_step

    spec = dict(MODELS[args.model])
    bins, frames = spec.pop("bins"), args.frames or 862
    cfg = ModelConfig(
        input_bins={r: bins for r in spec["inputs"]},
        num_frames=frames,
        width=args.width or 1.0,
        **spec,
    )
    train_cfg = TrainConfig(batch_size=args.batch_size, jit_compile=args.jit_compile)
    strategy = tf.distribute.get_strategy()
    model = build_model(cfg)
    optimizer = optimizer_lib.make_optimizer(train_cfg)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    features = {
        r: tf.constant(rng.normal(size=(args.batch_size, frames, bins)), tf.float32)
        for r in cfg.inputs
    }
    labels = rng.dirichlet(np.full(cfg.num_classes, 0.2), size=args.batch_size)
    labels = tf.constant(labels, tf.float32)
    kinds = loss_outputs(model)
    if args.keras_fit:
        from asc_keras.models.losses import framewise_categorical_crossentropy

        losses = {
            k: framewise_categorical_crossentropy if v == "frames" else "categorical_crossentropy"
            for k, v in kinds.items()
        }
        model.compile(optimizer=optimizer, loss=losses, jit_compile=args.jit_compile)
        targets = {k: labels for k in kinds}

        def train_step(x, _):
            return {"total": model.train_on_batch(x, targets, return_dict=True)["loss"]}
    else:
        step_var = tf.Variable(0, dtype=tf.int64)
        train_step = _make_train_step(
            strategy,
            model,
            optimizer,
            kinds,
            step_var,
            global_batch=args.batch_size,
            jit_compile=args.jit_compile,
        )

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        float(train_step(features, labels)["total"])
    warm_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        float(train_step(features, labels)["total"])
        times.append(time.perf_counter() - t0)
    mean, best = float(np.mean(times)), float(np.min(times))
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"training step, {args.model} ({model.count_params():,} weights), batch "
        f"{args.batch_size}, inputs {len(cfg.inputs)} x [{frames}, {bins}], "
        f"{os.cpu_count()} CPU(s), TensorFlow {tf.__version__}"
        f"{', XLA' if args.jit_compile else ''}"
        f"{', Keras train_on_batch' if args.keras_fit else ''}"
    )
    print(
        f"{'mean s/step':>12s} {'best s/step':>12s} {'examples/s':>11s} "
        f"{'12k steps (h)':>14s} {'warm-up s':>10s} {'peak RSS GiB':>13s}"
    )
    print(
        f"{mean:12.3f} {best:12.3f} {args.batch_size / mean:11.1f} "
        f"{12000 * mean / 3600:14.1f} {warm_s:10.1f} {rss_gib:13.2f}"
    )
    return 0


def loop_overhead(args) -> int:
    """K=1 vs K=50 steps per call on a small model (see the module docstring)."""
    import numpy as np
    import tensorflow as tf

    from asc_keras.config import ModelConfig, TrainConfig
    from asc_keras.strategies import build_model, loss_outputs
    from asc_keras.training import loop
    from asc_keras.training import optimizer as optimizer_lib

    spec = dict(MODELS[args.model])
    bins, frames, width = spec.pop("bins"), args.frames or 44, args.width or 0.0625
    batch = args.batch_size or 8
    cfg = ModelConfig(
        input_bins={r: bins for r in spec["inputs"]}, num_frames=frames, width=width, **spec
    )
    strategy = tf.distribute.get_strategy()
    model = build_model(cfg)
    optimizer = optimizer_lib.make_optimizer(TrainConfig(batch_size=batch))
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    features = {r: rng.normal(size=(batch, frames, bins)).astype(np.float32) for r in cfg.inputs}
    labels = rng.dirichlet(np.full(cfg.num_classes, 0.2), size=batch).astype(np.float32)
    data = tf.data.Dataset.from_tensors((features, labels)).repeat()
    batches = iter(strategy.experimental_distribute_dataset(data))
    step_var = tf.Variable(0, dtype=tf.int64)
    make = dict(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_kinds=loss_outputs(model),
        step_var=step_var,
        global_batch=batch,
        jit_compile=args.jit_compile,
    )
    looped = loop.make_train_loop(**make)
    single = loop.make_train_loop(**make, single_step=True)
    # label: (function, steps per call); "K=1, no loop" is what --steps_per_loop=1 runs.
    cases = {
        "1, in the K-step loop": (looped, 1),
        "1, no loop (train.py's K=1)": (single, 1),
        "50": (looped, 50),
    }
    steps = 50 * max(1, args.steps // 50)
    for fn, k in cases.values():  # tracing (one trace per function) and warm-up
        float(fn(batches, k).loss_sums["total"])
    best = dict.fromkeys(cases, 0.0)
    for _ in range(args.repeats):
        for label, (fn, k) in cases.items():
            t0 = time.perf_counter()
            for _ in range(steps // k):
                float(fn(batches, k).loss_sums["total"])  # the read-back per call
            best[label] = max(best[label], steps / (time.perf_counter() - t0))
    print(
        f"host overhead per step: {args.model} at width {width} ({model.count_params():,} "
        f"weights), batch {batch}, inputs {len(cfg.inputs)} x [{frames}, {bins}], "
        f"{steps} steps x {args.repeats} alternations (best), {os.cpu_count()} CPU(s), "
        f"TensorFlow {tf.__version__}{', XLA' if args.jit_compile else ''}"
    )
    print()
    print("| steps per loop (K) | steps/s | ms/step | K=50 / this |")
    print("|---|---|---|---|")
    for label in cases:
        print(
            f"| {label} | {best[label]:.1f} | {1000 / best[label]:.2f} | "
            f"{best['50'] / best[label]:.2f}x |"
        )
    print()
    for label in list(cases)[:2]:
        overhead_s = 1 / best[label] - 1 / best["50"]
        print(
            f"host overhead of a K={label} step: {1000 * overhead_s:.2f} ms "
            f"({100 * overhead_s * best[label]:.1f} % of its step time); with K=50 it is paid "
            f"once per 50 steps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
