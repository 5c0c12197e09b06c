"""bench/gpu_check.py in its CPU smoke mode: every section runs and prints its Markdown table."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "gpu.md"
    assert (
        module.main(
            [
                "--smoke",
                "--precisions=float32,mixed_bfloat16",
                "--steps=2",
                "--largest=1b_logmel.flags",
                "--flagfiles=1b_ef_spsmt.flags",
                f"--out={out}",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "no GPU (CPU)" in text
    rows = [line for line in text.splitlines() if line.startswith("| 1")]
    assert [r.split(" | ")[1] for r in rows[:4]] == ["float32", "mixed_bfloat16"] * 2
    assert "| K=1 ex/s | K=2 ex/s | K=2 / K=1 | peak GiB |" in text
    assert "Tables 2-3: 31 runs (34 CNNs), 23,808,000 training examples" in text
    assert "| batch 4 | mixed_bfloat16 |" in text
    assert "| 1b_ef_spsmt.flags | ok | ok |" in text
