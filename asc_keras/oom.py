"""Out of memory as one line: what ran out, in which stage, and which flag to lower.

`reported(stage, lower, *, cleanup=None)` is a context manager around training, evaluation and
export. A `tf.errors.ResourceExhaustedError` (device memory: "OOM when allocating tensor ...
on /device:GPU:0") or a `MemoryError` (host memory) raised inside it, or chained to what is
raised inside it, becomes `OutOfMemoryError` with one line:

    training ran out of GPU:0 memory (OOM when allocating tensor with shape[100000,...]);
    lower --batch_size (now 100000)

and `cleanup` (a `RunFolder`) removes a run folder this invocation created that holds no
checkpoint yet, so no half-made run is left behind; a folder that existed before (a resumed
run) or that holds a checkpoint is left as it is. Any other exception passes unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from collections.abc import Iterator

OOM_NAMES = ("ResourceExhaustedError", "MemoryError")


class OutOfMemoryError(RuntimeError):
    """A stage ran out of memory (one line; see the module docstring)."""


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """A run folder and whether this invocation created it.

    Attributes:
        path: The folder.
        created: True when it did not exist before this invocation.
        checkpoint_dir: Its subfolder whose files make the run worth keeping.
    """

    path: str
    created: bool
    checkpoint_dir: str = "checkpoints"

    @classmethod
    def before_creating(cls, path: str, *, checkpoint_dir: str = "checkpoints") -> RunFolder:
        """Record whether `path` exists; call before `os.makedirs(path)`."""
        return cls(path=path, created=not os.path.exists(path), checkpoint_dir=checkpoint_dir)

    def has_checkpoint(self) -> bool:
        folder = os.path.join(self.path, self.checkpoint_dir)
        return os.path.isdir(folder) and any(os.scandir(folder))

    def remove_if_unfinished(self) -> bool:
        """Remove the folder when this invocation created it and it has no checkpoint.

        Returns whether it was removed; a folder that cannot be removed is left (the out-of-
        memory report then does not claim it was), so the original error is never masked.
        """
        if not (self.created and os.path.isdir(self.path) and not self.has_checkpoint()):
            return False
        try:
            shutil.rmtree(self.path)
        except OSError:
            return False
        return True


def out_of_memory(exc: BaseException | None) -> BaseException | None:
    """The out-of-memory exception in `exc`'s chain (`__cause__`, `__context__`), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(c.__name__ in OOM_NAMES for c in type(exc).__mro__):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def describe(exc: BaseException) -> str:
    """`'<device> memory (<first line of the message>)'` of an out-of-memory exception."""
    text = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
    first = text[0][:160] if text else ""
    if isinstance(exc, MemoryError):
        return "host memory (RAM)" + (f" ({first})" if first else "")
    device = re.search(r"device:([A-Za-z]+:\d+)", first) or re.search(r"\b([GT]PU:\d+)", first)
    where = f"{device.group(1)} memory" if device else "device memory"
    return f"{where} ({first})" if first else where


@contextlib.contextmanager
def reported(stage: str, lower: str, *, cleanup: RunFolder | None = None) -> Iterator[None]:
    """Turn running out of memory inside the block into `OutOfMemoryError` (module docstring).

    Args:
        stage: What ran, e.g. 'training', 'evaluation', 'int8 calibration'.
        lower: What to lower, e.g. '--batch_size (now 64)'.
        cleanup: A run folder to remove when unfinished.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 (MemoryError and TF's errors share no narrower base)
        found = out_of_memory(exc)
        if found is None:
            raise
        removed = cleanup.remove_if_unfinished() if cleanup is not None else False
        note = f"; removed the unfinished {cleanup.path}" if removed else ""
        raise OutOfMemoryError(f"{stage} ran out of {describe(found)}; lower {lower}{note}"
                               ) from None
