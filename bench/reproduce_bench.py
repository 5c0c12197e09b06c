"""Compute of the reproduction plan against training every row's joint model, as a table.

    python bench/reproduce_bench.py [--examples_per_s=7300]

For Tables 2-3, Table 4 and all three: runs and CNN trainings, training examples and FLOPs
(6 x the forward multiply-accumulates counted from the full-size networks per example) of the
plan (`reproduce.py`: every distinct CNN trained once, rows fused from runs) and of the joint
row models (every row's flagfile trained on its own), and their ratio. With
`--examples_per_s` (one 1A CNN's measured training throughput), each plan's projected wall
time on one device, scaled by each run's FLOPs relative to the 1A single CNN (tables with 1A
rows only).
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples_per_s",
        type=float,
        default=0.0,
        help="measured training examples/s of one full-size 1A CNN",
    )
    args = parser.parse_args()

    from asc_keras import flags as flags_lib
    from asc_keras.models import complexity
    from asc_keras.reproduce import plan as plan_lib
    from asc_keras.strategies import build_model

    configs = os.path.join(os.path.dirname(HERE), "configs")
    cache: dict[str, int] = {}

    def count(cfg):
        key = repr(cfg.to_dict())
        if key not in cache:
            cache[key] = complexity.macs(build_model(cfg))
        return cache[key]

    print(
        "| tables | plan runs (CNNs) | plan examples | plan PFLOP | joint models (CNNs) | "
        "joint CNN-examples | joint PFLOP | joint / plan |"
        + (" projected plan time |" if args.examples_per_s else "")
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|" if args.examples_per_s else ""))
    for tables in ([2, 3], [4], [2, 3, 4]):
        plan = plan_lib.make_plan(
            configs, tables=tables, read_flagfile=flags_lib.flagfile_configs, count_macs=count
        )
        c = plan.compute()
        row = (
            f"| {','.join(map(str, tables))} | {c['runs']} ({c['cnns']}) | "
            f"{c['examples']:,} | {c['train_flops'] / 1e15:.1f} | {c['joint_models']} "
            f"({c['joint_cnns']}) | {c['joint_examples']:,} | "
            f"{c['joint_train_flops'] / 1e15:.1f} | "
            f"{c['joint_train_flops'] / c['train_flops']:.2f}x |"
        )
        if args.examples_per_s:
            single = next((r for r in plan.runs if r.name == "1a_logmel"), None)
            if single is None:
                row += " - |"  # the throughput was measured on a 1A CNN
            else:
                hours = c["train_flops"] / (6.0 * single.macs * args.examples_per_s) / 3600
                row += f" {hours:.2f} h |"
        print(row)


if __name__ == "__main__":
    main()
