"""Framing and chunking arithmetic (serving/pipelines/framing.py), on hand-made token ids.

The expected values are worked out in the comments from the rules in the module's docstring, not
read back from the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from serving.pipelines.framing import (
    Frame,
    RaggedTokens,
    build_batch,
    chunk_counts,
    chunk_texts,
    framed_lengths,
    pair_frame,
    single_frame,
    whole_texts,
)
from serving.repository.layout import TokenizerInfo

# BERT: [CLS] = 101, [SEP] = 102, pad 0; the document's tokens are of type 1.
BERT = TokenizerInfo(
    max_length=512,
    pad_token_id=0,
    single_prefix=[101],
    single_suffix=[102],
    pair_prefix=[101],
    pair_middle=[102],
    pair_suffix=[102],
    second_type_id=1,
)
# XLM-R (bge-reranker): <s> = 0, </s> = 2, pad 1; every token of type 0.
XLMR = TokenizerInfo(
    max_length=512,
    pad_token_id=1,
    single_prefix=[0],
    single_suffix=[2],
    pair_prefix=[0],
    pair_middle=[2, 2],
    pair_suffix=[2],
    second_type_id=0,
)
# Three texts: seven tokens, none, two.
TEXTS = RaggedTokens.from_lists([[11, 12, 13, 14, 15, 16, 17], [], [21, 22]])


def test_ragged_tokens_keep_each_text_apart():
    assert TEXTS.offsets.tolist() == [0, 7, 7, 9]
    assert TEXTS.lengths.tolist() == [7, 0, 2]
    assert TEXTS.row(2).tolist() == [21, 22]
    assert TEXTS.tail(1).lengths.tolist() == [0, 2]
    assert TEXTS.tail(1).row(1).tolist() == [21, 22]
    joined = RaggedTokens.concatenate([TEXTS, RaggedTokens.from_lists([[31]])])
    assert joined.lengths.tolist() == [7, 0, 2, 1]
    assert joined.row(3).tolist() == [31]


def test_strip_takes_the_specials_off_each_text():
    framed = RaggedTokens.from_lists([[101, 5, 6, 102], [101, 102], [101]])
    stripped = framed.strip(1, 1)
    assert stripped.lengths.tolist() == [2, 0, 0]  # a text shorter than head + tail becomes empty
    assert stripped.row(0).tolist() == [5, 6]


@pytest.mark.parametrize(
    ("limits", "kept", "counts"),
    [
        # chunks of 5: 0 -> 1 (an empty text still gives one), 1 -> 1, 5 -> 1, 6 -> 2, 13 -> 3
        ({}, [0, 1, 5, 6, 13], [1, 1, 1, 2, 3]),
        # cut to 10 tokens first: 13 -> 10 -> 2 chunks
        ({"max_tokens_per_text": 10}, [0, 1, 5, 6, 10], [1, 1, 1, 2, 2]),
        # at most 2 chunks: 13 tokens keep 2 x 5 = 10
        ({"max_chunks_per_text": 2}, [0, 1, 5, 6, 10], [1, 1, 1, 2, 2]),
        # both: 13 -> 12 tokens -> 3 chunks -> 1 chunk of 5
        ({"max_tokens_per_text": 12, "max_chunks_per_text": 1}, [0, 1, 5, 5, 5], [1, 1, 1, 1, 1]),
    ],
)
def test_chunk_counts(limits, kept, counts):
    got_kept, got_counts = chunk_counts(np.array([0, 1, 5, 6, 13]), 5, **limits)
    assert got_kept.tolist() == kept
    assert got_counts.tolist() == counts


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_counts(np.array([3]), 0)


def test_chunk_texts_splits_into_consecutive_spans():
    # Chunks of 3: the first text (ids 0..6 of the source) gives spans 0-2, 3-5, 6; the empty one a
    # span of 0 at its offset 7; the third (ids 7..8) one span of 2 at 7.
    segments = chunk_texts(TEXTS, 3)
    assert segments.owner.tolist() == [0, 0, 0, 1, 2]
    assert segments.starts.tolist() == [0, 3, 6, 7, 7]
    assert segments.lengths.tolist() == [3, 3, 1, 0, 2]


def test_chunk_texts_honours_the_chunk_limit():
    segments = chunk_texts(TEXTS, 3, max_chunks_per_text=2)  # the first text keeps 2 x 3 tokens
    assert segments.owner.tolist() == [0, 0, 1, 2]
    assert segments.starts.tolist() == [0, 3, 7, 7]
    assert segments.lengths.tolist() == [3, 3, 0, 2]


def test_whole_texts_cut_from_either_end():
    right = whole_texts(TEXTS, max_body=4)
    assert right.starts.tolist() == [0, 7, 7] and right.lengths.tolist() == [4, 0, 2]
    left = whole_texts(TEXTS, max_body=4, keep_end=True)  # the last four of seven start at 3
    assert left.starts.tolist() == [3, 7, 7] and left.lengths.tolist() == [4, 0, 2]
    assert whole_texts(TEXTS).lengths.tolist() == [7, 0, 2]
    assert whole_texts(TEXTS).owner.tolist() == [0, 1, 2]


def test_pair_frames_of_bert_and_xlmr():
    bert = pair_frame(BERT, np.array([7, 8]))
    assert bert.head.tolist() == [101, 7, 8, 102] and bert.tail.tolist() == [102]
    assert bert.overhead == 5 and bert.body_type_id == 1
    xlmr = pair_frame(XLMR, np.array([7, 8]))
    assert xlmr.head.tolist() == [0, 7, 8, 2, 2] and xlmr.tail.tolist() == [2]
    assert xlmr.overhead == 6 and xlmr.body_type_id == 0
    single = single_frame(BERT)
    assert single.head.tolist() == [101] and single.tail.tolist() == [102] and single.overhead == 2


def test_framed_lengths_add_the_frame():
    frame = pair_frame(BERT, np.array([7, 8]))  # 5 tokens around every body
    assert framed_lengths(frame, chunk_texts(TEXTS, 3)).tolist() == [8, 8, 6, 5, 7]


def test_build_batch_pads_right_and_types_the_second_text():
    frame = pair_frame(BERT, np.array([7]))
    segments = whole_texts(RaggedTokens.from_lists([[11, 12, 13], [21]]))
    batch = build_batch(frame, segments, np.array([1, 0]), pad_token_id=0)  # rows in any order
    assert batch.input_ids.tolist() == [
        [101, 7, 102, 21, 102, 0, 0],
        [101, 7, 102, 11, 12, 13, 102],
    ]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]
    assert batch.token_type_ids.tolist() == [[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 1]]


def test_build_batch_of_an_empty_body():
    frame = Frame(head=np.array([0]), tail=np.array([2]), body_type_id=0)
    batch = build_batch(frame, whole_texts(RaggedTokens.from_lists([[]])), np.array([0]), pad_token_id=1)
    assert batch.input_ids.tolist() == [[0, 2]]
    assert batch.attention_mask.tolist() == [[1, 1]]


def test_xlmr_pairs_and_single_texts_as_hugging_face_frames_them():
    # <s> query </s></s> document </s>, every token of type 0; the shorter row padded with 1.
    pairs = whole_texts(RaggedTokens.from_lists([[9], [9, 10]]))
    batch = build_batch(pair_frame(XLMR, np.array([7, 8])), pairs, np.array([0, 1]), XLMR.pad_token_id)
    assert batch.input_ids.tolist() == [[0, 7, 8, 2, 2, 9, 2, 1], [0, 7, 8, 2, 2, 9, 10, 2]]
    assert batch.token_type_ids.tolist() == [[0] * 8, [0] * 8]
    single = build_batch(single_frame(BERT), whole_texts(RaggedTokens.from_lists([[5, 6]])), np.array([0]), 0)
    assert single.input_ids.tolist() == [[101, 5, 6, 102]]
    assert single.token_type_ids.tolist() == [[0, 0, 0, 0]]
