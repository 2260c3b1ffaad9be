"""Run compiled OpenVINO models off the event loop.

- InferencePool (the tokenizer): a fixed set of InferRequests; a call borrows an idle one on a
  worker thread (OpenVINO releases the GIL) and always gives it back, whatever happens to the
  caller, so concurrent calls never share one.
- OpenVINORunner (the rerank/embeddings model): one InferRequest per slot, each driven by one
  worker thread of the BatchScheduler (serving/pipelines/batching.py); feeds only the inputs the
  model has.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import openvino as ov

from serving.pipelines.framing import EncodedBatch


def openvino_error_message(error: BaseException) -> str:
    """OpenVINO's exception text without its source locations ('Exception from src/...', paths)."""
    lines = [line.strip() for line in str(error).splitlines()]
    useful = [line for line in lines if line and not line.startswith("Exception from ")]
    text = " ".join(useful) if useful else type(error).__name__
    # "Check 'x' failed at src/plugins/...cpp:123:" names OpenVINO's sources, not the problem.
    text = re.sub(r"Check '[^']*' failed at \S+:\d+:?\s*", "", text)
    # Absolute paths (of libraries, of the server's files) become their last part.
    text = re.sub(r"(?:/[\w.+-]+)+/([\w.+-]+)", r"\1", text)
    return text.strip() or type(error).__name__


def _infer_and_copy(request: ov.InferRequest, inputs: Any, outputs: Sequence[int]) -> list[np.ndarray]:
    request.infer(inputs)
    # Copy: the request's tensors are reused by the next call that borrows it.
    return [np.array(request.get_output_tensor(index).data, copy=True) for index in outputs]


class InferencePool:
    """A fixed set of InferRequests of one compiled model; each call borrows an idle one."""

    def __init__(
        self, compiled: ov.CompiledModel, size: int, label: str, outputs: Sequence[int] = (0,)
    ) -> None:
        self._outputs = tuple(outputs)
        self._requests = [compiled.create_infer_request() for _ in range(max(1, size))]
        self._idle: queue.SimpleQueue[ov.InferRequest] = queue.SimpleQueue()
        for request in self._requests:
            self._idle.put(request)
        self._executor = ThreadPoolExecutor(
            max_workers=len(self._requests), thread_name_prefix=f"tok-{label}"
        )
        self._lock = threading.Lock()
        self._submitted = 0
        self._started = 0

    @property
    def size(self) -> int:
        return len(self._requests)

    @property
    def waiting(self) -> int:
        """Calls queued for an idle infer request right now."""
        return self._submitted - self._started

    def _infer(self, inputs: Mapping[Any, np.ndarray]) -> list[np.ndarray]:
        request = self._idle.get()
        try:
            return _infer_and_copy(request, dict(inputs), self._outputs)
        finally:
            self._idle.put(request)

    def _run_counted(self, inputs: Mapping[Any, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            self._started += 1
        return self._infer(inputs)

    def try_run_now(self, inputs: Mapping[Any, np.ndarray]) -> list[np.ndarray] | None:
        """Run on the calling thread if an infer request is idle right now, else None (never waits)."""
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            return None
        try:
            return _infer_and_copy(request, dict(inputs), self._outputs)
        finally:
            self._idle.put(request)

    async def run(self, inputs: Mapping[Any, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            self._submitted += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_counted, inputs)

    def close(self) -> None:
        """Release the infer requests now: one released after its Core is gone crashes the process."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self._idle.empty():
            self._idle.get_nowait()
        self._requests.clear()


class OpenVINORunner:
    """One InferRequest per slot of a compiled rerank/embeddings model."""

    def __init__(self, compiled: ov.CompiledModel, slots: int, output_index: int = 0) -> None:
        self.input_names = [port.get_any_name() for port in compiled.inputs]
        self._output_index = output_index
        self._requests = [compiled.create_infer_request() for _ in range(max(1, slots))]

    @property
    def slots(self) -> int:
        return len(self._requests)

    def infer(self, slot: int, batch: EncodedBatch) -> np.ndarray:
        available = batch.as_inputs()
        inputs = {name: available[name] for name in self.input_names}
        return _infer_and_copy(self._requests[slot], inputs, (self._output_index,))[0]

    def close(self) -> None:
        self._requests.clear()
