"""Resources running out as one line: memory, a tensor over 2 GB, a full disk.

`reported(stage, lower, *, cleanup=None)` is a context manager around training, evaluation and
export. A `tf.errors.ResourceExhaustedError` (device memory: "OOM when allocating tensor ...
on /device:GPU:0") or a `MemoryError` (host memory) raised inside it, or chained to what is
raised inside it, becomes `OutOfMemoryError` with one line:

    training ran out of GPU:0 memory (OOM when allocating tensor with shape[100000,...]);
    lower --batch_size (now 100000)

A tensor over TensorFlow's 2 GB protobuf limit (an `InvalidArgumentError` or `ValueError`
saying so, what a huge batch on CPU meets) becomes `TensorTooLargeError`, an `OutOfMemoryError`
with the same advice. `cleanup` (a `RunFolder`) then removes a run folder this invocation created
that holds no checkpoint yet, so no half-made run is left behind; a folder that existed before (a
resumed run) or that holds a checkpoint is left as it is.

A full disk is not out of memory, although TensorFlow raises it as `ResourceExhaustedError`
("<path>; No space left on device") and Python as `OSError` with errno ENOSPC: `no_space(exc)`
finds it, and inside `reported` it becomes `NoSpaceError` (an `OSError`), one line naming the
path, after the partial files are removed (TensorFlow's `checkpoints/ckpt-N_temp/` and this
process's `*.tmp-<pid>` files) and finished work kept (earlier checkpoints; the unfinished folder
goes as above). `disk_full_reported(stage, where=folder)` does the same for any other writer (the
feature precompute). Any other exception passes unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator

from asc_keras.errors import AscError

OOM_NAMES = ("ResourceExhaustedError", "MemoryError")
NO_SPACE_TEXT = "No space left on device"  # strerror(ENOSPC), also in TensorFlow's messages
TOO_LARGE_NAMES = ("InvalidArgumentError", "ValueError")
TOO_LARGE_TEXTS = ("maximum protobuf size of 2GB", "larger than 2GB")
TEMP_CHECKPOINT_SUFFIX = "_temp"  # tf.train.Checkpoint writes `ckpt-N_temp/`, then renames it


class OutOfMemoryError(AscError, RuntimeError):
    """A stage ran out of memory (one line; see the module docstring)."""


class TensorTooLargeError(OutOfMemoryError):
    """A stage needed a tensor over TensorFlow's 2 GB limit (one line)."""


class NoSpaceError(AscError, OSError):
    """A write found the disk full (one line naming the path; errno ENOSPC)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


def own_temporary(name: str) -> bool:
    """Whether `name` is a temporary file of this process's atomic writes (`*.tmp-<pid>*`)."""
    return f".tmp-{os.getpid()}" in name


@dataclasses.dataclass
class Removal:
    """What a clean-up removed (names) and what it could not (`'<path> (<reason>)'`)."""

    removed: list[str] = dataclasses.field(default_factory=list)
    left: list[str] = dataclasses.field(default_factory=list)

    def remove(self, path: str) -> None:
        """Remove a file or a folder tree; a failure is recorded in `left`, never raised (the
        clean-up runs while another error is being reported)."""
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError as exc:
            self.left.append(f"{path} ({exc.strerror or exc})")
        else:
            self.removed.append(os.path.basename(path))

    def extend(self, other: Removal) -> Removal:
        self.removed += other.removed
        self.left += other.left
        return self

    def note(self) -> str:
        """`'; removed the partial files'` and/or `'; could not remove <path> (<reason>)'`."""
        text = "; removed the partial files" if self.removed else ""
        if self.left:
            text += f"; could not remove {', '.join(self.left)}"
        return text


def _entries(folder: str) -> list[os.DirEntry]:
    """The entries of `folder`; none when it does not exist (nothing was written there)."""
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        return []


def remove_partial(folder: str) -> Removal:
    """Remove this process's temporary files in `folder`."""
    removal = Removal()
    for entry in _entries(folder):
        if entry.is_file() and own_temporary(entry.name):
            removal.remove(entry.path)
    return removal


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

    def latest_checkpoint_step(self) -> int | None:
        """The step of the checkpoint the `checkpoint` state file names, or None."""
        try:
            with open(os.path.join(self.path, self.checkpoint_dir, "checkpoint")) as f:
                first = f.readline()  # model_checkpoint_path: "ckpt-N"
        except OSError:
            return None
        found = re.search(r"-(\d+)\"\s*$", first)
        return int(found.group(1)) if found else None

    def remove_partial(self) -> Removal:
        """Remove the partial files a failed write left: TensorFlow's `ckpt-N_temp/` folders,
        checkpoint files newer than the one the `checkpoint` state file names (a save that
        failed before updating it) and this process's temporary files (in the folder and its
        checkpoint folder)."""
        folder = os.path.join(self.path, self.checkpoint_dir)
        latest = self.latest_checkpoint_step()
        removal = Removal()
        for entry in _entries(folder):
            if entry.is_dir() and entry.name.endswith(TEMP_CHECKPOINT_SUFFIX):
                removal.remove(entry.path)
                continue
            step = re.fullmatch(r".+-(\d+)\.(index|data-\d+-of-\d+)", entry.name)
            if step and (latest is None or int(step.group(1)) > latest):
                removal.remove(entry.path)
        return removal.extend(remove_partial(self.path)).extend(remove_partial(folder))

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


