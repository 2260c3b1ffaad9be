"""Frame token ids into model inputs: special tokens, pairs, chunking, truncation, padding.

Pure numpy, no OpenVINO: the tokenizer IR gives ids WITHOUT special tokens (see
serving/repository/layout.py, TokenizerInfo) and everything here adds them back the way
the Hugging Face tokenizer does:

    single text:  single_prefix + text + single_suffix                  (token type 0)
    pair:         pair_prefix + query + pair_middle + document + pair_suffix
                  token types 0 up to and including pair_middle, then second_type_id

Every sequence is a *frame* (a constant head, a variable body, a constant tail) so one
vectorised routine builds padded batches for rerank pairs and for single texts alike.
Nothing loops in Python per document or per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from serving.repository.layout import TokenizerInfo

ID_DTYPE = np.int64


class Overflow(str, Enum):
    """What happens to a text with more tokens than the model takes (each API chooses)."""

    CHUNK = "chunk"  # rerank documents: split into chunks framed with the query; the best chunk scores
    CUT_RIGHT = "right"  # keep the first tokens (Hugging Face truncation; TEI "Right", Cohere "END")
    CUT_LEFT = "left"  # keep the last tokens (TEI "Left", Cohere "START")
    REFUSE = "refuse"  # the request fails (InputTooLong)


@dataclass(frozen=True)
class RaggedTokens:
    """Token ids of many texts, concatenated: text i is ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # 1-D, ID_DTYPE
    offsets: np.ndarray  # 1-D, len = number of texts + 1, starts at 0

    @classmethod
    def from_lengths(cls, ids: np.ndarray, lengths: np.ndarray) -> RaggedTokens:
        """`ids` holds the texts one after another; text i has lengths[i] of them."""
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(ids=ids.astype(ID_DTYPE, copy=False), offsets=offsets)

    @classmethod
    def from_lists(cls, rows: list[list[int]] | list[np.ndarray]) -> RaggedTokens:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        ids = (
            np.concatenate([np.asarray(r, dtype=ID_DTYPE) for r in rows])
            if rows and lengths.sum() > 0
            else np.zeros(0, dtype=ID_DTYPE)
        )
        return cls.from_lengths(ids, lengths)

    @classmethod
    def concatenate(cls, parts: list[RaggedTokens]) -> RaggedTokens:
        """The texts of every part, in order."""
        if len(parts) == 1:
            return parts[0]
        ids = np.concatenate([part.ids for part in parts]) if parts else np.zeros(0, dtype=ID_DTYPE)
        lengths = np.concatenate([part.lengths for part in parts]) if parts else np.zeros(0, dtype=np.int64)
        return cls.from_lengths(ids, lengths)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def strip(self, head: int, tail: int) -> RaggedTokens:
        """Every text without its first `head` and last `tail` ids (the special tokens a tokenizer IR
        that frames texts itself put there); a text shorter than that becomes empty."""
        if not head and not tail:
            return self
        lengths = self.lengths
        within = np.arange(len(self.ids), dtype=np.int64) - np.repeat(self.offsets[:-1], lengths)
        keep = (within >= head) & (within < np.repeat(lengths, lengths) - tail)
        return RaggedTokens.from_lengths(self.ids[keep], np.maximum(lengths - head - tail, 0))

    def tail(self, first: int) -> RaggedTokens:
        """The texts from index `first` on (e.g. the documents after the query)."""
        offsets = self.offsets[first:] - self.offsets[first]
        return RaggedTokens(ids=self.ids[self.offsets[first] : self.offsets[-1]], offsets=offsets)


@dataclass(frozen=True)
class Segments:
    """Spans of `source` that become sequence bodies: span k is source[starts[k]:starts[k] + lengths[k]].

    `owner[k]` is the index of the text the span came from (a document has several spans
    when it is chunked).
    """

    source: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    owner: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


@dataclass(frozen=True)
class Frame:
    """The constant parts around every body of one request."""

    head: np.ndarray  # e.g. [CLS] query [SEP]
    tail: np.ndarray  # e.g. [SEP]
    body_type_id: int  # token type of body and tail (head is type 0)

    @property
    def overhead(self) -> int:
        return len(self.head) + len(self.tail)


