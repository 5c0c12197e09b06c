"""Where an export is written: a staging folder that becomes the export folder only when every
check passed, or `<export_dir>.rejected` when one failed.

- `check_destination(export_dir, *, overwrite)`: refuse a file or a non-empty export folder;
- `staging_folder(export_dir)`: a fresh `<export_dir>.partial-<pid>`, removed on the way out
  unless it was published or rejected;
- `publish(staging, export_dir)`: the staging folder becomes `export_dir` (an old one replaced);
- `reject(staging, export_dir)`: the staging folder becomes `<export_dir>.rejected`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

from asc_keras.export.errors import OverwriteError


def remove_tree(path: str) -> None:
    """Remove a folder of ours if it is there (a leftover of an interrupted export)."""
    if os.path.isdir(path):
        shutil.rmtree(path)


def check_destination(export_dir: str, *, overwrite: bool) -> None:
    """Raises `OverwriteError` for a file, or a non-empty folder without `overwrite`."""
    if os.path.isfile(export_dir):
        raise OverwriteError(f"{export_dir}: is a file, not an export folder")
    if os.path.isdir(export_dir) and os.listdir(export_dir) and not overwrite:
        raise OverwriteError(
            f"{export_dir}: already holds an export; pass --overwrite to replace it"
        )


@contextlib.contextmanager
def staging_folder(export_dir: str) -> Iterator[str]:
    """A new, empty `<export_dir>.partial-<pid>` (a leftover of that name is replaced); whatever
    is still there on the way out is removed."""
    staging = f"{export_dir}.partial-{os.getpid()}"
    remove_tree(staging)
    os.makedirs(staging)
    try:
        yield staging
    finally:
        remove_tree(staging)


def publish(staging: str, export_dir: str) -> None:
    """Rename `staging` to `export_dir`; an existing one is moved aside first, then removed."""
    if os.path.exists(export_dir):
        old = f"{export_dir}.old-{os.getpid()}"
        os.rename(export_dir, old)
        os.rename(staging, export_dir)
        shutil.rmtree(old)
    else:
        os.rename(staging, export_dir)


def reject(staging: str, export_dir: str) -> str:
    """Rename `staging` to `<export_dir>.rejected` (an older one replaced); returns that path."""
    rejected = f"{export_dir}.rejected"
    remove_tree(rejected)
    os.rename(staging, rejected)
    return rejected
