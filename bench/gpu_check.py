"""GPU check: training throughput, memory, projected Tables 2-3 time, every flagfile; one command.

    python bench/gpu_check.py [--steps=100] [--out=gpu_check.md] [--skip_flagfiles]
    python bench/gpu_check.py --smoke          # tiny shapes, runs on a CPU in about a minute

No dataset is needed: features are random tensors of the configs' shapes ({rep: [B, T, F]}
float32, soft labels [B, C]). Prints Markdown (and writes it to `--out`):

1. Throughput of the real-size 1A CNN (`configs/1a_logmel.flags`) and 1B EF + SPSMT
   (`configs/1b_ef_spsmt.flags`) at batch 64 under float32 / mixed_float16 / mixed_bfloat16,
   without and with XLA (`jit_compile`), K=1 and K=50 training steps per `tf.function` call
   (`asc_keras.training.loop.make_train_loop`, the loop `train.py` runs): examples/s and the peak
   accelerator memory (`tf.config.experimental.get_memory_info`; '-' on a CPU).
2. The projected wall time of Tables 2-3 (`asc_keras.reproduce.plan`: every run's examples x
   forward MACs, at the MAC rate of the fastest 1A CNN setting of table 1), one run at a time.
3. Peak memory and examples/s of the largest joint model (`configs/1a_spsmr_spsmf_spsmt.flags`,
   24 CNNs) at batch 64, float32 and mixed_bfloat16.
4. Every flagfile of `configs/` trained for `--flagfile_steps` steps through
   `asc_keras.training.trainer.run` on the random features, without and with `--deterministic`:
   'ok', or the one-line error (an op without a deterministic kernel must stop the run before
   its first step).

`--smoke` shrinks everything (width 0.04, 1 s clips, batch 4, K=1 and K=2, no XLA, a few
flagfiles, `1a_lf.flags` (4 CNNs) as the "largest" model, since tracing 24 CNNs takes a minute
or more on a CPU) so that a test can run the script on a CPU; `--precisions`, `--flagfiles` and
`--largest` narrow it further.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MODELS = {"1A CNN (Log-Mel)": "1a_logmel.flags", "1B EF + SPSMT": "1b_ef_spsmt.flags"}
LARGEST = "1a_spsmr_spsmf_spsmt.flags"
SMOKE_LARGEST = "1a_lf.flags"
SMOKE_FLAGFILES = ("1a_logmel.flags", "1a_ef.flags", "1b_ef_spsmt.flags")


@contextlib.contextmanager
def _policy(precision: str):
    import keras

    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def _configs(name: str, extra: tuple[str, ...]):
    from asc_keras.flags import flagfile_configs

    return flagfile_configs(os.path.join(REPO, "configs", name), extra)


def _random_batches(model_cfg, batch: int, *, seed: int = 0):
    """A repeated dataset of one random batch `({rep: [B, T, F]}, soft labels [B, C])`."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    features = {
        r: rng.normal(size=(batch, model_cfg.num_frames, model_cfg.bins(r))).astype(np.float32)
        for r in model_cfg.inputs
    }
    labels = rng.dirichlet(np.full(model_cfg.num_classes, 0.2), size=batch).astype(np.float32)
    return tf.data.Dataset.from_tensors((features, labels)).repeat()


def _gpu() -> str | None:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name.replace("/device:", "") if gpus else None


def _peak_gib(device: str | None) -> str:
    import tensorflow as tf

    if device is None:
        return "-"
    return f"{tf.config.experimental.get_memory_info(device)['peak'] / 2**30:.2f}"


def _reset_peak(device: str | None) -> None:
    import tensorflow as tf

    if device is not None:
        tf.config.experimental.reset_memory_stats(device)


