"""The exported tokenizer IR + the recorded framing reproduce the Hugging Face tokenizer exactly.

The IR has no special tokens; the server frames its output with TokenizerInfo
(serving/pipelines/framing.py). These tests run that same framing code on the IR's output
and compare input_ids, attention_mask and token_type_ids with the Hugging Face tokenizer,
for a WordPiece (BERT) and a Unigram/Metaspace (XLM-R style) tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import openvino as ov
import pytest
from transformers import AutoTokenizer

from export_models.convert_tokenizer import tokenize_with_ir
from serving.pipelines.framing import (
    RaggedTokens,
    build_batch,
    chunk_texts,
    pair_frame,
    single_frame,
    whole_texts,
)
from serving.repository.layout import TokenizerInfo
from tests.support.exports import Exported

pytestmark = pytest.mark.exports(("cross-encoder", "fp32"), ("xlmr", "fp32"), ("minilm", "fp32"))

SINGLE_TEXTS = [
    "what is a panda?",
    "The giant panda is a bear species endemic to China.",
    "パンダは中国の山に住んでいます。",  # Japanese
    "熊猫是中国特有的熊科动物。",  # Chinese
    "Crème brûlée à la française, naïve café, Straße, Ångström, tiếng Việt",  # accented
    "emoji 😀🐼🎉 👩‍💻 🇯🇵 ❤️",
    "",
    "   ",
    "runs  of   spaces ",
    "Mixed: 東京 café 😀 123,456.78!",
    "ＦＵＬＬ－ＷＩＤＴＨ ｶﾀｶﾅ",  # NFKC-normalized forms
    "UPPER lower MiXeD\ttab\nnewline",
]
QUERIES = ["what is a panda?", "パンダ", "", "café 😀"]
DOCUMENTS = SINGLE_TEXTS
LONG_TEXT = " ".join(["The panda eats bamboo; 熊猫吃竹子; パンダ; café 😀."] * 80)

# (kind of fixture model, tokenizer family)
TOKENIZERS = [pytest.param("cross-encoder", id="bert-wordpiece"), pytest.param("xlmr", id="xlmr-unigram")]


class IrTokenizer:
    """The exported tokenizer IR as the server uses it: ids without specials, framed by TokenizerInfo."""

    def __init__(self, exported: Exported) -> None:
        self.info: TokenizerInfo = exported.tokenizer_info()
        self.compiled = ov.Core().compile_model(exported.tokenizer_xml, "CPU")

    def ids(self, texts: list[str]) -> RaggedTokens:
        # One call for the whole batch, as the server does (the IR pads; attention_mask unpads).
        return RaggedTokens.from_lists(tokenize_with_ir(self.compiled, texts))


@pytest.fixture(scope="module", params=TOKENIZERS)
def tokenizers(request: pytest.FixtureRequest, exported: Callable[..., Exported]):
    export = exported(request.param)
    return IrTokenizer(export), AutoTokenizer.from_pretrained(export.source)


def assert_same_encoding(batch, expected) -> None:
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        got = getattr(batch, key).tolist()
        assert got == expected[key], f"{key} differs:\n IR+framing {got}\n HF         {expected[key]}"


def test_ir_ids_without_specials_match_hf(tokenizers) -> None:
    ir, hf = tokenizers
    got = ir.ids([*SINGLE_TEXTS, LONG_TEXT])
    expected = hf([*SINGLE_TEXTS, LONG_TEXT], add_special_tokens=False)["input_ids"]
    assert [got.row(i).tolist() for i in range(len(got))] == expected


def test_single_texts_framed_and_padded_like_hf(tokenizers) -> None:
    ir, hf = tokenizers
    texts = ir.ids(SINGLE_TEXTS)
    batch = build_batch(
        single_frame(ir.info), whole_texts(texts), np.arange(len(texts)), ir.info.pad_token_id
    )
    expected = hf(SINGLE_TEXTS, padding=True, return_token_type_ids=True)
    assert_same_encoding(batch, expected)


@pytest.mark.parametrize("query", QUERIES)
def test_pairs_framed_and_padded_like_hf(tokenizers, query: str) -> None:
    ir, hf = tokenizers
    query_ids = ir.ids([query]).row(0)
    documents = ir.ids(DOCUMENTS)
    batch = build_batch(
        pair_frame(ir.info, query_ids),
        whole_texts(documents),
        np.arange(len(documents)),
        ir.info.pad_token_id,
    )
    expected = hf([query] * len(DOCUMENTS), DOCUMENTS, padding=True, return_token_type_ids=True)
    assert_same_encoding(batch, expected)


def test_long_single_text_truncates_like_hf(tokenizers) -> None:
    ir, hf = tokenizers
    info = ir.info
    text = ir.ids([LONG_TEXT])
    assert text.lengths[0] > info.max_length  # the test text really is over the limit
    segments = whole_texts(text, max_body=info.max_length - info.single_overhead)
    batch = build_batch(single_frame(info), segments, np.arange(1), info.pad_token_id)
    expected = hf([LONG_TEXT], truncation=True, max_length=info.max_length, return_token_type_ids=True)
    assert batch.input_ids.shape[1] == info.max_length
    assert_same_encoding(batch, expected)


def test_long_document_chunks_like_hf_overflow(tokenizers) -> None:
    """First chunk == HF truncation='only_second'; the others == HF's overflowing windows (stride 0)."""
    ir, hf = tokenizers
    info = ir.info
    query = "what is a panda?"
    query_ids = ir.ids([query]).row(0)
    document = ir.ids([LONG_TEXT])
    chunk_size = info.max_length - len(query_ids) - info.pair_overhead
    segments = chunk_texts(document, chunk_size)
    batch = build_batch(pair_frame(info, query_ids), segments, np.arange(len(segments)), info.pad_token_id)
    first = hf(
        query, LONG_TEXT, truncation="only_second", max_length=info.max_length, return_token_type_ids=True
    )
    assert batch.input_ids[0].tolist() == first["input_ids"]
    assert batch.token_type_ids[0].tolist() == first["token_type_ids"]
    windows = hf(
        [query],
        [LONG_TEXT],
        truncation="only_second",
        max_length=info.max_length,
        stride=0,
        return_overflowing_tokens=True,
        padding=True,
        return_token_type_ids=True,
    )
    assert len(segments) == len(windows["input_ids"]) > 2
    assert batch.input_ids.tolist() == windows["input_ids"]
    assert batch.attention_mask.tolist() == windows["attention_mask"]
    if info.second_type_id:
        # Only checked where the second segment has its own type: for an all-zero pair template
        # (XLM-R) Hugging Face marks overflow windows after the first with type 1, which XLM-R
        # models (type_vocab_size 1) never see; the first window above is checked for every model.
        assert batch.token_type_ids.tolist() == windows["token_type_ids"]


