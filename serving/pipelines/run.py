"""What the rerank and embeddings pipelines share: a tokenizer, the batching core, request limits.

Each pipeline turns a request into a Job (framed rows, nothing padded yet) and hands it to the
BatchScheduler. There is one path, async: HTTP awaits it, and the load-time warm-up, the corpus
job and the benchmark's bare-model ceiling run it through serving/pipelines/blocking.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serving.errors import ModelFailure, TooManyTokens
from serving.pipelines.batching import BatchScheduler, Job, JobResult, PostProcess
from serving.pipelines.framing import EncodedBatch, RaggedTokens
from serving.pipelines.tokenize import Tokenizer
from serving.repository.layout import TokenizerInfo

# Characters tokenized in one tokenizer call: a request over a limit is refused after one group.
GROUP_CHARACTERS = 256 * 1024

# Called with each group's tokens and the index of its first text; raises when a limit is crossed.
GroupCheck = Callable[[RaggedTokens, int], None]


def text_groups(texts: list[str], characters: int = GROUP_CHARACTERS) -> list[tuple[int, int]]:
    """[first, last) index ranges of consecutive texts of about `characters` each (at least one text)."""
    groups: list[tuple[int, int]] = []
    first, size = 0, 0
    for index, text in enumerate(texts):
        size += len(text)
        if size >= characters:
            groups.append((first, index + 1))
            first, size = index + 1, 0
    if first < len(texts) or not groups:
        groups.append((first, len(texts)))
    return groups


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

    async def _tokenize(self, texts: list[str], check: GroupCheck) -> tuple[RaggedTokens, float]:
        """Token ids of `texts`, tokenized a group of texts at a time; `check(group, first)` runs
        after each group and raises as soon as a limit is crossed, so a request far over a limit
        costs one group of tokenization, not all of it."""
        started = time.perf_counter()
        groups = []
        for first, last in text_groups(texts):
            group = await self.tokenizer.tokenize(texts[first:last])
            check(group, first)
            groups.append(group)
        return RaggedTokens.concatenate(groups), time.perf_counter() - started

    @staticmethod
    def timings(tokenization: float, result: JobResult) -> RequestTimings:
        return RequestTimings(tokenization, result.queue_seconds, result.inference_seconds)

    async def _run(self, job: Job) -> JobResult:
        return await self.scheduler.run(job)

    @property
    def waiting(self) -> int:
        return self.scheduler.waiting + self.tokenizer.waiting

    def close(self) -> None:
        self.scheduler.close()
        self.tokenizer.close()
