"""A task's complexity rule judged on a deployed `.tflite` file's own numbers.

Input: a `tflite_complexity.FileComplexity` and the task's `Limits` (`asc_keras.tasks`); output:
the verdicts as a JSON-ready dict (`file_rule`), one line of them (`rule_line`) and the
refusal (`check_file_rule`) that `export.py` raises, naming the file, the count and the limit;
`judge_files` does all of it for an export's features-in TFLite files.

A file's parameter memory is the bytes it stores its parameters in (an int8 file: int8 weights,
int32 biases, float32 normalization constants; a float16 file: 2 bytes per parameter), as
NeSsi, the DCASE 2022 checker, measured files; BatchNorm is folded into the biases in a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from asc_keras.export.tflite_complexity import FileComplexity, analyze
from asc_keras.tasks import Limits

JUDGED_PRECISIONS = ("int8", "float16")  # files a rule with a dtype judges (see `judged`)


def judged(fc: FileComplexity, limits: Limits | None) -> bool:
    """Whether `limits` judges a file: int8 and float16 files always (the DCASE 2022 rule's
    int8 model, the 2024 baseline's float16 one); float32 files only under a rule that counts
    each parameter at its own dtype (DCASE 2020 1B: the model as trained)."""
    if limits is None:
        return False
    return fc.precision in JUDGED_PRECISIONS or limits.dtype is None


def file_rule(fc: FileComplexity, limits: Limits | None) -> dict:
    """The rule's verdicts on a file's own numbers.

    Parameter memory is the file's stored parameter bytes (non-zero values only under a rule
    that skips zeros); BatchNorm is folded into the convolution biases in a file. MACs are the
    file's (`analyze`).

    Returns:
        `{'judged', 'memory_bytes', 'macs', 'limit_bytes', 'limit_macs', 'memory_within',
        'macs_within', 'within_limit'}` (verdicts None where not judged or not limited).
    """
    out = {
        "judged": judged(fc, limits),
        "memory_bytes": fc.param_bytes,
        "macs": fc.macs,
        "limit_bytes": None,
        "limit_macs": None,
        "memory_within": None,
        "macs_within": None,
        "within_limit": True,
    }
    if not out["judged"]:
        return out
    memory = fc.param_bytes if limits.count_zeros else fc.nonzero_bytes
    memory_within = memory <= limits.max_bytes
    macs_within = None if limits.max_macs is None else fc.macs <= limits.max_macs
    out.update(
        memory_bytes=memory,
        limit_bytes=limits.max_bytes,
        limit_macs=limits.max_macs,
        memory_within=memory_within,
        macs_within=macs_within,
        within_limit=memory_within and macs_within is not False,
    )
    return out


def rule_line(name: str, verdict: Mapping, limits: Limits | None) -> str:
    """One line: the file's parameter bytes and MACs against the rule, e.g. `model_int8.tflite:
    35,210 parameter bytes (limit 128,000): within; 22.07 M MACs (limit 30 M): within`."""
    if not verdict["judged"]:
        why = "no complexity rule" if limits is None else "not judged: float32 weights"
        return (
            f"{name}: {verdict['memory_bytes']:,} parameter bytes; "
            f"{verdict['macs'] / 1e6:.2f} M MACs ({why})"
        )
    word = {True: "within", False: "OVER", None: "no limit"}
    macs = f"{verdict['macs'] / 1e6:.2f} M MACs"
    if verdict["limit_macs"] is not None:
        macs += f" (limit {verdict['limit_macs'] / 1e6:g} M)"
    return (
        f"{name}: {verdict['memory_bytes']:,} parameter bytes "
        f"(limit {verdict['limit_bytes']:,}): {word[verdict['memory_within']]}; "
        f"{macs}: {word[verdict['macs_within']]} ({limits.rule})"
    )


def check_file_rule(
    path: str, verdict: Mapping, limits: Limits | None, *, error: type[Exception] = ValueError
) -> None:
    """Raise `error`, one line naming `path`, the count and the limit, when a judged file breaks
    its rule; nothing otherwise."""
    if verdict["within_limit"]:
        return
    broken = []
    if verdict["memory_within"] is False:
        broken.append(
            f"{verdict['memory_bytes']:,} parameter bytes, over {verdict['limit_bytes']:,} "
            f"bytes ({limits.limit_in_unit:g} {limits.unit})"
        )
    if verdict["macs_within"] is False:
        broken.append(
            f"{verdict['macs']:,} multiply-accumulates per clip, over {verdict['limit_macs']:,}"
        )
    raise error(
        f"{path}: the file breaks the {limits.rule} complexity rule ({'; '.join(broken)}); "
        "nothing was exported"
    )


def judge_files(
    folder: str,
    entries: Sequence[Mapping],
    limits: Limits | None,
    *,
    export_dir: str,
    error: type[Exception] = ValueError,
) -> dict:
    """Count every features-in `.tflite` file written into `folder` and judge it.

    Args:
        folder: Where the files are (the staging folder).
        entries: `artifacts.write_artifacts`'s entries.
        limits: The task's rule (None: counted only).
        export_dir: The folder the files are published to, for the refusal's file name.
        error: Raised (by `check_file_rule`) for the first judged file over its rule.

    Returns:
        `{file name: {'complexity': FileComplexity.to_dict(), 'rule': file_rule(...)}}`.
    """
    out = {}
    for entry in entries:
        name = entry["name"]
        if entry["status"] != "ok" or entry["input"] != "features" or not name.endswith(".tflite"):
            continue
        fc = analyze(os.path.join(folder, name))
        verdict = file_rule(fc, limits)
        check_file_rule(os.path.join(export_dir, name), verdict, limits, error=error)
        out[name] = {"complexity": fc.to_dict(), "rule": verdict}
    return out
