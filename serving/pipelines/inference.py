"""Run compiled OpenVINO models from asyncio without blocking the event loop.

An InferencePool owns a fixed set of InferRequests of one compiled model (one per stream, as
OpenVINO's OPTIMAL_NUMBER_OF_INFER_REQUESTS says); a call borrows an idle request, runs it on
a worker thread (OpenVINO releases the GIL) and returns it, so concurrent requests never
share one. The pipelines talk to an InferenceBackend: anything with `infer(batch)`; today the
backend sends each batch straight to the pool, and a batcher that merges batches of concurrent
requests under a token budget can implement the same protocol and slot in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import openvino as ov

from serving.pipelines.framing import EncodedBatch


def openvino_error_message(error: BaseException) -> str:
    """OpenVINO's exception text without the 'Exception from src/...' location lines."""
    lines = [line.strip() for line in str(error).splitlines()]
    useful = [line for line in lines if line and not line.startswith("Exception from ")]
    return " ".join(useful) if useful else str(error).strip() or type(error).__name__


def _infer_and_copy(request: ov.InferRequest, inputs: Any, outputs: Sequence[int]) -> list[np.ndarray]:
    request.infer(inputs)
    # Copy: the request's tensors are reused by the next call that borrows it.
    return [np.array(request.get_output_tensor(index).data, copy=True) for index in outputs]


class InferencePool:
    """A fixed set of InferRequests of one compiled model; each call borrows an idle one."""

    def __init__(
        self, compiled: ov.CompiledModel, size: int, label: str, outputs: Sequence[int] = (0,)
    ) -> None:
        self._compiled = compiled
        self._outputs = tuple(outputs)
        self._requests = [compiled.create_infer_request() for _ in range(max(1, size))]
        self._idle: asyncio.Queue[ov.InferRequest] = asyncio.Queue()
        for request in self._requests:
            self._idle.put_nowait(request)
        self._executor = ThreadPoolExecutor(
            max_workers=len(self._requests), thread_name_prefix=f"infer-{label}"
        )
        self._waiting = 0

    @property
    def size(self) -> int:
        return len(self._requests)

    @property
    def waiting(self) -> int:
        """Calls queued for an idle infer request right now."""
        return self._waiting

    async def run(self, inputs: Mapping[Any, np.ndarray]) -> list[np.ndarray]:
        self._waiting += 1
        try:
            request = await self._idle.get()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, _infer_and_copy, request, dict(inputs), self._outputs)
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The worker thread still uses the request: give it back only when it is done.
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._idle.put_nowait, request))
            raise
        except BaseException:
            self._idle.put_nowait(request)
            raise
        self._idle.put_nowait(request)
        return result

    def run_blocking(self, inputs: Mapping[Any, np.ndarray]) -> list[np.ndarray]:
        """For loading (warm-up) before the pool serves: not to be mixed with concurrent run()."""
        return _infer_and_copy(self._requests[0], dict(inputs), self._outputs)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self._requests.clear()


class InferenceBackend(Protocol):
    """Where a pipeline sends its padded batches."""

    @property
    def capacity(self) -> int:
        """How many batches can usefully be in flight at once."""
        ...

    @property
    def waiting(self) -> int:
        """Batches queued, not yet running."""
        ...

    async def infer(self, batch: EncodedBatch) -> np.ndarray: ...

    def infer_blocking(self, batch: EncodedBatch) -> np.ndarray: ...

    def close(self) -> None: ...


class OpenVINOBackend:
    """Sends each batch to an InferencePool; feeds only the inputs the model has."""

    def __init__(self, compiled: ov.CompiledModel, pool_size: int, label: str, output_index: int = 0) -> None:
        self.input_names = [port.get_any_name() for port in compiled.inputs]
        self._pool = InferencePool(compiled, pool_size, label, outputs=(output_index,))

    @property
    def capacity(self) -> int:
        return self._pool.size

    @property
    def waiting(self) -> int:
        return self._pool.waiting

    def _inputs(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        available = batch.as_inputs()
        return {name: available[name] for name in self.input_names}

    async def infer(self, batch: EncodedBatch) -> np.ndarray:
        return (await self._pool.run(self._inputs(batch)))[0]

    def infer_blocking(self, batch: EncodedBatch) -> np.ndarray:
        return self._pool.run_blocking(self._inputs(batch))[0]

    def close(self) -> None:
        self._pool.close()
