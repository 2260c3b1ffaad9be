"""The embeddings pipeline: tokenize once, frame single texts, batch, pool, normalize."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.errors import InputTooLong, InvalidRequest
from serving.pipelines.batching import BatchScheduler, BatchStats, Job, JobResult
from serving.pipelines.framing import EncodedBatch, Overflow, RaggedTokens, single_frame, whole_texts
from serving.pipelines.pooling import normalize, pool, post_pool
from serving.pipelines.prompts import choose_prompt, prompted
from serving.pipelines.run import BatchedPipeline, GroupCheck, RequestLimits, RequestTimings, finite_rows
from serving.pipelines.tokenize import Tokenizer
from serving.repository.config import EmbeddingsOptions
from serving.repository.layout import TokenizerInfo

# Token ids a client may send: the model's vocabulary is checked once the model is known.
MAX_TOKEN_ID = 2**31 - 1


@dataclass(frozen=True)
class EmbeddingsParams:
    """Every per-request option of an embeddings request: a route builds one from its request body
    and it goes whole through ModelService to EmbeddingsPipeline.embed (the corpus job builds one too)."""

    dimensions: int | None = None  # keep the first values (Matryoshka); None: all of them
    # One of the model's prompts, prepended to each input (serving/pipelines/prompts.py).
    prompt_name: str | None = None
    input_type: str | None = None
    overflow: Overflow | None = None  # cut long inputs on either side or refuse them; None: as exported
    max_tokens: int | None = None  # cut inputs to this many tokens (special tokens not counted)
    normalized: bool | None = None  # L2 or not; None: as exported

    def __post_init__(self) -> None:
        if self.overflow is Overflow.CHUNK:
            raise ValueError("embedders cut or refuse long inputs; they do not chunk them")


@dataclass(frozen=True)
class EmbeddingsOutcome:
    vectors: np.ndarray  # [inputs, dimensions] float32, in request order
    prompt_tokens: int  # special tokens included
    batches: list[BatchStats]
    timings: RequestTimings
    normalized: bool = True  # L2-normalized (the export's choice, or the request's)


class EmbeddingsPipeline(BatchedPipeline):
    def __init__(
        self,
        tokenizer: Tokenizer,
        scheduler: BatchScheduler,
        info: TokenizerInfo,
        limits: RequestLimits,
        options: EmbeddingsOptions,
        hidden_size: int,
        vocab_size: int | None,
        post_pooling: tuple[str, ...] = (),
    ) -> None:
        super().__init__(tokenizer, scheduler, info, limits)
        self.options = options
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        self.post_pooling = post_pooling  # ModelInfo.post_pooling: steps before normalization
        self._pooled = finite_rows(self._pool, "embeddings")

    def _pool(self, batch: EncodedBatch, output: np.ndarray) -> np.ndarray:
        return pool(output, batch.attention_mask, self.options.pooling)

    def _overflow(self, overflow: Overflow | None) -> Overflow:
        """The request's choice, else the export's (--truncate: cut on the right, else refuse)."""
        if overflow is not None:
            return overflow
        return Overflow.CUT_RIGHT if self.options.truncate else Overflow.REFUSE

    def _room(self, max_tokens: int | None) -> int:
        """Tokens of text (prompt included, special tokens not) an input may keep."""
        room = self.info.max_length - self.info.single_overhead
        return room if max_tokens is None else min(room, max_tokens)

    def _input_check(self, overflow: Overflow, room: int) -> GroupCheck:
        """A GroupCheck: inputs over `room` when they may not be cut, tokens over the request
        limit; raised as soon as a group of texts shows it."""
        seen_tokens = 0

        def check(group: RaggedTokens, offset: int) -> None:
            nonlocal seen_tokens
            lengths = group.lengths
            if overflow is not Overflow.REFUSE:
                lengths = np.minimum(lengths, room)
            else:
                too_long = np.flatnonzero(lengths > room)
                if len(too_long):
                    index = int(too_long[0])
                    framed = int(lengths[index]) + self.info.single_overhead
                    raise InputTooLong(
                        f"input {offset + index} has {framed} tokens (special tokens included), the limit "
                        f"is {room + self.info.single_overhead}; ask for truncation (or export the model "
                        "with --truncate) to cut it",
                        field="input",
                    )
            seen_tokens += int(lengths.sum()) + len(group) * self.info.single_overhead
            self.check_request_tokens(seen_tokens, "input")

        return check

    def _check_token_ids(self, token_ids: list[list[int]]) -> RaggedTokens:
        """Pre-tokenized inputs as RaggedTokens; every id must be in the model's vocabulary."""
        tokens = RaggedTokens.from_lists(token_ids)  # the schema bounds ids, so int64 holds them
        limit = self.vocab_size if self.vocab_size is not None else MAX_TOKEN_ID + 1
        outside = np.flatnonzero((tokens.ids < 0) | (tokens.ids >= limit))
        if len(outside):
            position = int(outside[0])
            item = int(np.searchsorted(tokens.offsets, position, side="right")) - 1
            raise InvalidRequest(
                f"item {item}: token id {int(tokens.ids[position])} is outside the vocabulary [0, {limit})",
                field="input",
            )
        return tokens

    def _check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is not None and dimensions > self.hidden_size:
            raise InvalidRequest(
                f"{dimensions} is more than the model's {self.hidden_size} dimensions", field="dimensions"
            )

    def _job(self, tokens: RaggedTokens, overflow: Overflow, room: int) -> Job:
        segments = whole_texts(tokens, room, keep_end=overflow is Overflow.CUT_LEFT)
        return Job(single_frame(self.info), segments, self._pooled)

    def _outcome(
        self, job: Job, result: JobResult, params: EmbeddingsParams, tokenization: float
    ) -> EmbeddingsOutcome:
        """Post-pooling steps, L2 (the request's choice, else the export's), then the first
        `dimensions` values (Matryoshka), renormalized."""
        vectors = post_pool(result.values, self.post_pooling)
        normalizing = params.normalized
        if normalizing is None:
            normalizing = self.options.normalize_embeddings
        if normalizing:
            vectors = normalize(vectors)
        if params.dimensions is not None:
            vectors = vectors[:, : params.dimensions]
            if normalizing:
                vectors = normalize(vectors)
        return EmbeddingsOutcome(
            vectors=vectors.astype(np.float32, copy=False),
            prompt_tokens=job.total_tokens,
            batches=result.batches,
            timings=self.timings(tokenization, result),
            normalized=normalizing,
        )

    async def embed(
        self, texts: list[str] | None, token_ids: list[list[int]] | None, params: EmbeddingsParams
    ) -> EmbeddingsOutcome:
        """Embed texts, or pre-tokenized inputs (ids without special tokens; they are added). A
        prompt is prepended to each text, or its tokens to each list of ids."""
        self._check_dimensions(params.dimensions)
        prompt = choose_prompt(self.info, params.prompt_name, params.input_type)
        overflow, room = self._overflow(params.overflow), self._room(params.max_tokens)
        if token_ids is not None:
            if prompt:
                prompt_ids = (await self.tokenizer.tokenize([prompt])).row(0).tolist()
                token_ids = [prompt_ids + list(ids) for ids in token_ids]
            tokens, seconds = self._check_token_ids(token_ids), 0.0
            self._input_check(overflow, room)(tokens, 0)
        else:
            texts = prompted(texts or [], prompt)
            tokens, seconds = await self._tokenize(texts, self._input_check(overflow, room))
        job = self._job(tokens, overflow, room)
        return self._outcome(job, await self._run(job), params, seconds)
