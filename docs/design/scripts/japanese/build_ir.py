"""Build the tokenizer IR of a BertJapaneseTokenizer model: split on " ", WordPiece, nothing else.

No normalization (the server did NFKC where transformers does), no case folding (the server
lowercased where the config says), no BERT pre-tokenizer (no CJK or punctuation splitting):
the server already produced the units; the IR only maps them to ids, so the vocabulary lives in
the IR as for every other model.

max_bytes_per_word: openvino-tokenizers' WordPiece counts UTF-8 BYTES (default 100), transformers
counts characters (max_input_chars_per_word = 100). The server replaces units over 100
characters with the unk token, and the IR gets 4 bytes per character of room, so its own limit
never bites first.
"""

from __future__ import annotations

from openvino_tokenizers.tokenizer_pipeline import (
    AddToken,
    CombineSegmentsStep,
    PaddingStep,
    RegexSplitStep,
    Sequence,
    TokenizerPipeline,
    VocabDecoderStep,
    WordPieceTokenizationStep,
)

import numpy as np
import openvino as ov
from openvino import opset13 as opset
from openvino.utils.types import make_constant_node
from openvino import op
from openvino_tokenizers.constants import TOKENIZER_NAME
from openvino_tokenizers import _get_opset_factory


def wordpiece_tries(vocab: list[str], suffix: str = "##") -> tuple[list[str], np.ndarray, str]:
    """The vocabulary as the WordpieceTokenizer op must see it to match transformers.

    The op files an entry starting with suffix_indicator ONLY under continuations (with the
    indicator stripped) and every other entry only under word starts. transformers' greedy
    WordPiece looks a word start up in the whole vocabulary, so "##" entries match there too
    (a MeCab/ipadic word "###" is one token "###" in transformers, "#" "###" "###" in the op
    with "##" as indicator). So: the op gets an indicator that no entry starts with (every
    original entry becomes a word-start entry, as in transformers), plus one appended
    "<indicator><body>" entry per "##<body>" entry for continuations; a Gather maps those back.
    """
    # The indicator is an attribute of the op, saved in the IR's XML: it must survive XML (no NUL,
    # no U+FFFF; a NUL indicator was read back as "" and made every word [UNK]). Plain ASCII.
    for indicator in ("<ovtext-continuation>", "<ovtext-continuation-2>", "<ovtext-continuation-3>"):
        if not any(token.startswith(indicator) for token in vocab):
            break
    else:
        raise ValueError("no free suffix indicator")
    continuations = [(index, token[len(suffix):]) for index, token in enumerate(vocab) if token.startswith(suffix) and len(token) > len(suffix)]
    ir_vocab = list(vocab) + [indicator + body for _, body in continuations]
    id_map = np.arange(len(ir_vocab), dtype=np.int32)
    id_map[len(vocab):] = [index for index, _ in continuations]
    return ir_vocab, id_map, indicator


def build_wordpiece_ir(
    vocab: list[str],
    unk_token: str = "[UNK]",
    pad_token_id: int = 0,
    max_input_chars_per_word: int = 100,
    add_special_tokens: tuple[int, int] | None = None,  # (cls_id, sep_id) to frame single texts
) -> ov.Model:
    ir_vocab, id_map, indicator = wordpiece_tries(vocab)
    pipeline = TokenizerPipeline()
    split = RegexSplitStep(split_pattern=" ", invert=False, behaviour="remove")
    wordpiece = WordPieceTokenizationStep(
        vocab=ir_vocab,
        unk_token=unk_token,
        suffix_indicator=indicator,
        max_bytes_per_word=4 * max_input_chars_per_word,
    )
    pipeline.add_steps([split, wordpiece])
    pipeline.vocab = vocab
    if add_special_tokens is None:
        inputs = [Sequence(token_type_id=0)]
    else:
        cls_id, sep_id = add_special_tokens
        inputs = [
            AddToken(token=vocab[cls_id], _token_id=cls_id, token_type_id=0),
            Sequence(token_type_id=0),
            AddToken(token=vocab[sep_id], _token_id=sep_id, token_type_id=0),
        ]
    combine = CombineSegmentsStep(inputs=inputs, add_special_tokens=True)
    padding = PaddingStep(token=vocab[pad_token_id], _token_id=pad_token_id)
    pipeline.add_steps([combine, padding])
    # TokenizerPipeline.get_tokenizer_ov_subgraph assumes a SpecialTokensSplit first (it drops the
    # last pre-tokenizer output, the "skips" that step adds), so the graph is wired here instead.
    text = op.Parameter(ov.Type.string, ov.PartialShape(["?"]))
    nodes = _get_opset_factory("opset15").create("StringTensorUnpack", text.outputs()).outputs()
    nodes = TokenizerPipeline.add_ragged_dimension(nodes)
    nodes = split.get_ov_subgraph(nodes)
    nodes = wordpiece.get_ov_subgraph(nodes)
    if len(ir_vocab) > len(vocab):  # continuation entries back to their own ids
        nodes = nodes[:2] + opset.gather(make_constant_node(id_map, ov.Type.i32), nodes[2], 0).outputs()
    nodes = combine.get_ov_subgraph(nodes)
    nodes = padding.get_ov_subgraph(nodes)
    return ov.Model(nodes, [text], TOKENIZER_NAME)


def build_detokenizer_ir(vocab: list[str]) -> ov.Model:  # not needed by ovtext; shows it is possible
    pipeline = TokenizerPipeline()
    pipeline.add_steps(VocabDecoderStep(vocab=vocab))
    return pipeline.get_detokenizer_ov_subgraph()