def throughput(
    model_cfg, *, batch: int, precision: str, jit_compile: bool, ks, steps: int, device: str | None
) -> dict:
    """`{k: examples/s}` plus 'peak' (GiB or '-') for one model, precision and XLA setting."""
    import tensorflow as tf

    from asc_keras.config import TrainConfig
    from asc_keras.strategies import build_model, loss_outputs
    from asc_keras.training import distribute, loop
    from asc_keras.training import optimizer as optimizer_lib

    strategy = distribute.make_strategy("default")
    with _policy(precision), strategy.scope():
        model = build_model(model_cfg)
        optimizer = optimizer_lib.make_optimizer(TrainConfig(batch_size=batch, precision=precision))
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64)
    batches = iter(distribute.distribute_dataset(strategy, _random_batches(model_cfg, batch)))
    make = dict(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_kinds=loss_outputs(model),
        step_var=step,
        global_batch=batch,
        jit_compile=jit_compile,
    )
    looped = loop.make_train_loop(**make)
    _reset_peak(device)
    out = {}
    for k in ks:
        # K=1 is the single-step function train.py runs for --steps_per_loop=1.
        train_loop = loop.make_train_loop(**make, single_step=True) if k == 1 else looped
        float(train_loop(batches, k).loss_sums["total"])  # trace and warm up
        n = max(k, steps // k * k)
        t0 = time.perf_counter()
        for _ in range(n // k):
            float(train_loop(batches, k).loss_sums["total"])
        out[k] = n * batch / (time.perf_counter() - t0)
    out["peak"] = _peak_gib(device)
    return out


def _macs(model_cfg) -> int:
    from asc_keras.models import complexity
    from asc_keras.strategies import build_model

    return complexity.macs(build_model(model_cfg))


def flagfile_run(
    name: str, extra: tuple[str, ...], *, steps: int, batch: int, deterministic: bool, work: str
) -> str:
    """Train one flagfile for `steps` steps on random features: 'ok' or the error line."""
    from asc_keras.config import DataConfig, TrainConfig
    from asc_keras.training import trainer

    task, feature_cfg, model_cfg, _ = _configs(name, extra)
    model_dir = tempfile.mkdtemp(prefix=name[:-6] + "-", dir=work)
    train_cfg = TrainConfig(
        model_dir=model_dir,
        train_steps=steps,
        batch_size=batch,
        eval_every=0,
        checkpoint_every=steps,
        log_every=steps,
        deterministic=deterministic,
    )
    try:
        trainer.run(
            feature_cfg,
            DataConfig(task=task),
            model_cfg,
            train_cfg,
            datasets={"train": _random_batches(model_cfg, batch)},
            progress=False,
            log=lambda *_: None,
        )
    except Exception as e:  # noqa: BLE001 - the table reports any failure as its line
        return f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
    return "ok"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, for a CPU test")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per setting")
    parser.add_argument("--batch_size", type=int, default=None, help="default 64 (smoke: 4)")
    parser.add_argument("--flagfile_steps", type=int, default=2)
    parser.add_argument("--skip_flagfiles", action="store_true")
    parser.add_argument(
        "--flagfiles",
        default="",
        help="comma-separated flagfile names (default: all; smoke: three)",
    )
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument(
        "--largest",
        default="",
        help=f"the joint model of section 3 (default {LARGEST}; smoke: {SMOKE_LARGEST})",
    )
    parser.add_argument("--out", default="", help="also write the Markdown here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from asc_keras import flags as flags_lib
    from asc_keras.reproduce import plan as plan_lib

    smoke = args.smoke
    extra = ("--width=0.04", "--clip_seconds=1") if smoke else ()
    batch = args.batch_size or (4 if smoke else 64)
    steps = args.steps or (4 if smoke else 100)
    ks = (1, 2) if smoke else (1, 50)
    xla = (False,) if smoke else (False, True)
    precisions = tuple(p for p in args.precisions.split(",") if p)
    largest = args.largest or (SMOKE_LARGEST if smoke else LARGEST)
    device = _gpu()
    lines = [
        f"Machine: {device or 'no GPU (CPU)'}; TensorFlow {tf.__version__}; batch {batch}; "
        f"{steps} timed steps per setting{'; SMOKE (tiny shapes)' if smoke else ''}.",
        "",
    ]

    # 1. Throughput.
    lines += [
        "| model | precision | XLA | "
        + " | ".join(f"K={k} ex/s" for k in ks)
        + f" | K={ks[-1]} / K=1 | peak GiB |",
        "|---|---|---|" + "---|" * (len(ks) + 2),
    ]
    best_1a = (0.0, None)
    for label, name in MODELS.items():
        _, _, model_cfg, _ = _configs(name, extra)
        for precision in precisions:
            for jit in xla:
                r = throughput(
                    model_cfg,
                    batch=batch,
                    precision=precision,
                    jit_compile=jit,
                    ks=ks,
                    steps=steps,
                    device=device,
                )
                lines.append(
                    f"| {label} | {precision} | {'yes' if jit else 'no'} | "
                    + " | ".join(f"{r[k]:,.0f}" for k in ks)
                    + f" | {r[ks[-1]] / r[1]:.2f}x | {r['peak']} |"
                )
                if name == "1a_logmel.flags" and max(r[k] for k in ks) > best_1a[0]:
                    best_1a = (max(r[k] for k in ks), f"{precision}, XLA {'on' if jit else 'off'}")
                print(lines[-1], flush=True)

    # 2. Projection of Tables 2-3.
    _, _, cnn_cfg, _ = _configs("1a_logmel.flags", extra)
    mac_rate = best_1a[0] * _macs(cnn_cfg)  # forward MACs per second the best setting trains
    plan = plan_lib.make_plan(
        os.path.join(REPO, "configs"),
        tables=[2, 3],
        read_flagfile=lambda p: flags_lib.flagfile_configs(p, extra),
        count_macs=_macs,
    )
    compute = plan.compute()
    work = sum(r.examples * r.macs for r in plan.runs)
    hours = work / mac_rate / 3600
    lines += [
        "",
        f"Tables 2-3: {compute['runs']} runs ({compute['cnns']} CNNs), "
        f"{compute['examples']:,} training examples, {compute['train_flops'] / 1e15:.1f} "
        f"PFLOP; at the fastest 1A CNN setting ({best_1a[1]}: {best_1a[0]:,.0f} "
        f"examples/s) one run at a time: **{hours:.2f} h** projected"
        f"{' (smoke shapes: meaningless)' if smoke else ''}.",
    ]

    # 3. The largest joint model.
    _, _, big_cfg, _ = _configs(largest, extra)
    lines += [
        "",
        f"| largest joint model ({largest}) | precision | examples/s | peak GiB |",
        "|---|---|---|---|",
    ]
    for precision in [p for p in ("float32", "mixed_bfloat16") if p in precisions]:
        r = throughput(
            big_cfg,
            batch=batch,
            precision=precision,
            jit_compile=False,
            ks=(1,),
            steps=max(2, steps // 10),
            device=device,
        )
        lines.append(f"| batch {batch} | {precision} | {r[1]:,.0f} | {r['peak']} |")
        print(lines[-1], flush=True)

    # 4. Every flagfile, with and without --deterministic.
    if not args.skip_flagfiles:
        names = tuple(n for n in args.flagfiles.split(",") if n) or (
            SMOKE_FLAGFILES
            if smoke
            else tuple(
                os.path.basename(p)
                for p in sorted(glob.glob(os.path.join(REPO, "configs", "1*.flags")))
            )
        )
        lines += [
            "",
            f"| flagfile ({args.flagfile_steps} steps, batch {batch}) | default | "
            "--deterministic |",
            "|---|---|---|",
        ]
        with tempfile.TemporaryDirectory() as work_dir:
            for name in names:
                cells = [
                    flagfile_run(
                        name,
                        extra,
                        steps=args.flagfile_steps,
                        batch=batch,
                        deterministic=d,
                        work=work_dir,
                    )
                    for d in (False, True)
                ]
                lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
                print(lines[-1], flush=True)

    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
