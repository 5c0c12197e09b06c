"""The export report: model sizes, artifact file sizes and parity checks, as a table and as JSON.

Input: the `size` dict of the model (`asc_keras.models.rules.size_summary`: every weight, the
task's complexity rule in exact bytes and MACs with its verdicts), one entry per artifact
(`{'name', 'input', 'dtype', 'bytes', 'status', 'error', 'parity': [Parity.to_dict(), ...]}`)
the calibration and parity data descriptions, and each TFLite file's own complexity
(`report['complexity']`: per-op MACs, parameter bytes, peak arena, the rule's verdict;
`file_rule.judge_files`). Output: `export_report.json`
(`write_report`) and a printed table (`format_report`); sizes in bytes, with the rule's own unit
beside them, e.g.

    export asc_1b_ef_spsmt (task 1b): RUN -> EXPORT
    weights 124,547 = 498,188 bytes float32 (0.475 MiB)
    DCASE 2020 Task 1B rule (task 1b), 1 KB = 1024 bytes:
      parameter memory: 124,155 non-zero non-BatchNorm parameters at their dtype's bytes =
        496,620 bytes (485.0 KB); limit 512,000 bytes (500 KB): within
      multiply-accumulates: 628,367,600 per clip (628.37 M); no limit
    artifact               input    dtype          file size  checked against   max |diff| ...
    saved_model            features float32  1,254,380 bytes  keras                      0 ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from asc_keras import atomic
from asc_keras.export import file_rule, tflite_complexity
from asc_keras.models import rules

REPORT_NAME = "export_report.json"


def file_bytes(path: str) -> int:
    """Size of a file, or the total of the files under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def human_bytes(n: int | None) -> str:
    """Exact bytes, e.g. '146,712 bytes'."""
    return "-" if n is None else f"{n:,} bytes"


def _diff(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def format_report(report: Mapping) -> str:
    """The report as a printable table."""
    size = report["size"]
    lines = [
        f"export {report['model_name']} (task {report['task']}): {report['model_dir']} -> "
        f"{report['export_dir']}",
        f"weights {size['params']:,} = {size['params'] * 4:,} bytes float32 "
        f"({size['mib_float32']:.3f} MiB)",
        *rules.rule_lines(size),
    ]
    data = report.get("parity_data") or {}
    calib = report.get("calibration") or {}
    if data:
        lines.append(
            f"parity on {data['num_examples']} clips of split {data['split']!r}"
            + (f"; audio from {data['audio']}" if data.get("audio") else "")
        )
    if calib:
        lines.append(
            f"int8 calibration: {calib['num_examples']} clips of split "
            f"{calib['split']!r} (seed {calib['seed']}), per class "
            f"{calib['class_counts']}, per device {calib.get('device_counts', {})}"
        )
    header = (
        f"{'artifact':22s} {'input':8s} {'dtype':7s} {'file size':>16s}  "
        f"{'checked against':26s} {'max |diff|':>10s} {'tolerance':>9s} {'argmax':>7s}  "
        "status"
    )
    lines += [header, "-" * len(header)]
    for art in report["artifacts"]:
        first = True
        rows = art.get("parity") or [None]
        for p in rows:
            name = art["name"] if first else ""
            meta = (
                f"{art['input']:8s} {art['dtype']:7s} {human_bytes(art.get('bytes')):>16s}"
                if first
                else f"{'':8s} {'':7s} {'':>16s}"
            )
            if p is None:
                check = f"{'-':26s} {'-':>10s} {'-':>9s} {'-':>7s}"
                status = art["status"] + (f" ({art['error']})" if art.get("error") else "")
            else:
                agree = (
                    "-" if p["argmax_agreement"] is None else f"{p['argmax_agreement'] * 100:.0f}%"
                )
                where = f"{p['artifact'].split(' ', 1)[-1]} vs {p['reference']}"
                check = (
                    f"{where:26s} {_diff(p['max_abs_diff']):>10s} {p['tolerance']:>9.0e} "
                    f"{agree:>7s}"
                )
                status = "ok" if p["passed"] else "FAILED"
                if p["missing"]:
                    status += f" (missing outputs {p['missing']})"
            lines.append(f"{name:22s} {meta}  {check}  {status}")
            first = False
    for art in report["artifacts"]:
        if art.get("per_device"):
            lines.append(
                f"{art['name']} vs keras by device: "
                + "; ".join(
                    f"{d} {v['num_examples']} clips, argmax {v['argmax_agreement'] * 100:.0f}%, "
                    f"max |dprob| {v['max_abs_diff']:.3f}"
                    for d, v in art["per_device"].items()
                )
            )
    lines += micro_lines(report.get("micro"))
    lines += complexity_lines(report)
    lines += report_qat_lines(report)
    lines.append(
        "result: "
        + ("all checks passed" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))
    )
    return "\n".join(lines)


def micro_lines(record: Mapping | None) -> list[str]:
    """The `--micro` lines of the table: the file, its arena, parity and the files written."""
    if not record:
        return []
    lines = [
        f"micro: {record['file']} {human_bytes(record['bytes'])}, operators "
        + ", ".join(record["operators"])
    ]
    parity = record.get("parity")
    if record.get("arena_bytes") is not None and parity:
        lines.append(
            f"micro: tensor arena {record['arena_bytes']:,} bytes; tflite-micro vs litert "
            f"{parity['max_steps']} int8 step(s) (tolerance {parity['step_tolerance']}), litert "
            f"vs keras max |diff| {_diff(parity['keras']['max_abs_diff'])} on "
            f"{parity['num_examples']} clips"
        )
    lines.append("micro: files " + ", ".join(record["files"]))
    return lines


def complexity_lines(report: Mapping) -> list[str]:
    """Each TFLite file's per-op table (`tflite_complexity.table_lines`) and its rule verdict."""
    limits = rules.task_limits(report["task"])
    lines = []
    for name, counted in (report.get("complexity") or {}).items():
        fc = tflite_complexity.from_dict(counted["complexity"])
        lines += tflite_complexity.table_lines(fc, title=f"complexity of {name}")
        lines.append(file_rule.rule_line(name, counted["rule"], limits))
    return lines


def report_qat_lines(report: Mapping) -> list[str]:
    """A QAT run's float / PTQ int8 / QAT int8 accuracy lines (`asc_keras.quantize`); none
    for a float run."""
    from asc_keras.quantize.exporting import comparison_lines

    return comparison_lines(report.get("qat"))


def write_report(folder: str, report: Mapping) -> str:
    """Write `<folder>/export_report.json` atomically; returns its path."""
    path = os.path.join(folder, REPORT_NAME)
    atomic.write_json(path, dict(report))
    return path
