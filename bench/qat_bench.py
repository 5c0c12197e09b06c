"""Quantization-aware training against post-training quantization, on the synthetic 1B and TAU
2022 sets: float, PTQ int8, QAT and QAT int8 accuracy and log loss, per seed.

    python bench/qat_bench.py [--out=DIR] [--width=0.125] [--steps=300]
        [--qat_steps=100] [--seeds=0,1,2]

For each set (1B Log-Mel CNN, 2 s clips; TAU 2022 Log-Mel SPSMT, 1 s clips) and seed: a float
run of `--steps`, a QAT run fine-tuned from it for `--qat_steps` (`--qat_from`, learning rate
1e-4, no decay), and `export.py` of the QAT run, whose report holds the four scores on the
evaluate split (`asc_keras.quantize.exporting.comparison`). Prints a Markdown table and the
mean over seeds.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SETS = {  # name: (task, row flagfile, extra flags, synthetic sizes)
    "1b": (
        "1b",
        "1b_logmel.flags",
        ("--representations=logmel", "--clip_seconds=2"),
        dict(clips_per_class=60, clip_seconds=2.0),
    ),
    "tau2022": (
        "tau2022",
        "tau2022_ef_spsmt.flags",
        ("--representations=logmel", "--model_inputs=logmel", "--fusion=single"),
        dict(clips_per_class=12, clip_seconds=1.0),
    ),
}
ROWS = ("float", "PTQ int8", "QAT", "QAT int8")


def _dataset(root: str, task: str, sizes: dict) -> str:
    from asc_keras.data import synthetic

    if not os.path.exists(os.path.join(root, "meta.csv")):
        synthetic.generate(root, task=task, seed=7, **sizes)
    return root


def _train(fv_args, flagfile):
    from asc_keras import flags as flags_lib
    from asc_keras.training import trainer

    fv = flags_lib.flagfile_values(os.path.join(REPO, "configs", flagfile), fv_args)
    feature_cfg = flags_lib.feature_config(fv)
    return trainer.run(
        feature_cfg,
        flags_lib.data_config(fv),
        flags_lib.model_config(feature_cfg, fv),
        flags_lib.train_config(fv),
        progress=False,
        log=lambda *_: None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=os.path.join(os.path.expanduser("~"), ".cache", "asc_keras", "qat_bench")
    )
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--qat_steps", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()

    import numpy as np

    from asc_keras.config import ExportConfig
    from asc_keras.export import exporter

    print("| set | seed | " + " | ".join(f"{r} acc / log loss" for r in ROWS) + " | int8 vs QAT |")
    print("|---|---|" + "---|" * (len(ROWS) + 1))
    for name in args.sets.split(","):
        task, flagfile, extra, sizes = SETS[name]
        data = _dataset(os.path.join(args.out, f"data_{name}"), task, sizes)
        scores = {r: [] for r in ROWS}
        for seed in (int(s) for s in args.seeds.split(",")):
            runs = os.path.join(args.out, "runs", f"{name}_seed{seed}")
            common = (
                f"--data_dir={data}",
                f"--features_dir={os.path.join(args.out, 'features')}",
                f"--width={args.width}",
                "--batch_size=32",
                "--eval_every=0",
                "--checkpoint_every=1000",
                f"--seed={seed}",
                *extra,
            )
            float_dir = os.path.join(runs, "float")
            _train((*common, f"--model_dir={float_dir}", f"--train_steps={args.steps}"), flagfile)
            qat_dir = os.path.join(runs, "qat")
            _train(
                (
                    *common,
                    f"--model_dir={qat_dir}",
                    f"--train_steps={args.qat_steps}",
                    f"--qat_from={float_dir}",
                    "--learning_rate=1e-4",
                    "--lr_decay_rate=1.0",
                ),
                flagfile,
            )
            report = exporter.run(
                ExportConfig(
                    model_dir=qat_dir,
                    export_dir=os.path.join(runs, "export"),
                    overwrite=True,
                    audio_frontend=False,
                ),
                log=lambda *_: None,
            )
            qat = report["qat"]
            for r in ROWS:
                scores[r].append((qat["rows"][r]["accuracy"], qat["rows"][r]["log_loss"]))
            d = qat["int8_vs_qat"]
            cells = " | ".join(
                f"{100 * qat['rows'][r]['accuracy']:.1f} / {qat['rows'][r]['log_loss']:.3f}"
                for r in ROWS
            )
            print(
                f"| {name} ({qat['num_examples']} clips) | {seed} | {cells} | "
                f"{d['max_abs_diff']:.3f}, {100 * d['argmax_agreement']:.0f}% |",
                flush=True,
            )
        means = " | ".join(
            f"{100 * np.mean([a for a, _ in scores[r]]):.1f} / "
            f"{np.mean([b for _, b in scores[r]]):.3f}"
            for r in ROWS
        )
        print(f"| {name} | mean | {means} | |", flush=True)


if __name__ == "__main__":
    main()
