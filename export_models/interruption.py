"""SIGTERM and SIGINT stop an export cleanly.

Inside stop_on_signals() (the CLI runs every export in it), the first SIGTERM or SIGINT raises
ExportInterruptedError in the main thread wherever the export is, so the usual cleanup runs:
optimum-cli's process group is stopped, the staging folder is removed, and the CLI prints one
line and exits 1. Further signals are ignored while that cleanup runs. Inside the commit
(signals_held()) a signal waits: the commit's renames are never cut in half, and once it is done
the export has nothing left to undo and ends normally.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from export_models.errors import ExportInterruptedError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Guard:
    def __init__(self) -> None:
        self.holding = False
        self.stopping = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping or self.holding:
            return
        self.stopping = True
        raise ExportInterruptedError(
            f"stopped by {signal.Signals(signum).name}: export cancelled, the repository is unchanged"
        )


_guard: _Guard | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM/SIGINT raise ExportInterruptedError within the block (main thread only)."""
    global _guard
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    guard = _Guard()
    previous = {signum: signal.signal(signum, guard.handle) for signum in STOP_SIGNALS}
    _guard = guard
    try:
        yield
    finally:
        _guard = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Signals that arrive within the block do not interrupt it (the export then completes)."""
    guard = _guard
    if guard is None:
        yield
        return
    guard.holding = True
    try:
        yield
    finally:
        guard.holding = False
