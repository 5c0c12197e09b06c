"""Reading flagfiles: `--flagfile=PATH` arguments replaced by the arguments the files hold.

A nested flagfile path is resolved against the folder of the flagfile that names it (else the
working directory), so `--flagfile=/abs/path/configs/1a_gamma.flags` works from any directory.
Comment (`#`, `//`) and blank lines are skipped, as absl does.
"""

from __future__ import annotations

import os

_FLAGFILE_PREFIXES = ("--flagfile=", "-flagfile=")


def _flagfile_lines(path: str, *, seen: tuple[str, ...]) -> list[str]:
    """The arguments a flagfile holds, its own `--flagfile=` lines expanded in place."""
    real = os.path.realpath(path)
    if real in seen:
        raise ValueError(f"{path}: includes itself (via {' -> '.join(seen)})")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"{path}: flagfile not readable ({e.strerror or e})") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        out += _expand_one(line, base=os.path.dirname(path), seen=(*seen, real))
    return out


def _expand_one(arg: str, *, base: str, seen: tuple[str, ...]) -> list[str]:
    for prefix in _FLAGFILE_PREFIXES:
        if arg.startswith(prefix):
            path = os.path.expanduser(arg[len(prefix) :])
            nested = os.path.join(base, path)
            if base and not os.path.isabs(path) and os.path.exists(nested):
                path = nested
            return _flagfile_lines(path, seen=seen)
    return [arg]


def expand(argv: list[str]) -> list[str]:
    """`argv` with every `--flagfile=PATH` replaced, in place, by the arguments the file holds.

    A nested flagfile path is resolved against the folder of the flagfile that names it (else
    the working directory), so `--flagfile=/abs/path/configs/1a_gamma.flags` works from any
    directory. Comment (`#`, `//`) and blank lines are skipped, as absl does.

    Raises:
        ValueError: A flagfile is missing or unreadable (one line naming it), or includes itself.
    """
    out = list(argv[:1])
    for arg in argv[1:]:
        out += _expand_one(arg, base="", seen=())
    return out