@dataclass(frozen=True)
class EncodedBatch:
    """Padded model inputs (right padding, like Hugging Face)."""

    input_ids: np.ndarray  # [rows, padded_len], int64
    attention_mask: np.ndarray  # [rows, padded_len], int64
    token_type_ids: np.ndarray  # [rows, padded_len], int64

    @property
    def shape(self) -> tuple[int, int]:
        return self.input_ids.shape

    def as_inputs(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


def pair_frame(info: TokenizerInfo, query_ids: np.ndarray) -> Frame:
    head = np.concatenate(
        [
            np.asarray(info.pair_prefix, dtype=ID_DTYPE),
            np.asarray(query_ids, dtype=ID_DTYPE),
            np.asarray(info.pair_middle, dtype=ID_DTYPE),
        ]
    )
    tail = np.asarray(info.pair_suffix, dtype=ID_DTYPE)
    return Frame(head=head, tail=tail, body_type_id=info.second_type_id)


def single_frame(info: TokenizerInfo) -> Frame:
    return Frame(
        head=np.asarray(info.single_prefix, dtype=ID_DTYPE),
        tail=np.asarray(info.single_suffix, dtype=ID_DTYPE),
        body_type_id=0,
    )


def whole_texts(texts: RaggedTokens, max_body: int | None = None, keep_end: bool = False) -> Segments:
    """One span per text, cut to `max_body` tokens when given (truncation keeps the frame): its first
    tokens, or its last ones with `keep_end`."""
    lengths = texts.lengths
    starts = texts.offsets[:-1].copy()
    if max_body is not None:
        kept = np.minimum(lengths, max_body)
        if keep_end:
            starts += lengths - kept
        lengths = kept
    return Segments(
        source=texts.ids,
        starts=starts,
        lengths=lengths,
        owner=np.arange(len(texts), dtype=np.int64),
    )


def chunk_counts(
    lengths: np.ndarray,
    chunk_size: int,
    max_tokens_per_text: int | None = None,
    max_chunks_per_text: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(tokens kept, chunks) of each text, from its length alone: nothing is allocated per chunk.

    A text is first cut to `max_tokens_per_text`, then split into chunks of at most `chunk_size`
    tokens, of which at most `max_chunks_per_text` are kept. An empty text still gives one chunk.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    kept = np.asarray(lengths, dtype=np.int64)
    if max_tokens_per_text is not None:
        kept = np.minimum(kept, max_tokens_per_text)
    counts = np.maximum(1, -(-kept // chunk_size))  # ceil, at least one span
    if max_chunks_per_text is not None:
        counts = np.minimum(counts, max_chunks_per_text)
        kept = np.minimum(kept, counts * chunk_size)
    return kept, counts


def chunk_texts(
    texts: RaggedTokens,
    chunk_size: int,
    max_tokens_per_text: int | None = None,
    max_chunks_per_text: int | None = None,
) -> Segments:
    """Split each text into consecutive spans of at most `chunk_size` tokens (see chunk_counts).

    Count with chunk_counts() and check limits first: this allocates a few integers per chunk.
    """
    lengths, counts = chunk_counts(texts.lengths, chunk_size, max_tokens_per_text, max_chunks_per_text)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
    # Index of each span within its text: 0, 1, ... restarting at every text.
    first_span = np.zeros(len(texts), dtype=np.int64)
    if len(texts):
        np.cumsum(counts[:-1], out=first_span[1:])
    position = np.arange(len(owner), dtype=np.int64) - first_span[owner]
    offset_in_text = position * chunk_size
    span_lengths = np.clip(lengths[owner] - offset_in_text, 0, chunk_size)
    return Segments(
        source=texts.ids,
        starts=texts.offsets[:-1][owner] + offset_in_text,
        lengths=span_lengths,
        owner=owner,
    )


def framed_lengths(frame: Frame, segments: Segments) -> np.ndarray:
    """Number of tokens of each framed sequence (specials included)."""
    return segments.lengths + frame.overhead


def build_batch(frame: Frame, segments: Segments, rows: np.ndarray, pad_token_id: int) -> EncodedBatch:
    """Padded input_ids / attention_mask / token_type_ids for the spans `rows` (any order)."""
    rows = np.asarray(rows, dtype=np.int64)
    body_lengths = segments.lengths[rows]
    head_len, tail_len = len(frame.head), len(frame.tail)
    max_body = int(body_lengths.max()) if len(rows) else 0
    padded_len = head_len + max_body + tail_len
    n = len(rows)

    input_ids = np.full((n, padded_len), pad_token_id, dtype=ID_DTYPE)
    input_ids[:, :head_len] = frame.head
    # Body: gather each row's span out of the flat source; positions past the span are pad.
    if max_body:
        column = np.arange(max_body, dtype=np.int64)
        in_body = column[None, :] < body_lengths[:, None]
        gather = np.where(in_body, segments.starts[rows][:, None] + column[None, :], 0)
        source = segments.source if len(segments.source) else np.zeros(1, dtype=ID_DTYPE)
        input_ids[:, head_len : head_len + max_body] = np.where(in_body, source[gather], pad_token_id)
    # Tail right after each row's body (rows end at different columns).
    row_index = np.arange(n)
    for k in range(tail_len):
        input_ids[row_index, head_len + body_lengths + k] = frame.tail[k]

    total = head_len + body_lengths + tail_len
    column = np.arange(padded_len, dtype=np.int64)
    attention_mask = (column[None, :] < total[:, None]).astype(ID_DTYPE)
    token_type_ids = np.zeros((n, padded_len), dtype=ID_DTYPE)
    if frame.body_type_id:
        token_type_ids[(column[None, :] >= head_len) & (attention_mask == 1)] = frame.body_type_id
    return EncodedBatch(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
