"""The rerank pipeline: tokenize once, frame (query, document) pairs in chunks, batch, score."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from serving.errors import InputTooLong, TooManyChunks
from serving.pipelines.batching import BatchScheduler, BatchStats, Job, JobResult
from serving.pipelines.framing import (
    EncodedBatch,
    Overflow,
    RaggedTokens,
    Segments,
    chunk_counts,
    chunk_texts,
    pair_frame,
    whole_texts,
)
from serving.pipelines.prompts import pair_texts
from serving.pipelines.run import BatchedPipeline, RequestLimits, RequestTimings, finite_rows
from serving.pipelines.scoring import max_per_owner, relevance_logits, sigmoid
from serving.pipelines.tokenize import Tokenizer
from serving.repository.config import RerankOptions
from serving.repository.layout import TokenizerInfo


@dataclass(frozen=True)
class RerankParams:
    """Every per-request option of a rerank request: a route builds one from its request body and
    it goes whole through ModelService to RerankPipeline.rerank (the corpus job builds one too)."""

    raw_scores: bool = False  # the logit instead of sigmoid(logit)
    max_chunks_per_doc: int | None = None  # None: as many as the document needs
    max_tokens_per_doc: int | None = None  # document tokens scored; None: the graph's max_doc_length
    instruction: str | None = None  # for prompt-template rerankers; None: the model's default one
    overflow: Overflow = Overflow.CHUNK  # a document longer than fits beside the query


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


class ChunkBudget:
    """Counts a request's chunks and tokens group by group as it is tokenized (a GroupCheck) and
    refuses it as soon as it crosses max_allowed_chunks or --max_request_tokens: from lengths
    alone, before anything is allocated per chunk. Documents longer than fit are chunked, cut or
    refused as `overflow` says. `spent`: the (chunks, tokens) of the request's earlier queries."""

    def __init__(
        self,
        pipeline: RerankPipeline,
        texts: int,
        doc_limit: int,
        max_chunks_per_doc: int | None,
        overflow: Overflow = Overflow.CHUNK,
        spent: tuple[int, int] = (0, 0),
    ) -> None:
        self.pipeline = pipeline
        self.texts = texts  # query and documents
        self.doc_limit = doc_limit
        self.overflow = overflow
        self.max_chunks_per_doc = max_chunks_per_doc if overflow is Overflow.CHUNK else 1
        self.room = 0  # document tokens per chunk, known once the query is tokenized
        self.overhead = 0  # query and special tokens repeated in every chunk
        self.chunks, self.tokens = spent

    def __call__(self, group: RaggedTokens, first: int) -> None:
        info = self.pipeline.info
        documents = group
        if first == 0:
            query_length = len(group.row(0))
            self.overhead = query_length + info.pair_overhead
            self.room = info.max_length - self.overhead
            if self.room < 1:
                raise InputTooLong(
                    f"the query has {query_length} tokens; with {info.pair_overhead} special tokens "
                    f"that leaves no room for a document in the model's {info.max_length}-token limit",
                    field="query",
                )
            documents = group.tail(1)
        if self.overflow is Overflow.REFUSE:
            self._refuse_long(documents, max(first - 1, 0))
        kept, counts = chunk_counts(documents.lengths, self.room, self.doc_limit, self.max_chunks_per_doc)
        self.chunks += int(counts.sum())
        self.tokens += int(kept.sum()) + int(counts.sum()) * self.overhead
        allowed = self.pipeline.options.max_allowed_chunks
        if self.chunks > allowed:
            counted = "" if first + len(group) == self.texts else "at least "
            raise TooManyChunks(
                f"the documents split into {counted}{self.chunks} chunks of at most {self.room} tokens, "
                f"more than the {allowed} this model allows (max_allowed_chunks); send fewer or shorter "
                "documents or set max_chunks_per_doc",
                field="documents",
            )
        self.pipeline.check_request_tokens(self.tokens, "documents")

    def _refuse_long(self, documents: RaggedTokens, first_document: int) -> None:
        too_long = np.flatnonzero(documents.lengths > self.room)
        if len(too_long):
            index = int(too_long[0])
            tokens = int(documents.lengths[index]) + self.overhead
            raise InputTooLong(
                f"item {first_document + index} with the query has {tokens} tokens (special tokens "
                f"included), more than the model's {self.pipeline.info.max_length}; ask for truncation "
                "to cut it",
                field="documents",
            )

    def segments(self, documents: RaggedTokens) -> Segments:
        """The spans of the documents the model scores (every limit was checked while tokenizing)."""
        if self.overflow is Overflow.CHUNK:
            return chunk_texts(documents, self.room, self.doc_limit, self.max_chunks_per_doc)
        body = min(self.room, self.doc_limit)
        return whole_texts(documents, body, keep_end=self.overflow is Overflow.CUT_LEFT)


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

    def _budget(self, documents: int, params: RerankParams, spent: tuple[int, int] = (0, 0)) -> ChunkBudget:
        doc_limit = self.options.max_doc_length
        if params.max_tokens_per_doc is not None:
            doc_limit = min(doc_limit, params.max_tokens_per_doc)
        return ChunkBudget(self, documents + 1, doc_limit, params.max_chunks_per_doc, params.overflow, spent)

    def _job(self, tokens: RaggedTokens, budget: ChunkBudget) -> Job:
        """The request's rows; every limit was checked by `budget` while tokenizing."""
        return Job(pair_frame(self.info, tokens.row(0)), budget.segments(tokens.tail(1)), _checked_logits)

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

    async def rerank(self, query: str, documents: list[str], params: RerankParams) -> RerankOutcome:
        budget = self._budget(len(documents), params)
        texts = pair_texts(self.info, query, documents, params.instruction)
        tokens, seconds = await self._tokenize(texts, budget)
        job = self._job(tokens, budget)
        return self._outcome(job, await self._run(job), len(documents), params.raw_scores, seconds)

    async def rerank_groups(self, groups: list[tuple[str, list[str]]], params: RerankParams) -> RerankOutcome:
        """Several queries, each with its documents, as one request: every group is tokenized first,
        under one budget (max_allowed_chunks and --max_request_tokens count the whole request), then
        all run at once, sharing batches. Scores come in group order, each group's in its order."""
        jobs: list[tuple[Job, int]] = []
        spent, seconds = (0, 0), 0.0
        for query, documents in groups:
            budget = self._budget(len(documents), params, spent)
            texts = pair_texts(self.info, query, documents, params.instruction)
            tokens, took = await self._tokenize(texts, budget)
            jobs.append((self._job(tokens, budget), len(documents)))
            spent, seconds = (budget.chunks, budget.tokens), seconds + took
        tasks = [asyncio.ensure_future(self._run(job)) for job, _ in jobs]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one failure drops the request's other batches too
                task.cancel()
            raise
        outcomes = [
            self._outcome(job, result, count, params.raw_scores, 0.0)
            for (job, count), result in zip(jobs, results, strict=True)
        ]
        queued = min(o.timings.queue for o in outcomes)
        done = max(o.timings.queue + o.timings.inference for o in outcomes)
        return RerankOutcome(
            scores=np.concatenate([o.scores for o in outcomes]),
            prompt_tokens=sum(o.prompt_tokens for o in outcomes),
            chunks=sum(o.chunks for o in outcomes),
            batches=[batch for o in outcomes for batch in o.batches],
            timings=RequestTimings(seconds, queued, done - queued),
        )
