"""The training progress bar: steps done of `train_steps`, steps/s and the time left, on stderr.

It advances once per loop call (never per step, so it costs the device nothing), shows only when
stderr is a terminal or when asked, and log lines printed while it shows go through tqdm's
external write mode, so they appear above it instead of tearing it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def wanted(show: bool | None) -> bool:
    """`show`, or (None) whether stderr is a terminal."""
    if show is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return show


class StepBar:
    """A bar from `start` to `total` steps; a no-op when not `enabled`."""

    def __init__(self, total: int, *, start: int, enabled: bool):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=start,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def advance(self, steps: int) -> None:
        """Count `steps` more (one call per loop call)."""
        if self._bar is not None:
            self._bar.update(steps)

    def logger(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """`log` with the bar cleared around each line and redrawn after it."""
        if self._bar is None:
            return log
        bar = self._bar

        def through_bar(line: str) -> None:
            with bar.external_write_mode(file=bar.fp):
                log(line)

        return through_bar

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
