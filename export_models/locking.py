"""Advisory file locks (flock) shared by the export and the fixture cache.

A lock belongs to an open file: it goes away when the process holding it dies, however it dies,
so a lock that can be taken tells that its previous owner is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def _open_lock_file(lock_path: Path) -> int:
    return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def acquire(lock_path: Path) -> int:
    """Wait for an exclusive lock on lock_path (created if missing); returns the descriptor holding it."""
    descriptor = _open_lock_file(lock_path)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def try_acquire(lock_path: Path) -> int | None:
    """The exclusive lock on lock_path if nobody holds it, else None (no waiting).

    Raises FileNotFoundError when lock_path does not exist (it is not created).
    """
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def release(descriptor: int) -> None:
    os.close(descriptor)  # closing the last descriptor of the open file drops its lock


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on lock_path (created, with its folder, if missing) within the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = acquire(lock_path)
    try:
        yield
    finally:
        release(descriptor)
