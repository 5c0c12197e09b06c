"""One training process per run folder: `<model_dir>/train.lock` names the pid and host holding it.

`held(model_dir, *, log)` is a context manager around a training run:

- it creates the lock file exclusively (`O_EXCL`) with `{"pid", "host", "started"}`, creating the
  folder when needed, and removes it on exit (when it is still this process's);
- a lock held by a live process, or by another host (whose processes cannot be checked from
  here), is refused with `RunFolderLockedError`, one line naming the holder and the lock file;
- a lock left by a dead process of this host (killed, or the machine rebooted) is taken over,
  said in one logged line. The take-over renames the old lock aside and checks that it renamed
  the lock it judged stale, so two processes taking over the same lock cannot both win.

A pid reused by an unrelated process after a crash reads as alive: the refusal names the lock
file, to be removed by hand then.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Callable, Iterator

from asc_keras.errors import AscError

LOCK_NAME = "train.lock"
_TRIES = 5


class RunFolderLockedError(AscError, ValueError):
    """Another training process holds the run folder."""


def _holder(path: str) -> dict | None:
    """The lock's content, `{}` when unreadable, None when there is no lock."""
    try:
        with open(path) as f:
            content = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _alive(pid: int) -> bool:
    """Whether process `pid` of this host exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stale(holder: dict) -> bool:
    pid = holder.get("pid")
    return (
        holder.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and pid > 0
        and pid != os.getpid()
        and not _alive(pid)
    )


def _create(path: str) -> bool:
    """Create the lock file with this process's pid and host; False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": started}, f)
        f.flush()
        os.fsync(f.fileno())
    return True


def _take_over(path: str, holder: dict) -> bool:
    """Move the stale lock `holder` aside; False when the file there is no longer that lock."""
    aside = f"{path}.stale-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False  # someone else moved it first
    if _holder(aside) == holder:
        os.remove(aside)
        return True
    with contextlib.suppress(OSError):  # another process's fresh lock: put it back
        os.link(aside, path)
    os.remove(aside)
    return False


def _refusal(model_dir: str, path: str, holder: dict) -> RunFolderLockedError:
    if not holder:
        return RunFolderLockedError(
            f"{model_dir}: locked by an unreadable {path}; if no training runs there, remove it"
        )
    who = f"pid {holder.get('pid')} on {holder.get('host')}"
    since = f" since {holder['started']}" if holder.get("started") else ""
    if holder.get("host") != socket.gethostname():
        hint = f"if that process no longer runs, remove {path}"
    else:
        hint = f"wait for it or use another --model_dir (lock: {path})"
    return RunFolderLockedError(f"{model_dir}: in use by training {who}{since}; {hint}")


def acquire(model_dir: str, *, log: Callable[[str], None] = print) -> str:
    """Take the lock of `model_dir` (see the module docstring); returns the lock file's path."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, LOCK_NAME)
    for _ in range(_TRIES):
        if _create(path):
            return path
        holder = _holder(path)
        if holder is None:
            continue  # released meanwhile
        if not _stale(holder):
            raise _refusal(model_dir, path, holder)
        if _take_over(path, holder):
            log(
                f"{path}: took over the lock of pid {holder['pid']} on {holder['host']}, which "
                "no longer runs"
            )
    raise _refusal(model_dir, path, _holder(path) or {})


def release(path: str) -> None:
    """Remove the lock file if it is still this process's."""
    holder = _holder(path)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def held(
    model_dir: str, *, enabled: bool = True, log: Callable[[str], None] = print
) -> Iterator[None]:
    """Hold the lock of `model_dir` inside the block; `enabled=False` (a non-chief worker of a
    cluster, which writes only its own scratch folder) takes none."""
    if not enabled:
        yield
        return
    path = acquire(model_dir, log=log)
    try:
        yield
    finally:
        release(path)
