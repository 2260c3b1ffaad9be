"""The rerank pipeline: tokenize once, frame (query, document) pairs in chunks, infer, score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.errors import InputTooLong, TooManyChunks
from serving.pipelines.batching import BatchPolicy, BatchStats
from serving.pipelines.framing import (
    EncodedBatch,
    Frame,
    RaggedTokens,
    Segments,
    chunk_texts,
    framed_lengths,
    pair_frame,
)
from serving.pipelines.inference import InferenceBackend
from serving.pipelines.prompts import pair_texts
from serving.pipelines.run import BatchedPipeline
from serving.pipelines.scoring import max_per_owner, relevance_logits, require_finite, sigmoid
from serving.pipelines.tokenize import Tokenizer
from serving.repository.config import RerankOptions
from serving.repository.layout import TokenizerInfo


@dataclass(frozen=True)
class RerankOutcome:
    scores: np.ndarray  # one per document, in request order: sigmoid(logit), or the logit when raw
    prompt_tokens: int  # tokens fed to the model, special tokens and the repeated query included
    chunks: int
    batches: list[BatchStats]


def _logits_per_row(batch: EncodedBatch, output: np.ndarray) -> np.ndarray:
    return relevance_logits(output)


class RerankPipeline(BatchedPipeline):
    def __init__(
        self,
        tokenizer: Tokenizer,
        backend: InferenceBackend,
        info: TokenizerInfo,
        options: RerankOptions,
        batching: BatchPolicy,
    ) -> None:
        super().__init__(tokenizer, backend, info, batching)
        self.options = options

    def _plan(
        self, tokens: RaggedTokens, max_chunks_per_doc: int | None, max_tokens_per_doc: int | None
    ) -> tuple[Frame, Segments]:
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
        segments = chunk_texts(documents, room, doc_limit, max_chunks_per_doc)
        if len(segments) > self.options.max_allowed_chunks:
            raise TooManyChunks(
                f"the documents split into {len(segments)} chunks of at most {room} tokens, more than the "
                f"{self.options.max_allowed_chunks} this model allows (max_allowed_chunks); send fewer or "
                "shorter documents or set max_chunks_per_doc",
                field="documents",
            )
        return pair_frame(self.info, query), segments

    async def rerank(
        self,
        query: str,
        documents: list[str],
        *,
        raw_scores: bool = False,
        max_chunks_per_doc: int | None = None,
        max_tokens_per_doc: int | None = None,
        instruction: str | None = None,
    ) -> RerankOutcome:
        """instruction: for prompt-template rerankers (None: the model's default one)."""
        tokens = await self.tokenizer.tokenize(pair_texts(self.info, query, documents, instruction))
        frame, segments = self._plan(tokens, max_chunks_per_doc, max_tokens_per_doc)
        logits, stats = await self.run_batches(frame, segments, _logits_per_row)
        per_document = require_finite(max_per_owner(logits, segments.owner, len(documents)))
        return RerankOutcome(
            scores=per_document if raw_scores else sigmoid(per_document),
            prompt_tokens=int(framed_lengths(frame, segments).sum()),
            chunks=len(segments),
            batches=stats,
        )

    def rerank_blocking(self, query: str, documents: list[str]) -> np.ndarray:
        """Sigmoid scores on the calling thread: the load-time warm-up and check."""
        tokens = self.tokenizer.tokenize_blocking(pair_texts(self.info, query, documents, None))
        frame, segments = self._plan(tokens, None, None)
        logits = self.run_batches_blocking(frame, segments, _logits_per_row)
        return sigmoid(max_per_owner(logits, segments.owner, len(documents)))
