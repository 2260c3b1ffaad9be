"""Send the padded batches of one request to the backend and collect per-row results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from serving.pipelines.batching import BatchPolicy, BatchStats, plan_batches
from serving.pipelines.framing import EncodedBatch, Frame, Segments, build_batch, framed_lengths
from serving.pipelines.inference import InferenceBackend
from serving.pipelines.tokenize import Tokenizer
from serving.repository.layout import TokenizerInfo

# Turns (the batch, the model output for it) into one result row per batch row.
PostProcess = Callable[[EncodedBatch, np.ndarray], np.ndarray]


def _scatter(parts: list[tuple[np.ndarray, np.ndarray]], count: int) -> np.ndarray:
    """One array of `count` results: each part's values put at its rows (parts come in any order)."""
    first = parts[0][1]
    results = np.empty((count, *first.shape[1:]), dtype=first.dtype)
    for rows, values in parts:
        results[rows] = values
    return results


class BatchedPipeline:
    """What the rerank and embeddings pipelines share: a tokenizer, a backend, the tokenizer's
    framing facts and the batch policy; a request's batches are padded with the model's pad token."""

    def __init__(
        self, tokenizer: Tokenizer, backend: InferenceBackend, info: TokenizerInfo, batching: BatchPolicy
    ) -> None:
        self.tokenizer = tokenizer
        self.backend = backend
        self.info = info
        self.batching = batching

    async def run_batches(
        self, frame: Frame, segments: Segments, postprocess: PostProcess
    ) -> tuple[np.ndarray, list[BatchStats]]:
        """Results for every segment, in segment order, and what each inference call did.

        Batches are built only when the backend can take them, so a request with many chunks
        never holds more than `backend.capacity` padded batches in memory.
        """
        batches = plan_batches(framed_lengths(frame, segments), self.batching)
        slots = asyncio.Semaphore(self.backend.capacity)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        stats: list[BatchStats] = []

        async def one(rows: np.ndarray) -> None:
            async with slots:
                batch = build_batch(frame, segments, rows, self.info.pad_token_id)
                started = time.perf_counter()
                output = await self.backend.infer(batch)
                stats.append(
                    BatchStats(
                        rows=len(rows),
                        padded_tokens=batch.input_ids.size,
                        seconds=time.perf_counter() - started,
                    )
                )
                parts.append((rows, postprocess(batch, output)))

        await asyncio.gather(*(one(rows) for rows in batches))
        return _scatter(parts, len(segments)), stats

    def run_batches_blocking(self, frame: Frame, segments: Segments, postprocess: PostProcess) -> np.ndarray:
        """The same, one batch after the other on the calling thread (for warm-up at load time)."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for rows in plan_batches(framed_lengths(frame, segments), self.batching):
            batch = build_batch(frame, segments, rows, self.info.pad_token_id)
            parts.append((rows, postprocess(batch, self.backend.infer_blocking(batch))))
        return _scatter(parts, len(segments))

    @property
    def waiting(self) -> int:
        return self.backend.waiting + self.tokenizer.waiting

    def close(self) -> None:
        self.backend.close()
        self.tokenizer.close()
