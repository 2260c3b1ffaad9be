"""Disk checks: a folder the export can write to, and whether a failed write filled the disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from export_models.errors import RepositoryNotWritableError

# A write that failed while the disk has less than this free is taken to have filled it up.
FULL_DISK_BYTES = 1 << 20


def disk_full_reason(folder: Path) -> str | None:
    """'no space left ...' when folder's filesystem is (almost) full, else None (after a failed write)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= FULL_DISK_BYTES:
        return None
    return f"no space left on the device ({free // 1024} KiB free)"


def check_writable_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RepositoryNotWritableError(
            f"cannot create {what} {folder}: {error.strerror or error}"
        ) from error
    if not folder.is_dir():
        raise RepositoryNotWritableError(f"{what} {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RepositoryNotWritableError(f"{what} {folder} is not writable")
