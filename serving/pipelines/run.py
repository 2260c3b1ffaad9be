"""What the rerank and embeddings pipelines share: a tokenizer, the batching core, request limits.

Each pipeline turns a request into a Job (framed rows, nothing padded yet) and hands it to the
BatchScheduler; the async form serves HTTP, the blocking form serves the load-time warm-up, the
corpus job and the benchmark's bare-model ceiling: both run the same code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from serving.errors import ModelFailure, TooManyTokens
from serving.pipelines.batching import BatchScheduler, Job, JobResult, PostProcess
from serving.pipelines.framing import EncodedBatch, RaggedTokens
from serving.pipelines.tokenize import Tokenizer
from serving.repository.layout import TokenizerInfo


@dataclass(frozen=True)
class RequestLimits:
    """Server-wide limits on one request (the graph's own limits live in its options)."""

    max_request_tokens: int | None = None  # framed tokens after chunking; None: no limit


@dataclass(frozen=True)
class RequestTimings:
    """Where a request's time went (the x-*-time response headers), in seconds."""

    tokenization: float
    queue: float
    inference: float


def finite_rows(postprocess: PostProcess, what: str) -> PostProcess:
    """`postprocess`, failing the request when the model gave NaN or infinity for any of its rows."""

    def checked(batch: EncodedBatch, output: np.ndarray) -> np.ndarray:
        values = postprocess(batch, output)
        if not np.isfinite(values).all():
            raise ModelFailure(f"the model computed non-finite {what} for this request")
        return values

    return checked


class BatchedPipeline:
    def __init__(
        self, tokenizer: Tokenizer, scheduler: BatchScheduler, info: TokenizerInfo, limits: RequestLimits
    ) -> None:
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.info = info
        self.limits = limits

    def check_request_tokens(self, tokens: int, field: str) -> None:
        limit = self.limits.max_request_tokens
        if limit is not None and tokens > limit:
            raise TooManyTokens(
                f"the request needs {tokens} tokens (special tokens and chunking included), more than "
                f"this server's limit of {limit} (--max_request_tokens)",
                field=field,
            )

    async def _tokenize(self, texts: list[str]) -> tuple[RaggedTokens, float]:
        started = time.perf_counter()
        tokens = await self.tokenizer.tokenize(texts)
        return tokens, time.perf_counter() - started

    def _tokenize_blocking(self, texts: list[str]) -> tuple[RaggedTokens, float]:
        started = time.perf_counter()
        tokens = self.tokenizer.tokenize_blocking(texts)
        return tokens, time.perf_counter() - started

    @staticmethod
    def timings(tokenization: float, result: JobResult) -> RequestTimings:
        return RequestTimings(tokenization, result.queue_seconds, result.inference_seconds)

    async def _run(self, job: Job) -> JobResult:
        return await self.scheduler.run(job)

    def _run_blocking(self, job: Job) -> JobResult:
        return self.scheduler.run_blocking(job)

    @property
    def waiting(self) -> int:
        return self.scheduler.waiting + self.tokenizer.waiting

    def close(self) -> None:
        self.scheduler.close()
        self.tokenizer.close()
