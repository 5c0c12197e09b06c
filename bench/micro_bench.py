"""Benchmark: the TensorFlow Lite for Microcontrollers file of full-size models, and its arena.

    python bench/micro_bench.py [--configs=tau2022_ef_spsmt,1b_ef_spsmt] [--examples=8]

Each flagfile's model (`configs/<name>.flags`) is built UNTRAINED (the arena and the operators
do not depend on the weights' values) with stand-in normalization statistics, converted as
`export.py --micro` converts it (`asc_keras.export.micro.convert`: batch 1, int8 in and out,
calibrated on `--examples` synthetic feature clips) and run in TFLM's Python interpreter
(`tflite-micro`): the table lists the file size, the operators, the smallest tensor arena
(`micro.arena_bytes`) and the int8 difference of TFLM from LiteRT's builtin kernels on the
calibration clips, or the operator TFLM lacks. Needs the `micro` extra.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def measure(name: str, examples: int, workdir: str) -> dict:
    from asc_keras import flags as flags_lib
    from asc_keras.export import calibration, micro
    from asc_keras.inference.tflite_runner import quantize
    from asc_keras.strategies import build_model

    _, feature_cfg, model_cfg, _ = flags_lib.flagfile_configs(
        str(REPO / "configs" / f"{name}.flags")
    )
    random.seed(0)
    model = build_model(model_cfg)
    norm = {
        r: {"mean": np.full(feature_cfg.bins(r), -40.0), "std": np.full(feature_cfg.bins(r), 12.0)}
        for r in model_cfg.inputs
    }
    clips = calibration.synthetic_examples(
        {r: feature_cfg.shapes[r] for r in model_cfg.inputs}, norm, examples, seed=0
    )
    t0 = time.time()
    data = micro.convert(model, norm, clips, os.path.join(workdir, f"{name}_source"))
    path = os.path.join(workdir, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(data)
    row = {
        "name": name,
        "params": model.count_params(),
        "bytes": len(data),
        "operators": sorted({op for op, _ in micro.tflite_ops(data)}),
        "convert_s": time.time() - t0,
    }
    refused = micro.unsupported_operator(data, path)
    if refused:
        return {**row, "refused": refused}
    row["arena_bytes"] = micro.arena_bytes(data)
    ins, _ = micro.io_details(path)
    from asc_keras.export.checks import normalized

    norm_x = normalized(clips.features, norm)
    q = {d["name"]: quantize(norm_x[d["name"]], d["details"]) for d in ins}
    tflm, ref, xnn = micro.int8_outputs(path, data, row["arena_bytes"], q)
    row["max_steps"] = max(
        int(np.abs(tflm[k].astype(int) - ref[k].astype(int)).max()) for k in tflm
    )
    row["xnnpack_steps"] = max(
        int(np.abs(tflm[k].astype(int) - xnn[k].astype(int)).max()) for k in tflm
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tau2022_ef_spsmt,1b_ef_spsmt")
    parser.add_argument("--examples", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        rows = [measure(n, args.examples, workdir) for n in args.configs.split(",")]
    for r in rows:
        print(f"{r['name']}: {r['params']:,} parameters, micro file {r['bytes']:,} bytes")
        print(f"  operators: {', '.join(r['operators'])}")
        if "refused" in r:
            print(f"  refused: {r['refused']}")
        else:
            print(
                f"  tensor arena {r['arena_bytes']:,} bytes; TFLM vs LiteRT builtin kernels "
                f"{r['max_steps']} int8 step(s), vs LiteRT XNNPACK {r['xnnpack_steps']}"
            )


if __name__ == "__main__":
    main()
