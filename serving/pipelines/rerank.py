"""The rerank pipeline: tokenize once, frame (query, document) pairs in chunks, batch, score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.errors import InputTooLong, TooManyChunks
from serving.pipelines.batching import BatchScheduler, BatchStats, Job, JobResult
from serving.pipelines.framing import EncodedBatch, RaggedTokens, chunk_counts, chunk_texts, pair_frame
from serving.pipelines.run import BatchedPipeline, RequestLimits, RequestTimings, finite_rows
from serving.pipelines.scoring import max_per_owner, relevance_logits, sigmoid
from serving.pipelines.tokenize import Tokenizer
from serving.repository.config import RerankOptions
from serving.repository.layout import TokenizerInfo


@dataclass(frozen=True)
class RerankOutcome:
    scores: np.ndarray  # one per document, in request order: sigmoid(logit), or the logit when raw
    prompt_tokens: int  # tokens fed to the model, special tokens and the repeated query included
    chunks: int
    batches: list[BatchStats]
    timings: RequestTimings


def _logits_per_row(batch: EncodedBatch, output: np.ndarray) -> np.ndarray:
    return relevance_logits(output)


_checked_logits = finite_rows(_logits_per_row, "scores")


class RerankPipeline(BatchedPipeline):
    def __init__(
        self,
        tokenizer: Tokenizer,
        scheduler: BatchScheduler,
        info: TokenizerInfo,
        limits: RequestLimits,
        options: RerankOptions,
    ) -> None:
        super().__init__(tokenizer, scheduler, info, limits)
        self.options = options

    def _job(
        self, tokens: RaggedTokens, max_chunks_per_doc: int | None, max_tokens_per_doc: int | None
    ) -> Job:
        """The request's rows, after checking every limit on counts alone (nothing per chunk yet)."""
        query = tokens.row(0)
        documents = tokens.tail(1)
        room = self.info.max_length - len(query) - self.info.pair_overhead
        if room < 1:
            raise InputTooLong(
                f"the query has {len(query)} tokens; with {self.info.pair_overhead} special tokens "
                f"that leaves no room for a document in the model's {self.info.max_length}-token limit",
                field="query",
            )
        doc_limit = self.options.max_doc_length
        if max_tokens_per_doc is not None:
            doc_limit = min(doc_limit, max_tokens_per_doc)
        kept, counts = chunk_counts(documents.lengths, room, doc_limit, max_chunks_per_doc)
        chunks = int(counts.sum())
        if chunks > self.options.max_allowed_chunks:
            raise TooManyChunks(
                f"the documents split into {chunks} chunks of at most {room} tokens, more than the "
                f"{self.options.max_allowed_chunks} this model allows (max_allowed_chunks); send fewer or "
                "shorter documents or set max_chunks_per_doc",
                field="documents",
            )
        overhead = len(query) + self.info.pair_overhead
        self.check_request_tokens(int(kept.sum()) + chunks * overhead, "documents")
        segments = chunk_texts(documents, room, doc_limit, max_chunks_per_doc)
        return Job(pair_frame(self.info, query), segments, _checked_logits)

    def _outcome(
        self, job: Job, result: JobResult, documents: int, raw_scores: bool, tokenization: float
    ) -> RerankOutcome:
        per_document = max_per_owner(result.values, job.segments.owner, documents)
        return RerankOutcome(
            scores=per_document if raw_scores else sigmoid(per_document),
            prompt_tokens=job.total_tokens,
            chunks=job.rows,
            batches=result.batches,
            timings=self.timings(tokenization, result),
        )

    async def rerank(
        self,
        query: str,
        documents: list[str],
        *,
        raw_scores: bool = False,
        max_chunks_per_doc: int | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> RerankOutcome:
        tokens, seconds = await self._tokenize([query, *documents])
        job = self._job(tokens, max_chunks_per_doc, max_tokens_per_doc)
        return self._outcome(job, await self._run(job), len(documents), raw_scores, seconds)

    def rerank_blocking(
        self,
        query: str,
        documents: list[str],
        *,
        raw_scores: bool = False,
        max_chunks_per_doc: int | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> RerankOutcome:
        """The same on the calling thread (warm-up, corpus job, bare-model benchmark)."""
        tokens, seconds = self._tokenize_blocking([query, *documents])
        job = self._job(tokens, max_chunks_per_doc, max_tokens_per_doc)
        return self._outcome(job, self._run_blocking(job), len(documents), raw_scores, seconds)
