"""Benchmark: the complexity of the deployed TFLite files of full-size flagfile models.

    python bench/complexity_bench.py [--rows=tau2022_ef_spsmt,1b_ef_spsmt] [--calibration=16]

Each row's flagfile is parsed as `python -m asc_keras.summary` parses it and its full-size model
built with random weights: the Keras initializers, then BatchNorm statistics and Dense biases
drawn away from their initial values (a freshly built model's all-zero biases are dropped by
the converter, which a trained model's are not), and stand-in normalization statistics. The
model is exported through the project's code (`export.artifacts.write_artifacts`: float32,
int8 calibrated on `--calibration` synthetic clips, float16) and every TFLite file counted from
the file itself (`export.tflite_complexity`). Printed: the int8 file's per-op table, the totals
and peak arena of each file, the task rule's verdict on each file, and the Keras-side counts
(`models.rules.size_summary`) for comparison. The counts do not depend on the weights' values
except through zero-valued or equal buffers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _trained_like(model, rng) -> None:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.8, 1.2, c),
                    rng.normal(0, 0.1, c),
                    rng.normal(0, 0.1, c),
                    rng.uniform(0.8, 1.2, c),
                ]
            )
        elif isinstance(getattr(layer, "layer", layer), keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])


def row_report(row: str, folder: str, *, calibration: int) -> str:
    """The complexity text of one flagfile row's full-size exported files."""
    from asc_keras import flags as flags_lib
    from asc_keras.export import artifacts, file_rule, tflite_complexity
    from asc_keras.export import calibration as calibration_lib
    from asc_keras.models.rules import rule_lines, size_summary, task_limits
    from asc_keras.strategies import build_model
    from asc_keras.summary import model_config_from_args

    args = [f"--flagfile={REPO}/configs/{row}.flags"]
    cfg = model_config_from_args(args)
    from absl import flags as absl_flags

    fv = absl_flags.FlagValues()
    flags_lib.define_all(fv)
    flags_lib.parse(["bench", *args], fv)
    feature_cfg = flags_lib.feature_config(fv, log=lambda *_: None)
    task = fv.task
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    _trained_like(model, rng)
    normalization = {
        r: {"mean": rng.normal(-30, 5, b), "std": rng.uniform(5, 15, b)}
        for r, b in cfg.input_bins.items()
    }
    shapes = {r: (cfg.num_frames, b) for r, b in cfg.input_bins.items()}
    calib = calibration_lib.synthetic_examples(shapes, normalization, calibration, seed=0)
    out = os.path.join(folder, row)
    os.makedirs(out)
    entries = artifacts.write_artifacts(
        model,
        normalization,
        out,
        feature_cfg=feature_cfg,
        calibration=calib,
        audio=False,
        float16=True,
        log=lambda *_: None,
    )
    limits = task_limits(task)
    size = size_summary(model, task)
    lines = [f"## {row} (task {task}), full size, random weights"]
    for entry in entries:
        if not entry["name"].endswith(".tflite"):
            continue
        fc = tflite_complexity.analyze(os.path.join(out, entry["name"]))
        if entry["name"] == artifacts.TFLITE_INT8:
            lines += tflite_complexity.table_lines(fc, title=entry["name"])
        lines.append(
            f"{entry['name']}: {fc.macs:,} MACs, {fc.params:,} parameters = "
            f"{fc.param_bytes:,} bytes ({dict(fc.bytes_by_dtype)}), peak arena "
            f"{fc.peak_arena_bytes:,} bytes, file {entry['bytes']:,} bytes"
        )
        lines.append(file_rule.rule_line(entry["name"], file_rule.file_rule(fc, limits), limits))
    lines.append(
        f"Keras: {size['macs']:,} MACs, {size['params']:,} weights (BatchNorm statistics included)"
    )
    lines += rule_lines(size)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="tau2022_ef_spsmt,1b_ef_spsmt")
    parser.add_argument("--calibration", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for row in args.rows.split(","):
            print(row_report(row, folder, calibration=args.calibration))
            print()


if __name__ == "__main__":
    main()
