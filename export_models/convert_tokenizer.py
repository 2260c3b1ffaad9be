"""Step: convert the tokenizer to an OpenVINO IR and derive how the server frames its output.

The IR is converted without truncation; a reranker's WITHOUT special tokens
(convert_tokenizer(hf, add_special_tokens=False)), as OpenVINO Model Server's rerank
calculators expect, an embedder's with them, as its embeddings calculators expect. The server
takes off what the IR adds, tokenizes a query and all its documents in one call and adds the
specials itself. Which specials go where is not hard-coded per model family: it is read off
the Hugging Face tokenizer by encoding a probe pair with and without special tokens and
locating the two texts in the framed result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from export_models.errors import TokenizerConversionError
from export_models.source import ResolvedSource
from serving.repository.layout import TokenizerInfo

if TYPE_CHECKING:
    import openvino as ov
    from transformers import PreTrainedTokenizerBase

# Probe texts: plain ASCII words that every vocabulary can spell, different enough that the
# query's tokens cannot be mistaken for the document's.
PROBE_QUERY = "what is a panda?"
PROBE_DOCUMENT = "The giant panda is a bear species endemic to China."

# Texts the converted IR must tokenize exactly like the Hugging Face tokenizer.
SELF_CHECK_TEXTS = (
    PROBE_QUERY,
    PROBE_DOCUMENT,
    "",
    "Hello, World! 123",
    "café naïve Straße",
    "熊猫吃竹子",
    "パンダは中国に住んでいます",
    "emoji 😀🐼 ok",
    "runs  of   spaces ",
)

# Tokenizers without a sensible model_max_length report this huge sentinel (transformers' VERY_LARGE_INTEGER).
_UNBOUNDED = 10**12

SPECIAL_TOKEN_ROLES = ("bos", "eos", "cls", "sep", "pad", "unk", "mask")


def load_hf_tokenizer(source: ResolvedSource, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source.path, trust_remote_code=trust_remote_code)
    except Exception as error:  # transformers raises many types for a broken/missing tokenizer
        raise TokenizerConversionError(
            f"cannot load the tokenizer of {source.recorded}: {' '.join(str(error).split())[:300]}"
        ) from error


def _find(haystack: Sequence[int], needle: Sequence[int], start: int = 0) -> int:
    """First index >= start where needle occurs in haystack, else -1."""
    n = len(needle)
    for i in range(start, len(haystack) - n + 1):
        if list(haystack[i : i + n]) == list(needle):
            return i
    return -1


def position_offset(source: ResolvedSource, trust_remote_code: bool = False) -> int:
    """How many position ids a model reserves before the first token (XLM-R/RoBERTa: padding_idx + 1).

    Read off the model's own position embedding (built on the meta device: no weights loaded),
    so no per-family table is needed.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        config = AutoConfig.from_pretrained(source.path, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(
                config, trust_remote_code=trust_remote_code
            )
    except Exception:  # models without a classification head class: absolute positions from 0
        return 0
    for name, module in model.named_modules():
        if name.endswith("position_embeddings") and isinstance(module, torch.nn.Embedding):
            return module.padding_idx + 1 if module.padding_idx is not None else 0
    return 0


def max_sequence_length(
    tokenizer: PreTrainedTokenizerBase,
    config: dict[str, Any],
    offset: int,
    sentence_transformers_limit: int | None,
) -> int:
    """Most tokens one framed sequence may have.

    sentence-transformers' max_seq_length when the model has one (embedders), else
    tokenizer.model_max_length; either way at most max_position_embeddings - position offset
    (a larger max_seq_length would index past the position table).
    """
    limits = []
    if sentence_transformers_limit:
        limits.append(sentence_transformers_limit)
    elif 0 < int(tokenizer.model_max_length) < _UNBOUNDED:
        limits.append(int(tokenizer.model_max_length))
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > offset:
        limits.append(positions - offset)
    if not limits:
        raise TokenizerConversionError(
            "cannot tell the model's token limit: neither tokenizer.model_max_length nor "
            "max_position_embeddings is set"
        )
    return min(limits)


def derive_tokenizer_info(
    tokenizer: PreTrainedTokenizerBase, config: dict[str, Any], max_length: int
) -> TokenizerInfo:
    """Locate the probe texts inside the framed single and pair encodings."""
    query = tokenizer(PROBE_QUERY, add_special_tokens=False)["input_ids"]
    document = tokenizer(PROBE_DOCUMENT, add_special_tokens=False)["input_ids"]
    pair = tokenizer(PROBE_QUERY, PROBE_DOCUMENT, return_token_type_ids=True)
    single = tokenizer(PROBE_QUERY)["input_ids"]
    pair_ids, pair_types = list(pair["input_ids"]), list(pair["token_type_ids"])

    q_at = _find(pair_ids, query)
    d_at = _find(pair_ids, document, q_at + len(query)) if q_at >= 0 else -1
    s_at = _find(single, query)
    if not query or not document or q_at < 0 or d_at < 0 or s_at < 0:
        raise TokenizerConversionError(
            "cannot locate the query and document tokens in the tokenizer's framed pair encoding, "
            "so the pair layout cannot be derived"
        )
    middle_end = d_at
    first_types = set(pair_types[:middle_end])
    second_types = set(pair_types[middle_end:])
    if first_types != {0} or len(second_types) != 1:
        raise TokenizerConversionError(
            f"unexpected token_type_ids layout {pair_types}: expected 0 up to the document, then one value"
        )
    special_tokens = {
        role: int(token_id)
        for role in SPECIAL_TOKEN_ROLES
        if (token_id := getattr(tokenizer, f"{role}_token_id", None)) is not None
    }
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = config.get("pad_token_id")
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return TokenizerInfo(
        max_length=max_length,
        pad_token_id=int(pad),
        single_prefix=[int(i) for i in single[:s_at]],
        single_suffix=[int(i) for i in single[s_at + len(query) :]],
        pair_prefix=[int(i) for i in pair_ids[:q_at]],
        pair_middle=[int(i) for i in pair_ids[q_at + len(query) : d_at]],
        pair_suffix=[int(i) for i in pair_ids[d_at + len(document) :]],
        second_type_id=int(second_types.pop()),
        special_tokens=special_tokens,
    )


def convert_tokenizer_ir(tokenizer: PreTrainedTokenizerBase, add_special_tokens: bool = False) -> ov.Model:
    from openvino_tokenizers import convert_tokenizer

    try:
        return convert_tokenizer(tokenizer, add_special_tokens=add_special_tokens)
    except Exception as error:  # openvino-tokenizers raises bare exceptions for unsupported pipelines
        raise TokenizerConversionError(
            f"openvino-tokenizers cannot convert this {type(tokenizer).__name__}: "
            f"{' '.join(str(error).split())[:300]}"
        ) from error


def tokenize_with_ir(compiled: ov.CompiledModel, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text from a compiled tokenizer IR (padding removed via attention_mask)."""
    outputs = compiled(list(texts))
    ids = outputs[compiled.output("input_ids")]
    mask = outputs[compiled.output("attention_mask")]
    return [row[np.asarray(m, dtype=bool)].tolist() for row, m in zip(ids, mask, strict=True)]


def self_check(
    compiled: ov.CompiledModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str] = SELF_CHECK_TEXTS,
    add_special_tokens: bool = False,
) -> list[str]:
    """Texts on which the compiled IR and the Hugging Face tokenizer disagree (empty when they agree)."""
    from_ir = tokenize_with_ir(compiled, texts)
    expected = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    return [text for text, got, want in zip(texts, from_ir, expected, strict=True) if list(got) != list(want)]


def check_added_special_tokens(compiled: ov.CompiledModel, info: TokenizerInfo) -> None:
    """An IR that adds special tokens must add exactly single_prefix and single_suffix: the server
    takes that many ids off each text."""
    (got,) = tokenize_with_ir(compiled, [""])
    expected = info.single_prefix + info.single_suffix
    if list(got) != expected:
        raise TokenizerConversionError(
            f"the converted tokenizer puts {got} around a text, the Hugging Face tokenizer {expected}"
        )