def _text(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _in_chain(
    exc: BaseException | None, test: Callable[[BaseException], bool]
) -> BaseException | None:
    """The first exception in `exc`'s chain (`__cause__`, `__context__`) that passes `test`."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if test(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _is_no_space(exc: BaseException) -> bool:
    return (
        isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    ) or NO_SPACE_TEXT.lower() in _text(exc).lower()


def no_space(exc: BaseException | None) -> BaseException | None:
    """The full-disk exception in `exc`'s chain (errno ENOSPC or TensorFlow's "No space left
    on device", which arrives as `ResourceExhaustedError`), or None."""
    return _in_chain(exc, _is_no_space)


def out_of_memory(exc: BaseException | None) -> BaseException | None:
    """The out-of-memory exception in `exc`'s chain (`__cause__`, `__context__`), or None; a
    full disk is not one."""
    return _in_chain(exc, lambda e: bool(_names(e) & set(OOM_NAMES)) and not _is_no_space(e))


def too_large(exc: BaseException | None) -> BaseException | None:
    """The exception in `exc`'s chain about a tensor over the 2 GB protobuf limit, or None."""
    return _in_chain(
        exc,
        lambda e: (
            bool(_names(e) & set(TOO_LARGE_NAMES)) and any(t in _text(e) for t in TOO_LARGE_TEXTS)
        ),
    )


def written_path(exc: BaseException, default: str) -> str:
    """The path a full-disk exception was writing (`OSError.filename`, or the path before
    TensorFlow's "; No space left on device"), shown as the `ckpt-N_temp` folder when inside
    one; `default` (may be '') when the exception does not say."""
    path = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    if not path:
        found = re.search(r"(\S+);\s*" + NO_SPACE_TEXT, _text(exc), re.IGNORECASE)
        path = found.group(1) if found else default
    parts = str(path).split(os.sep)
    for k, part in enumerate(parts):
        if part.endswith(TEMP_CHECKPOINT_SUFFIX):
            return os.sep.join(parts[: k + 1])
    return str(path)


def _first_line(exc: BaseException) -> str:
    text = _text(exc).strip().splitlines()
    return text[0][:160] if text else ""


def describe(exc: BaseException) -> str:
    """`'<device> memory (<first line of the message>)'` of an out-of-memory exception."""
    first = _first_line(exc)
    if isinstance(exc, MemoryError):
        return "host memory (RAM)" + (f" ({first})" if first else "")
    device = re.search(r"device:([A-Za-z]+:\d+)", first) or re.search(r"\b([GT]PU:\d+)", first)
    where = f"{device.group(1)} memory" if device else "device memory"
    return f"{where} ({first})" if first else where


def _no_space_error(
    stage: str, found: BaseException, *, where: str, cleanup: RunFolder | None, kept: str = ""
) -> NoSpaceError:
    """The one-line `NoSpaceError` of a full disk, after removing the partial files."""
    path = written_path(found, where)
    if cleanup is None:
        note = remove_partial(where).note() if where else ""
        note += f"; {kept} are kept" if kept else ""
    else:
        partial = cleanup.remove_partial()
        if cleanup.remove_if_unfinished():
            note = f"; removed the unfinished {cleanup.path}"
        else:
            step = cleanup.latest_checkpoint_step()
            note = partial.note() + (
                f"; the checkpoint at step {step} is kept"
                if step is not None
                else "; no checkpoint was written yet"
            )
    shown = f" writing {path}" if path else ""
    return NoSpaceError(f"{stage}: no space left on device{shown}{note}; free some space and rerun")


@contextlib.contextmanager
def disk_full_reported(stage: str, *, where: str, kept: str = "") -> Iterator[None]:
    """Turn a full disk inside the block into `NoSpaceError` (one line naming the path, or
    `where` when the error does not say); this process's temporary files in `where` are
    removed, everything else (finished work, named by `kept`, e.g. 'finished shards') is
    kept."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 (OSError and TF's errors share no narrower base)
        found = no_space(exc)
        if found is None:
            raise
        raise _no_space_error(stage, found, where=where, cleanup=None, kept=kept) from None


@contextlib.contextmanager
def reported(stage: str, lower: str, *, cleanup: RunFolder | None = None) -> Iterator[None]:
    """Turn running out of memory, a tensor over 2 GB or a full disk inside the block into
    one line: `OutOfMemoryError`, `TensorTooLargeError`, `NoSpaceError` (module docstring).

    Args:
        stage: What ran, e.g. 'training', 'evaluation', 'int8 calibration'.
        lower: What to lower, e.g. '--batch_size (now 64)'.
        cleanup: A run folder to remove when unfinished (and clear of partial files).
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 (MemoryError and TF's errors share no narrower base)
        full = no_space(exc)
        if full is not None:
            raise _no_space_error(
                stage, full, where=cleanup.path if cleanup else "", cleanup=cleanup
            ) from None
        found, large = out_of_memory(exc), too_large(exc)
        if found is None and large is None:
            raise
        removed = cleanup.remove_if_unfinished() if cleanup is not None else False
        note = f"; removed the unfinished {cleanup.path}" if removed else ""
        if found is not None:
            raise OutOfMemoryError(
                f"{stage} ran out of {describe(found)}; lower {lower}{note}"
            ) from None
        raise TensorTooLargeError(
            f"{stage} needs a tensor over TensorFlow's 2 GB limit "
            f"({_first_line(large)}); lower {lower}{note}"
        ) from None
