"""Durable file writes: readers see the old file or the new one, never a mix, and a power loss
after the write keeps the new one."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Replace the file at path (through symlinks) with what `write` writes to the path it is given.

    `write` fills a temp file beside the real file, which os.replace puts in its place; a
    symlinked file (a Kubernetes ConfigMap mount) stays a link to the new file, and an existing
    file's mode is kept. The file and then its folder are fsynced, so the rename survives a power
    loss. A failed write leaves no temp file.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        write(Path(temp_name))
        with open(temp_name, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_folder(target.parent)


def write_text_atomically(path: Path, text: str) -> None:
    """write_atomically for a text (UTF-8)."""
    write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def fsync_folder(folder: Path) -> None:
    """Make renames into `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
