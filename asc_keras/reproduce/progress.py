"""How a reproduction shows its progress: each running run's step, total and ETA.

A job is a `runner.Job` (`key`, `log_path`, `run.name`).

- `log_step(log_path)`: the newest `step a/b` of a run's log;
- `Pace`: each running run's steps over time (its pace and ETA);
- `progress_line`, `share_eta`: the status text and the ETA of a machine's whole share;
- `LiveLine`: one status line rewritten in place at the bottom of a terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence

_STEP = re.compile(r"step (\d+)/(\d+)")


def log_step(log_path: str) -> tuple[int, int] | None:
    """`(step, total steps)` of the newest `step a/b` line of a run's log; None before one."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(log_path) - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    found = _STEP.findall(tail)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Pace:
    """Each running job's steps over time, read from its log: its step, total and ETA."""

    def __init__(self):
        self.seen: dict[str, tuple[float, int, float, int]] = {}  # first (t, step), last (t, step)

    def step(self, job, now: float) -> tuple[int, int] | None:
        found = log_step(job.log_path)
        if found is not None:
            t0, s0, t1, s1 = self.seen.get(job.key, (now, found[0], now, found[0]))
            if found[0] != s1:
                t1, s1 = now, found[0]
            self.seen[job.key] = (t0, s0, t1, s1)
        return found

    def seconds_per_step(self, job) -> float | None:
        t0, s0, t1, s1 = self.seen.get(job.key, (0.0, 0, 0.0, 0))
        return (t1 - t0) / (s1 - s0) if s1 > s0 and t1 > t0 else None

    def eta(self, job, now: float) -> float | None:
        """Seconds until the job's last step: the steps left at its pace so far, counted from
        the moment its log showed the newest step."""
        found, pace = log_step(job.log_path), self.seconds_per_step(job)
        if found is None or pace is None:
            return None
        t1 = self.seen[job.key][2]
        return (found[1] - found[0]) * pace - (now - t1)


def progress_line(
    finished: int,
    total: int,
    failed: int,
    running: Sequence[tuple[object, tuple[int, int] | None, float | None]],
    *,
    share_eta: float | None,
) -> str:
    """`[f/t runs finished, k failed] <run> step a/b ETA h:mm:ss; <run> starting; all ETA ...`.

    Args:
        finished, total, failed: Run counts of this machine's share.
        running: `(job, (step, total steps) or None, ETA seconds or None)` per running run.
        share_eta: Seconds until the whole share is done, when known.
    """
    parts = []
    for job, found, eta in running:
        text = f"{job.run.name} " + ("starting" if found is None else f"step {found[0]}/{found[1]}")
        parts.append(text + ("" if eta is None else f" ETA {clock(eta)}"))
    tail = "" if share_eta is None else f"; all ETA {clock(share_eta)}"
    return f"[{finished}/{total} runs finished, {failed} failed] " + "; ".join(parts) + tail


def share_eta(
    running_etas: Sequence[float | None],
    run_seconds: float | None,
    pending: int,
    slots: int,
) -> float | None:
    """Seconds until every run of the share is done: the longest running run (a run without
    an ETA yet counts as a whole run), then the pending runs in waves of `slots`.

    Args:
        running_etas: Each running run's ETA (None: not known yet).
        run_seconds: The duration of one run (finished runs' mean, else estimated from the
            running runs' pace); None when nothing is known yet.
        pending: Runs not started.
        slots: Runs at once.
    """
    if run_seconds is None:
        return None
    left = [run_seconds if e is None else e for e in running_etas]
    return max(left, default=0.0) + -(-pending // max(1, slots)) * run_seconds


class LiveLine:
    """One status line rewritten in place at the bottom of a terminal; log lines go above it.

    `reproduce.py` makes one on stderr when stderr is a terminal; `execute` shows its progress
    there instead of logging a progress line per step change.
    """

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.text = ""

    def _write(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def show(self, text: str) -> None:
        """Replace the status line with `text` (cut to the terminal's width)."""
        self.text = text[: max(20, shutil.get_terminal_size().columns - 1)]
        self._write(self.text)

    def log(self, line: str, print_fn: Callable[[str], None] = print) -> None:
        """Print `line` above the status line (which is drawn again below it)."""
        if self.text:
            self._write("")
        print_fn(line)
        sys.stdout.flush()
        if self.text:
            self._write(self.text)

    def close(self) -> None:
        """Erase the status line."""
        if self.text:
            self._write("")
        self.text = ""
