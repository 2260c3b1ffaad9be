"""Random-weight XLM-R rerankers, built offline with fixed seeds and cached on disk.

- xlmr_reranker_source(): a tiny XLMRobertaForSequenceClassification with a locally trained
  Unigram/Metaspace tokenizer: the bge-reranker architecture in miniature, for the tests.
- bge_reranker_shaped_source("base" | "large"): rerankers with the exact shapes of
  BAAI/bge-reranker-base/-large, for the benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tools import synthetic_data
from tools.model_cache import cached_build

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, XLMRobertaConfig

# Names of the cache entries; bump the suffix when a recipe changes so old caches are not reused.
XLMR_RERANKER_ENTRY = "tiny-xlmr-reranker-v2"
# v2: the tokenizer collapses runs of spaces like the real XLM-R (see train_xlmr_tokenizer).
BGE_SHAPED_RECIPE = "v2"

XLMR_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4, as in XLM-R


# --- the tiny XLM-R reranker and its Unigram tokenizer -------------------------------------


def train_xlmr_tokenizer(vocab_size: int, model_max_length: int, seed: int = 0) -> PreTrainedTokenizerBase:
    """A Unigram tokenizer trained on the synthetic multilingual corpus, framed like XLM-R.

    NFKC + collapse runs of spaces + Metaspace, special tokens <s> <pad> </s> <unk> <mask> with
    ids 0..4. The real XLM-R normalizer is Precompiled (sentencepiece's charsmap, which
    openvino-tokenizers cannot parse) followed by the same " {2,}" -> " " replacement; without
    that replacement openvino-tokenizers and Hugging Face split runs of spaces differently.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(XLMR_SPECIAL_TOKENS),
        unk_token="<unk>",
        max_piece_length=8,
        show_progress=False,
    )
    tokenizer.train_from_iterator(synthetic_data.multilingual_corpus(seed=seed), trainer)
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    # PreTrainedTokenizerFast (not XLMRobertaTokenizer): transformers 5 rebuilds an
    # XLMRobertaTokenizer's normalizer on load, which would drop the trained NFKC pipeline.
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=model_max_length,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


# Tiny XLM-R: 130 positions = 128 tokens + XLM-R's position offset of padding_idx + 1 = 2.
TINY_XLMR_SHAPE = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 130,
}
TINY_XLMR_VOCAB = 1000


def xlmr_reranker_config(vocab_size: int, num_labels: int = 1, **shape: float) -> XLMRobertaConfig:
    """An XLMRobertaConfig for a reranker with XLM-R's special ids (one logit, or two labels)."""
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab_size,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=num_labels,
        architectures=["XLMRobertaForSequenceClassification"],
        **shape,
    )


def build_xlmr_reranker(out_dir: Path, seed: int = 0) -> None:
    """Save the tiny random-weight XLM-R reranker and its tokenizer to out_dir."""
    import torch
    from transformers import XLMRobertaForSequenceClassification

    torch.manual_seed(seed)
    max_length = TINY_XLMR_SHAPE["max_position_embeddings"] - 2
    tokenizer = train_xlmr_tokenizer(TINY_XLMR_VOCAB, model_max_length=max_length, seed=seed)
    # A wider init than the default 0.02 so random logits spread enough to rank documents.
    config = xlmr_reranker_config(len(tokenizer), initializer_range=0.2, **TINY_XLMR_SHAPE)
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "ovtext_fixture.json").write_text(json.dumps({"recipe": XLMR_RERANKER_ENTRY, "seed": seed}))


def xlmr_reranker_source(cache_dir: Path | None = None) -> Path:
    """HF folder of the tiny XLM-R reranker (built on first use)."""
    return cached_build(XLMR_RERANKER_ENTRY, build_xlmr_reranker, cache_dir)


# --- random-weight models with the shapes of BAAI/bge-reranker-base/-large ------------------

BgeSize = Literal["base", "large"]
BGE_RERANKER_SHAPES: dict[str, dict[str, int]] = {
    "base": {
        "num_hidden_layers": 12,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 514,
    },
    "large": {
        "num_hidden_layers": 24,
        "hidden_size": 1024,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "max_position_embeddings": 514,
    },
}
BGE_VOCAB_SIZE = 250002
# The Unigram tokenizer only covers the synthetic corpus; ids above its size are simply unused.
BGE_TOKENIZER_VOCAB = 8000


def bge_shaped_entry(size: str) -> str:
    return f"bge-reranker-{size}-shaped-{BGE_SHAPED_RECIPE}"


def bge_reranker_config(size: BgeSize) -> XLMRobertaConfig:
    """The config of BAAI/bge-reranker-<size> (shapes only; no weights)."""
    return xlmr_reranker_config(BGE_VOCAB_SIZE, **BGE_RERANKER_SHAPES[size])


def build_bge_reranker_shaped(size: BgeSize, out_dir: Path, seed: int = 0) -> None:
    import torch
    from transformers import XLMRobertaForSequenceClassification

    torch.manual_seed(seed)
    config = bge_reranker_config(size)
    tokenizer = train_xlmr_tokenizer(
        BGE_TOKENIZER_VOCAB, model_max_length=config.max_position_embeddings - 2, seed=seed
    )
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "ovtext_fixture.json").write_text(
        json.dumps({"recipe": bge_shaped_entry(size), "seed": seed, "weights": "random"})
    )


def bge_reranker_shaped_source(size: BgeSize, cache_dir: Path | None = None) -> Path:
    """HF folder of a random-weight reranker shaped like BAAI/bge-reranker-<size> (built on first use)."""
    if size not in BGE_RERANKER_SHAPES:
        raise ValueError(f"size must be one of {sorted(BGE_RERANKER_SHAPES)}, not {size!r}")
    return cached_build(bge_shaped_entry(size), lambda out: build_bge_reranker_shaped(size, out), cache_dir)
