"""Run the pipelines' async calls from code that blocks: the load-time warm-up, the corpus job,
calibration and the accuracy report at export time, the benchmark's bare-model ceiling.

The pipelines have one request path, async. A BlockingRunner owns an event loop on a daemon
thread and runs coroutines there while the calling thread waits for the result. It works from
any thread, including one whose own event loop is running (the server's), which asyncio.run
cannot; coroutines sent from several threads at once run concurrently on its loop, so their
jobs share batches as HTTP requests do.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

Result = TypeVar("Result")


class BlockingRunner:
    """An event loop on its own daemon thread; `run(coroutine)` returns the coroutine's result."""

    def __init__(self, name: str = "ovtext-blocking") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        """Run `coroutine` on the runner's loop and wait for it; its exception is raised here. If
        the wait is interrupted (KeyboardInterrupt), the coroutine is cancelled."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("BlockingRunner.run called on the runner's own loop: await the coroutine")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise


_shared: tuple[int, BlockingRunner] | None = None
_shared_lock = threading.Lock()


def run_blocking(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """`coroutine`'s result, run on the process's shared BlockingRunner (started on first use, and
    again in a forked child, which inherits the runner but not its thread)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), BlockingRunner())
        runner = _shared[1]
    return runner.run(coroutine)
