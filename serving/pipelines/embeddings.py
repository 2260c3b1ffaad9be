"""The embeddings pipeline: tokenize once, frame single texts, infer, pool, normalize."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.errors import InputTooLong, InvalidRequest
from serving.pipelines.batching import BatchPolicy, BatchStats
from serving.pipelines.framing import (
    EncodedBatch,
    RaggedTokens,
    Segments,
    framed_lengths,
    single_frame,
    whole_texts,
)
from serving.pipelines.inference import InferenceBackend
from serving.pipelines.pooling import normalize, pool, post_pool
from serving.pipelines.prompts import choose_prompt, prompted
from serving.pipelines.run import BatchedPipeline
from serving.pipelines.scoring import require_finite
from serving.pipelines.tokenize import Tokenizer
from serving.repository.config import EmbeddingsOptions
from serving.repository.layout import TokenizerInfo


@dataclass(frozen=True)
class EmbeddingsOutcome:
    vectors: np.ndarray  # [inputs, dimensions] float32, in request order
    prompt_tokens: int  # special tokens included
    batches: list[BatchStats]


class EmbeddingsPipeline(BatchedPipeline):
    def __init__(
        self,
        tokenizer: Tokenizer,
        backend: InferenceBackend,
        info: TokenizerInfo,
        options: EmbeddingsOptions,
        batching: BatchPolicy,
        hidden_size: int,
        vocab_size: int | None,
        post_pooling: tuple[str, ...] = (),
    ) -> None:
        super().__init__(tokenizer, backend, info, batching)
        self.options = options
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        self.post_pooling = post_pooling  # ModelInfo.post_pooling: steps before normalization

    def _pool(self, batch: EncodedBatch, output: np.ndarray) -> np.ndarray:
        return pool(output, batch.attention_mask, self.options.pooling)

    def _segments(self, tokens: RaggedTokens) -> Segments:
        room = self.info.max_length - self.info.single_overhead
        if self.options.truncate:
            return whole_texts(tokens, max_body=room)
        too_long = np.flatnonzero(tokens.lengths > room)
        if len(too_long):
            first = int(too_long[0])
            length = int(tokens.lengths[first]) + self.info.single_overhead
            raise InputTooLong(
                f"{len(too_long)} input(s) are longer than the model takes: input {first} has "
                f"{length} tokens (special tokens included), the limit is {self.info.max_length}; "
                "this model was exported without --truncate",
                field="input",
            )
        return whole_texts(tokens)

    def _check_token_ids(self, tokens: RaggedTokens) -> None:
        if not len(tokens.ids):
            return
        low, high = int(tokens.ids.min()), int(tokens.ids.max())
        limit = self.vocab_size if self.vocab_size is not None else 2**31
        if low < 0 or high >= limit:
            bad = low if low < 0 else high
            raise InvalidRequest(f"token id {bad} is outside the vocabulary [0, {limit})", field="input")

    def _finish(self, pooled: np.ndarray, dimensions: int | None) -> np.ndarray:
        """Post-pooling steps, L2, then the first `dimensions` values (Matryoshka), renormalized."""
        pooled = require_finite(post_pool(pooled, self.post_pooling))
        vectors = normalize(pooled) if self.options.normalize_embeddings else pooled
        if dimensions is not None:
            if dimensions > vectors.shape[1]:
                raise InvalidRequest(
                    f"{dimensions} is more than the model's {vectors.shape[1]} dimensions", field="dimensions"
                )
            vectors = vectors[:, :dimensions]
            if self.options.normalize_embeddings:
                vectors = normalize(vectors)
        return vectors.astype(np.float32, copy=False)

    async def embed(
        self,
        texts: list[str] | None = None,
        token_ids: list[list[int]] | None = None,
        dimensions: int | None = None,
        prompt_name: str | None = None,
        input_type: str | None = None,
    ) -> EmbeddingsOutcome:
        """Embed texts, or pre-tokenized inputs (ids without special tokens; they are added).

        prompt_name / input_type choose one of the model's prompts (serving/pipelines/prompts.py);
        it is prepended to each text, or its tokens to each list of ids.
        """
        if dimensions is not None and dimensions > self.hidden_size:
            raise InvalidRequest(
                f"{dimensions} is more than the model's {self.hidden_size} dimensions", field="dimensions"
            )
        prompt = choose_prompt(self.info, prompt_name, input_type)
        if token_ids is not None:
            tokens = RaggedTokens.from_lists(token_ids)
            self._check_token_ids(tokens)
            if prompt:
                prompt_ids = (await self.tokenizer.tokenize([prompt])).row(0).tolist()
                tokens = RaggedTokens.from_lists([prompt_ids + list(ids) for ids in token_ids])
        else:
            tokens = await self.tokenizer.tokenize(prompted(texts or [], prompt))
        segments = self._segments(tokens)
        frame = single_frame(self.info)
        pooled, stats = await self.run_batches(frame, segments, self._pool)
        return EmbeddingsOutcome(
            vectors=self._finish(pooled, dimensions),
            prompt_tokens=int(framed_lengths(frame, segments).sum()),
            batches=stats,
        )

    def embed_blocking(self, texts: list[str]) -> np.ndarray:
        """Embeddings on the calling thread: the load-time warm-up and check."""
        segments = self._segments(self.tokenizer.tokenize_blocking(texts))
        pooled = self.run_batches_blocking(single_frame(self.info), segments, self._pool)
        return self._finish(pooled, None)
