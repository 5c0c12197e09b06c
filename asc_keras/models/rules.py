"""A task's complexity rule applied to a built model: parameter bytes and MACs, each judged.

The rule is the task table's `Limits` (`asc_keras.tasks`): DCASE 2020 1B counts non-zero
non-BatchNorm parameters at their dtype's bytes against 512,000 bytes (500 KB, KB = 1024
bytes); DCASE 2022-2025 counts every parameter at int8 against 128,000 bytes (128 kB, kB = 1000
bytes) and multiply-accumulates per clip against 30,000,000. Limits are inclusive and compared
in exact bytes and MACs, never in rounded units.

- `size_summary(model, task)`: the measurements and verdicts as a JSON-ready dict (the export
  report's `size`; `summary.py` prints it);
- `rule_lines(size)`: that dict in words, bytes first, then the rule's own unit;
- `check_size_rule(size, *, model_dir, error)`: one line naming what is over its limit.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras

from asc_keras import tasks
from asc_keras.models import complexity
from asc_keras.models.size import model_size


def task_limits(task: str) -> tasks.Limits | None:
    """The complexity rule of `task` (None: no rule, or a task the table does not know)."""
    return tasks.TASKS[task].limits if task in tasks.TASKS else None


def size_summary(model: keras.Model, task: str) -> dict:
    """Sizes of `model` and the verdicts of `task`'s complexity rule.

    Returns:
        A JSON-ready dict: the `SizeReport` fields (`params`, `trainable_params`, `mib_float32`,
        `dcase_params`, `dcase_bytes`, `dcase_kb`), `macs` per clip, `task`, and the rule:
        `rule` (its name, None without one), `memory_params` and `memory_bytes` (counted by the
        rule), `memory_dtype` (None: each variable's own), `limit_bytes`, `limit_macs`, `unit`
        and `unit_bytes` (the rule's "KB": 1024, or "kB": 1000), `memory_within`,
        `macs_within` (None where the rule sets no such limit) and `within_limit` (both).
    """
    size = model_size(model)
    limits = task_limits(task)
    macs = complexity.macs(model)
    out = {
        "task": task,
        "params": size.params,
        "trainable_params": size.trainable_params,
        "mib_float32": size.mib_float32,
        "dcase_params": size.dcase_params,
        "dcase_bytes": size.dcase_bytes,
        "dcase_kb": size.dcase_kb,
        "macs": macs,
        "rule": None,
        "memory_params": None,
        "memory_bytes": None,
        "memory_dtype": None,
        "count_batchnorm": None,
        "count_zeros": None,
        "limit_bytes": None,
        "limit_macs": None,
        "unit": None,
        "unit_bytes": None,
        "memory_within": None,
        "macs_within": None,
        "within_limit": True,
    }
    if limits is None:
        return out
    memory = complexity.parameter_memory(
        model, limits.dtype, count_batchnorm=limits.count_batchnorm, count_zeros=limits.count_zeros
    )
    memory_within = memory["bytes"] <= limits.max_bytes
    macs_within = None if limits.max_macs is None else macs <= limits.max_macs
    out.update(
        rule=limits.rule,
        memory_params=memory["params"],
        memory_bytes=memory["bytes"],
        memory_dtype=limits.dtype,
        count_batchnorm=limits.count_batchnorm,
        count_zeros=limits.count_zeros,
        limit_bytes=limits.max_bytes,
        limit_macs=limits.max_macs,
        unit=limits.unit,
        unit_bytes=limits.unit_bytes,
        memory_within=memory_within,
        macs_within=macs_within,
        within_limit=memory_within and macs_within is not False,
    )
    return out


def _verdict(within: bool) -> str:
    return "within" if within else "OVER"


def _in_unit(n: int, size: Mapping) -> str:
    return f"{n / size['unit_bytes']:.1f} {size['unit']}"


def _counted(size: Mapping) -> str:
    """What the rule counts, e.g. '124,155 non-zero non-BatchNorm parameters at their dtype's
    bytes' or '33,414 parameters x 1 byte (int8)'."""
    kinds = ("" if size["count_zeros"] else "non-zero ") + (
        "" if size["count_batchnorm"] else "non-BatchNorm "
    )
    dtype = size["memory_dtype"]
    if dtype is None:
        per = "at their dtype's bytes"
    else:
        n = complexity.DTYPE_BYTES[dtype]
        per = f"x {n} byte{'s' if n > 1 else ''} ({dtype})"
    return f"{size['memory_params']:,} {kinds}parameters {per}"


def rule_lines(size: Mapping) -> list[str]:
    """The rule's verdicts in words: parameter memory in bytes (and the rule's unit), then MACs.

    E.g. for TAU 2022:

        DCASE 2022-2025 Task 1 rule (task tau2022), 1 kB = 1000 bytes:
          parameter memory: 33,414 parameters x 1 byte (int8) = 33,414 bytes (33.4 kB);
            limit 128,000 bytes (128 kB): within
          multiply-accumulates: 22,048,000 per clip (22.05 M); limit 30,000,000 (30 M): within
    """
    macs = f"{size['macs']:,} per clip ({size['macs'] / 1e6:.2f} M)"
    if size.get("rule") is None:
        return [f"task {size['task']}: no complexity rule; multiply-accumulates: {macs}"]
    memory = (
        f"  parameter memory: {_counted(size)} = {size['memory_bytes']:,} bytes "
        f"({_in_unit(size['memory_bytes'], size)}); limit {size['limit_bytes']:,} bytes "
        f"({size['limit_bytes'] / size['unit_bytes']:g} {size['unit']}): "
        f"{_verdict(size['memory_within'])}"
    )
    if size["limit_macs"] is None:
        macs_line = f"  multiply-accumulates: {macs}; no limit"
    else:
        macs_line = (
            f"  multiply-accumulates: {macs}; limit {size['limit_macs']:,} "
            f"({size['limit_macs'] / 1e6:g} M): {_verdict(size['macs_within'])}"
        )
    return [
        f"{size['rule']} rule (task {size['task']}), 1 {size['unit']} = "
        f"{size['unit_bytes']} bytes:",
        memory,
        macs_line,
    ]


def check_size_rule(size: Mapping, *, model_dir: str, error: type[Exception] = ValueError) -> None:
    """Raise `error` (one line naming `model_dir` and each broken limit) when the model breaks
    its task's complexity rule; nothing when it keeps it or the task has none."""
    if size["within_limit"]:
        return
    broken = []
    if size["memory_within"] is False:
        broken.append(
            f"{size['memory_bytes']:,} bytes of {_counted(size)} "
            f"({_in_unit(size['memory_bytes'], size)}), over "
            f"{size['limit_bytes']:,} bytes "
            f"({size['limit_bytes'] / size['unit_bytes']:g} {size['unit']})"
        )
    if size["macs_within"] is False:
        broken.append(
            f"{size['macs'] / 1e6:.2f} M multiply-accumulates per clip, over "
            f"{size['limit_macs'] / 1e6:g} M"
        )
    raise error(
        f"{model_dir}: the {size['task']} model breaks its complexity rule "
        f"({size['rule']}: " + "; ".join(broken) + "); nothing was exported"
    )
