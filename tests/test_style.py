"""The repository is in the project's style: `ruff check` and `ruff format --check` pass.

Settings (line length 100, Python 3.10, the lint rules) come from pyproject.toml; `make fmt`
rewrites a file into the style, `make lint` runs the same two checks.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [["check", "--no-cache"], ["format", "--check", "--no-cache"]],
    ids=["lint", "format"],
)
def test_repository_passes_ruff(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"ruff {' '.join(command)}: run `make fmt`\n{result.stdout}"
