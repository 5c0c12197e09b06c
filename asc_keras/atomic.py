"""Atomic file writes: the one home of "write a file so a reader never sees half of it".

Each writer puts the content in a temporary file next to the target (`<path>.tmp-<pid>`, the name
`asc_keras.oom.own_temporary` recognises), flushes and fsyncs it, then `os.replace`s it onto the
target. A failure on the way removes the temporary file and leaves an existing target whole.

This module imports nothing from asc_keras, so every layer may use it.
"""

from __future__ import annotations

import json
import os


def temporary_path(path: str) -> str:
    """The temporary name a write to `path` goes through (same folder, this process's id)."""
    return f"{path}.tmp-{os.getpid()}"


def write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, fsync, `os.replace`)."""
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def write_text(path: str, text: str) -> None:
    """Write `text` (UTF-8, newlines as given) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def dumps_json(obj) -> str:
    """The JSON text every record of the package is written as (1-space indent, sorted keys, no
    trailing newline)."""
    return json.dumps(obj, indent=1, sort_keys=True)


def write_json(path: str, obj) -> None:
    """Write `obj` as JSON (`dumps_json`) to `path` atomically; an object that does not serialize
    raises before any file is touched."""
    write_text(path, dumps_json(obj))
