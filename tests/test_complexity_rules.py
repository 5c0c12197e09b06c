"""Complexity rules in exact bytes and MACs, as each challenge's own checker counts them.

Each task's limit is tested on both sides with tiny symbolic models (no forward pass): exactly at
the limit passes, one parameter (or one multiply-accumulate) more fails. The summary command is
run as a user runs it, on a DCASE 2020 1B and a TAU 2022 flagfile, and must judge each model by
its own task's rule.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import keras
import pytest

from asc_keras import tasks
from asc_keras.export import errors
from asc_keras.models import rules

REPO = pathlib.Path(__file__).resolve().parent.parent


def _dense_model(
    units: int, *, inputs: tuple[int, ...] = (1,), batchnorm: bool = False, zero_bias: bool = False
) -> keras.Model:
    """Input `inputs` -> Dense(units) with non-zero (ones) kernels: `in * units` parameters and
    `prod(inputs) * units` MACs; optionally a zero bias and a BatchNorm layer on top."""
    x = inp = keras.Input(inputs)
    x = keras.layers.Dense(units, use_bias=zero_bias, kernel_initializer="ones")(x)
    if batchnorm:
        x = keras.layers.BatchNormalization()(x)
    return keras.Model(inp, x)


def _judge(model: keras.Model, task: str) -> dict:
    size = rules.size_summary(model, task)
    if size["within_limit"]:
        rules.check_size_rule(size, model_dir="run", error=errors.SizeRuleError)
    else:
        with pytest.raises(errors.SizeRuleError, match=r"^run: the .* model breaks"):
            rules.check_size_rule(size, model_dir="run", error=errors.SizeRuleError)
    return size


def test_the_task_table_states_limits_in_bytes_and_macs():
    tau, b = tasks.get("tau2022").limits, tasks.get("1b").limits
    assert (tau.max_bytes, tau.max_macs, tau.dtype, tau.unit_bytes) == (
        128_000,
        30_000_000,
        "int8",
        1000,
    )
    assert (b.max_bytes, b.max_macs, b.unit_bytes) == (512_000, None, 1024)
    assert tasks.get("1a").limits is None and tasks.get("custom").limits is None


@pytest.mark.parametrize("params, within", [(128_000, True), (128_001, False)])
def test_tau2022_parameter_bytes_boundary(params, within):
    """128,000 int8 parameters = 128,000 bytes pass; one more fails (128,001 / 1024 = 125 "KB"
    would pass a 1024-byte reading of "128 kB")."""
    size = _judge(_dense_model(params), "tau2022")
    assert size["memory_params"] == size["memory_bytes"] == params
    assert (size["memory_within"], size["within_limit"]) == (within, within)
    assert size["macs_within"] is True
    text = "\n".join(rules.rule_lines(size))
    assert f"= {params:,} bytes" in text and "limit 128,000 bytes (128 kB)" in text
    assert "1 kB = 1000 bytes" in text
    assert ("limit 128,000 bytes (128 kB): " + ("within" if within else "OVER")) in text


def test_tau2022_counts_batchnorm_and_zero_weights():
    """Every parameter counts: 25,600 kernel + 25,600 zero biases + 4 x 25,600 BatchNorm."""
    size = rules.size_summary(_dense_model(25_600, batchnorm=True, zero_bias=True), "tau2022")
    assert size["memory_bytes"] == 6 * 25_600 and not size["within_limit"]


@pytest.mark.parametrize("macs, within", [(30_000_000, True), (30_000_001, False)])
def test_tau2022_macs_boundary(macs, within):
    size = _judge(_dense_model(1, inputs=(macs, 1)), "tau2022")
    assert size["macs"] == macs and size["memory_within"] is True
    assert (size["macs_within"], size["within_limit"]) == (within, within)
    assert ("limit 30,000,000 (30 M): " + ("within" if within else "OVER")) in "\n".join(
        rules.rule_lines(size)
    )
    if not within:
        with pytest.raises(errors.SizeRuleError, match="multiply-accumulates per clip, over 30 M"):
            rules.check_size_rule(size, model_dir="run", error=errors.SizeRuleError)


@pytest.mark.parametrize("params, within", [(128_000, True), (128_001, False)])
def test_1b_parameter_bytes_boundary(params, within):
    """128,000 non-zero non-BatchNorm float32 parameters = 512,000 bytes = 500 KB pass; one
    more fails. The zero biases and the BatchNorm layer do not count."""
    size = _judge(_dense_model(params, batchnorm=True, zero_bias=True), "1b")
    assert size["memory_params"] == params and size["memory_bytes"] == 4 * params
    assert (size["memory_within"], size["within_limit"]) == (within, within)
    assert size["limit_macs"] is None and size["macs_within"] is None
    text = "\n".join(rules.rule_lines(size))
    assert f"{params:,} non-zero non-BatchNorm parameters" in text
    assert f"= {4 * params:,} bytes" in text and "1 KB = 1024 bytes" in text
    assert ("limit 512,000 bytes (500 KB): " + ("within" if within else "OVER")) in text
    if not within:
        with pytest.raises(
            errors.SizeRuleError,
            match=r"512,004 bytes .* over 512,000 "
            r"bytes \(500 KB\)",
        ):
            rules.check_size_rule(size, model_dir="run", error=errors.SizeRuleError)


def test_a_task_without_a_rule_is_measured_only():
    size = _judge(_dense_model(10**6), "1a")
    assert size["within_limit"] and size["rule"] is None
    assert rules.rule_lines(size) == [
        "task 1a: no complexity rule; multiply-accumulates: 1,000,000 per clip (1.00 M)"
    ]


def _summary(*args: str, cwd) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "asc_keras.summary", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
def test_summary_command_applies_the_flagfiles_own_task_rule(tmp_path):
    """TAU 2022 at full width: its parameter bytes are within 128,000, its 62 M MACs per 1 s
    clip are not; no word of the 2020 500 KB rule. 1B: the 500 KB rule, in bytes."""
    tau = _summary(
        f"--flagfile={REPO / 'configs' / 'tau2022_ef_spsmt.flags'}", "--width=1.0", cwd=tmp_path
    )
    assert "DCASE 2022-2025 Task 1 rule (task tau2022), 1 kB = 1000 bytes:" in tau
    assert "parameters x 1 byte (int8)" in tau
    assert "limit 128,000 bytes (128 kB): within" in tau
    assert "limit 30,000,000 (30 M): OVER" in tau
    assert "500 KB" not in tau and "1B" not in tau

    b = _summary(f"--flagfile={REPO / 'configs' / '1b_logmel.flags'}", cwd=tmp_path)
    assert "DCASE 2020 Task 1B rule (task 1b), 1 KB = 1024 bytes:" in b
    assert "non-zero non-BatchNorm parameters" in b
    assert "limit 512,000 bytes (500 KB): within" in b
    assert "no limit" in b and "128,000" not in b
