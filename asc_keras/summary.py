"""Print a model's layer table and both size figures, from the same flags as every script.

    python -m asc_keras.summary --flagfile=configs/1a_spsmr.flags

Runs from any directory (nested flagfiles resolve against the including file). Output:
`model.summary()`, the output names with their shapes and loss kinds, the parts, every weight in
bytes and MiB (`SizeReport`), the flags' `--task` complexity rule with a verdict for parameter
bytes and for multiply-accumulates per clip (`models.rules`), and the parameter memory of every
weight at each dtype, in bytes (`models.complexity`).

    python -m asc_keras.summary --tflite=export/tau2022/model_int8.tflite --task=tau2022

counts exported files instead (`run_tflite`): per op its index, kind, MACs and parameter bytes,
the totals and the peak activation memory of a sequential interpreter, read from the file
itself (`export.tflite_complexity`), and the `--task` rule's verdict on the file's numbers
(`export.file_rule`). No model is built.
"""

from __future__ import annotations

from absl import flags as absl_flags

from asc_keras import flags as flags_lib
from asc_keras.config import ModelConfig


def layer_table(model) -> list[str]:
    """One line per layer: name, type, output shape, parameters (like `model.summary()`).

    `model.summary()` renders through rich at the terminal's width and cuts columns when the
    output is not a terminal; this table has no width limit.
    """
    rows = [("layer", "type", "output shape", "params")]
    for layer in model.layers:
        rows.append(
            (
                layer.name,
                type(layer).__name__,
                str(tuple(layer.output.shape)),
                f"{layer.count_params():,}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]

    def fmt(row):
        *left, params = row
        cells = [c.ljust(w) for c, w in zip(left, widths[:3], strict=True)]
        return "  ".join([*cells, params.rjust(widths[3])])

    lines = [f'Model "{model.name}"', fmt(rows[0]), "-" * (sum(widths) + 6)]
    return lines + [fmt(r) for r in rows[1:]]


def model_config_from_args(args: list[str]) -> ModelConfig:
    """The ModelConfig that `python -m asc_keras.summary <args>` builds.

    For tests and notebooks: parses `args` (e.g. `["--flagfile=configs/1a_lf.flags"]`) into a
    fresh set of flag values exactly as `main` does (absl's global FLAGS are not touched).
    """
    values = absl_flags.FlagValues()
    flags_lib.define_all(values)
    flags_lib.parse(["summary", *args], values)
    return flags_lib.model_config(flags_lib.feature_config(values), values)


def run(cfg: ModelConfig, *, task: str, layers: bool = True) -> str:
    """Build the model of `cfg` and return its summary text (also printed).

    Args:
        cfg: The model config.
        task: The `--task` whose complexity rule judges the model (`asc_keras.tasks`).
        layers: Include `model.summary()`'s layer table.

    Returns:
        The printed text.
    """
    from asc_keras.models import complexity, rules
    from asc_keras.models.size import model_size
    from asc_keras.strategies import build_model, loss_outputs, model_parts

    model = build_model(cfg)
    lines = []
    if layers:
        lines += layer_table(model)
    kinds = loss_outputs(model)
    lines.append(
        f"model {model.name}: inputs "
        + ", ".join(f"{t.name.split(':')[0]} {tuple(t.shape)}" for t in model.inputs)
    )
    for name, tensor in model.output.items():
        lines.append(
            f"  output {name} {tuple(tensor.shape)}"
            + (f"  loss: {kinds[name]}" if name in kinds else "")
        )
    parts = model_parts(cfg)
    if len(parts) > 1:
        lines.append(
            f"  {len(parts)} independent parts (--model_part, fusion weight): "
            + ", ".join(f"{p.name} {p.weight:.4g}" for p in parts)
        )
    lines.append(model_size(model).text())
    size = rules.size_summary(model, task)
    lines += rules.rule_lines(size)
    if size["count_zeros"] is False:
        lines.append(
            "  (an untrained model: the rule counts non-zero values, so the trained "
            "model, e.g. in export.py, measures a little more)"
        )
    memory = ", ".join(
        f"{complexity.parameter_memory(model, d)['bytes']:,} bytes {d}"
        for d in ("float32", "float16", "int8")
    )
    lines.append(f"every weight ({cfg.num_frames} frames in): {memory}")
    text = "\n".join(lines)
    print(text)
    return text


def run_tflite(paths, *, task: str) -> str:
    """Count each `.tflite` file of `paths` and judge it by `task`'s rule; returns the printed
    text."""
    from asc_keras import tasks
    from asc_keras.export import file_rule, tflite_complexity

    limits = tasks.get(task).limits
    lines = []
    for path in paths:
        fc = tflite_complexity.analyze(path)
        lines += tflite_complexity.table_lines(fc, title=path)
        lines.append(file_rule.rule_line(path, file_rule.file_rule(fc, limits), limits))
    text = "\n".join(lines)
    print(text)
    return text


def main(argv):
    del argv
    if absl_flags.FLAGS.tflite:
        run_tflite(absl_flags.FLAGS.tflite, task=absl_flags.FLAGS.task)
        return
    run(flags_lib.model_config(flags_lib.feature_config()), task=absl_flags.FLAGS.task)


if __name__ == "__main__":
    from asc_keras import cli

    cli.main(
        main,
        groups=(flags_lib.define_feature_flags, flags_lib.define_model_flags),
        also_shown=("task", "tflite"),
        doc=__doc__,
    )