def test_framing_ids_come_from_the_tokenizer_not_a_table(tokenizers) -> None:
    """Recorded specials are the tokenizer's own: BERT [CLS] q [SEP] d [SEP]; XLM-R <s> q </s></s> d </s>."""
    ir, hf = tokenizers
    info = ir.info
    assert info.pair_prefix == [hf.cls_token_id]
    assert info.pair_suffix == [hf.sep_token_id]
    assert info.single_prefix == [hf.cls_token_id] and info.single_suffix == [hf.sep_token_id]
    assert info.pad_token_id == hf.pad_token_id
    assert info.special_tokens["pad"] == hf.pad_token_id
    if hf.cls_token == "[CLS]":  # WordPiece / BERT
        assert info.pair_middle == [hf.sep_token_id] and info.second_type_id == 1
    else:  # XLM-R
        assert info.pair_middle == [hf.sep_token_id, hf.sep_token_id] and info.second_type_id == 0


def test_max_length_follows_positions_and_tokenizer_limit(exported: Callable[..., Exported]) -> None:
    # XLM-R positions start at padding_idx + 1 = 2: 130 positions leave 128 tokens.
    assert exported("xlmr").tokenizer_info().max_length == 128
    # BERT: min(model_max_length 512, max_position_embeddings 512).
    assert exported("cross-encoder").tokenizer_info().max_length == 512
    # Embedders: sentence-transformers' max_seq_length (256 for all-MiniLM-L6-v2).
    assert exported("minilm").tokenizer_info().max_length == 256
