"""Reproduction progress: each running run's step of its total and ETA, from its log as it grows.

`runner.execute` drives fake runs whose logs gain a `step k/N` line per poll: at a terminal the
progress is one status line rewritten in place (`LiveLine`), with the done lines above it;
elsewhere one logged line per step change.
"""

from __future__ import annotations

import io
import json
import os
import re
import types

from asc_keras.reproduce import progress as progress_lib
from asc_keras.reproduce import runner

STEPS = 4


def _jobs(tmp_path, names):
    return [
        runner.Job(
            0,
            types.SimpleNamespace(name=name),
            str(tmp_path / "runs" / name),
            str(tmp_path / "logs" / f"{name}.log"),
        )
        for name in names
    ]


class _FakeRun:
    """A run whose log shows one more step per poll; it finishes as a done run."""

    def __init__(self, job):
        self.job, self.step = job, 0
        os.makedirs(job.model_dir, exist_ok=True)

    def poll(self):
        if self.step == STEPS:
            with open(os.path.join(self.job.model_dir, "metrics.json"), "w") as f:
                json.dump({"step": STEPS}, f)
            open(os.path.join(self.job.model_dir, "model.keras"), "wb").close()
            return 0
        self.step += 1
        with open(self.job.log_path, "a") as f:
            f.write(f"step {self.step}/{STEPS} loss 1.0\n")
        return None


def _execute(tmp_path, names, **kwargs):
    logged = []
    result = runner.execute(
        _jobs(tmp_path, names),
        train_steps=lambda job: STEPS,
        start=lambda job, env: _FakeRun(job),
        poll=lambda run: run.poll(),
        slots=({},),
        out_dir=str(tmp_path),
        log=logged.append,
        interval=0.01,
        **kwargs,
    )
    return result, logged


def test_progress_lines_name_the_run_its_step_and_eta(tmp_path):
    result, logged = _execute(tmp_path, ["1b_logmel", "1b_cqt"])
    assert result["done"] == ["seed0/1b_logmel", "seed0/1b_cqt"]
    progress = [line for line in logged if line.startswith("[")]
    steps = [re.search(r"(\w+) step (\d)/4", line).groups() for line in progress if "step" in line]
    # one line per step change, in order, for each run in turn
    assert steps == [(n, str(k)) for n in ("1b_logmel", "1b_cqt") for k in range(1, 5)]
    assert "1b_logmel step 3/4 ETA 0:00:00" in "\n".join(progress)  # its pace so far
    assert "1b_logmel step 1/4;" in progress[0] or progress[0].endswith("1b_logmel step 1/4")
    # once the first run is done, the whole share's ETA follows from its duration
    second = [line for line in progress if "1b_cqt" in line]
    assert second and all("all ETA 0:00:00" in line for line in second), second
    assert any(line.startswith("[1/2 runs finished, 0 failed]") for line in second)
    assert "done seed0/1b_logmel in 0 s" in logged


def test_at_a_terminal_one_line_is_rewritten_in_place(tmp_path):
    screen = io.StringIO()
    live = progress_lib.LiveLine(screen)
    result, logged = _execute(tmp_path, ["1b_gamma"], live=live)
    assert result["done"] == ["seed0/1b_gamma"]
    # the log gets the start and done lines only; the progress went to the status line
    assert not [line for line in logged if line.startswith("[")]
    assert logged[-1] == "done seed0/1b_gamma in 0 s"
    drawn = screen.getvalue().split("\r\x1b[K")
    assert "[0/1 runs finished, 0 failed] 1b_gamma step 4/4" in " ".join(drawn)
    assert any(re.search(r"1b_gamma step 2/4 ETA \d:\d\d:\d\d", d) for d in drawn), drawn
    assert "\n" not in screen.getvalue()  # rewritten in place, never scrolled
    assert drawn[-1] == "" and live.text == ""  # erased at the end


def test_share_eta_counts_waves_of_slots():
    assert progress_lib.share_eta([10.0, None], 60.0, pending=3, slots=2) == 60.0 + 2 * 60.0
    assert progress_lib.share_eta([5.0], 20.0, pending=0, slots=1) == 5.0
    assert progress_lib.share_eta([None], None, pending=4, slots=1) is None
