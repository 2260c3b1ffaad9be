"""Random-weight replicas of the model families, built offline and cached like the demo models.

Each replica keeps its family's real configuration (architecture, hidden size, head layout,
position scheme, special tokens, sentence-transformers files) with fewer layers, and a small
tokenizer of the family's own kind trained on the synthetic corpus, then loaded through the
family's real tokenizer class (transformers 5 rebuilds a tokenizer's normalizer and
pre-tokenizer from its class, so the class is what makes the pipeline real):

| replica (by family)    | architecture                          | tokenizer                                |
|------------------------|---------------------------------------|------------------------------------------|
| qwen3-reranker         | Qwen3ForCausalLM (0.6B shapes)        | Qwen2Tokenizer, byte-level BPE           |
| qwen3-reranker-seq-cls | Qwen3ForSequenceClassification        | the same                                 |
| mxbai-rerank-v2        | Qwen2ForCausalLM (base-v2 shapes)     | Qwen2Tokenizer, byte-level BPE           |
| qwen3-embedding        | Qwen3Model saved as Qwen3ForCausalLM  | Qwen2Tokenizer + <|endoftext|> appended  |
| deberta-v2             | DebertaV2ForSequenceClassification    | DebertaV2Tokenizer, Unigram              |
| mpnet                  | MPNetModel (all-mpnet-base-v2)        | MPNetTokenizer, WordPiece                |
| nomic-embed-v1.5       | NomicBertModel (v1.5)                 | BertTokenizer, WordPiece                 |
| nomic-embed            | the same, without "v1.5" in its path  | the same                                 |
| modernbert-reranker    | ModernBertForSequenceClassification   | ByteLevel BPE (PreTrainedTokenizerFast)  |
| modernbert-embed       | ModernBertModel                       | the same                                 |
| xlm-roberta-long       | XLMRobertaModel, 8194 positions       | Unigram/Metaspace (XLM-R)                |
| xlm-roberta-e5         | XLMRobertaModel (multilingual-e5-small)| Unigram/Metaspace (XLM-R)               |
| custom-code            | its own code beside config.json       | BertTokenizer, WordPiece                 |
| mecab-bert             | BertModel + BertJapaneseTokenizer     | MeCab word splitter (refused at export)  |

Reduced hidden sizes (the real one would make a test slow, not the conversion different):
xlm-roberta-long (hidden 64, 2 heads: the Hugging Face reference materialises 8192 x 8192 attention
scores per head), custom-code (hidden 64: it has no real counterpart). Everything else keeps
the real hidden size and head layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.repository.families import NOMIC_PROMPTS, QWEN3_EMBEDDING_PROMPTS
from serving.repository.layout import Task
from tools import synthetic_data
from tools.model_cache import cached_build
from tools.xlmr_models import train_xlmr_tokenizer, xlmr_reranker_config

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Bump when any recipe below changes, so old cache entries are not reused.
RECIPE_VERSION = "v2"
SEED = 0

QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN_ADDED_TOKENS = ("<think>", "</think>")  # added, not special, as in Qwen3


def _corpus() -> list[str]:
    """The synthetic multilingual corpus plus the words the prompt templates use."""
    lines = synthetic_data.multilingual_corpus(seed=SEED)
    template_words = (
        "yes no Judge whether the Document meets the requirements based on the Query and the Instruct "
        'provided. Note that the answer can only be "yes" or "no". system user assistant Given a web '
        "search query, retrieve relevant passages that answer the query instruction: query: document: "
        "Relevance: You are a search relevance expert who evaluates how well documents match search "
        "queries. search_query: search_document: classification: clustering: passage: Instruct: Query:"
    )
    return lines + [template_words] * 20


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")


def _finish(out_dir: Path, entry: str, **facts: Any) -> None:
    _write_json(
        out_dir / "ovtext_fixture.json", {"recipe": entry, "seed": SEED, "weights": "random", **facts}
    )


# --- tokenizers of each kind ---------------------------------------------------------------


def train_qwen_tokenizer(vocab_size: int = 2000, append_eos: bool = False) -> PreTrainedTokenizerBase:
    """A Qwen2Tokenizer (byte-level BPE with Qwen's split regex and NFC) with a trained vocabulary.

    The special tokens sit after the learned vocabulary, as in Qwen; append_eos gives it
    Qwen3-Embedding's post-processor, which appends <|endoftext|> to every text.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=32768,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in QWEN_ADDED_TOKENS])
    if append_eos:
        eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="$A:0 <|endoftext|>:0",
            pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
            special_tokens=[("<|endoftext|>", eos)],
        )
    for word in ("yes", "no", "1", "0"):
        if tokenizer.convert_tokens_to_ids(word) in (None, tokenizer.unk_token_id):
            raise RuntimeError(f"the trained Qwen vocabulary lacks the token {word!r}")
    return tokenizer


def _train_unigram(vocab_size: int, special_tokens: Iterable[str], unk: str) -> list[tuple[str, float]]:
    """(piece, score) pairs of a Unigram model trained like sentencepiece (Metaspace, NFKC)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    unigram = Tokenizer(models.Unigram())
    unigram.normalizer = normalizers.NFKC()
    unigram.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        unk_token=unk,
        max_piece_length=8,
        show_progress=False,
    )
    unigram.train_from_iterator(_corpus(), trainer)
    return [(piece, float(score)) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]


def train_deberta_v2_tokenizer(vocab_size: int = 2000) -> PreTrainedTokenizerBase:
    """A DebertaV2Tokenizer (sentencepiece Unigram, [CLS] q [SEP] d [SEP]) with a trained vocabulary.

    The ids follow mxbai-rerank-v1 / DeBERTa-v3: [PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3, [MASK] last.
    """
    from transformers import DebertaV2Tokenizer

    pieces = _train_unigram(vocab_size - 1, ["[PAD]", "[CLS]", "[SEP]", "[UNK]"], "[UNK]")
    pieces.append(("[MASK]", 0.0))
    return DebertaV2Tokenizer(vocab=pieces, unk_id=3, model_max_length=512, do_lower_case=False)


def _train_wordpiece(vocab_size: int, special_tokens: list[str]) -> dict[str, int]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False
    )
    wordpiece.train_from_iterator(_corpus(), trainer)
    return dict(json.loads(wordpiece.to_str())["model"]["vocab"])


def train_bert_tokenizer(vocab_size: int = 2000, model_max_length: int = 512) -> PreTrainedTokenizerBase:
    """A lower-casing BertTokenizer (WordPiece) with [PAD] 0 ... as bert-base-uncased orders them."""
    from transformers import BertTokenizer

    vocab = _train_wordpiece(vocab_size, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=model_max_length)


def train_mpnet_tokenizer(vocab_size: int = 2000) -> PreTrainedTokenizerBase:
    """An MPNetTokenizer (WordPiece, <s> q </s></s> d </s>) with all-mpnet-base-v2's special ids."""
    from transformers import MPNetTokenizer

    vocab = _train_wordpiece(vocab_size, ["<s>", "<pad>", "</s>", "[UNK]"])
    vocab["<mask>"] = len(vocab)
    return MPNetTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512)


def train_modernbert_tokenizer(vocab_size: int = 2000) -> PreTrainedTokenizerBase:
    """ModernBERT's tokenizer kind: byte-level BPE (GPT-NeoX style) framed [CLS] q [SEP] d [SEP]."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|padding|>", "<|endoftext|>", "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=specials,
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer)
    cls, sep = bpe.token_to_id("[CLS]"), bpe.token_to_id("[SEP]")
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        model_max_length=8192,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )


# --- sentence-transformers files ------------------------------------------------------------


def write_sentence_transformers_files(
    out_dir: Path,
    pooling: str,
    max_seq_length: int,
    normalize: bool = True,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
) -> None:
    """modules.json, 1_Pooling/config.json, sentence_bert_config.json, config_sentence_transformers.json."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
        (out_dir / "2_Normalize").mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "modules.json", modules)
    hidden = json.loads((out_dir / "config.json").read_text())["hidden_size"]
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {"word_embedding_dimension": hidden, "pooling_mode": pooling, "include_prompt": True},
    )
    _write_json(
        out_dir / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False}
    )
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "prompts": prompts or {},
            "default_prompt_name": default_prompt_name,
            "similarity_fn_name": "cosine",
        },
    )


# --- the replicas ----------------------------------------------------------------------------

# The real configurations, with num_hidden_layers cut to 2 (3 for ModernBERT: one global and
# two local-attention layers).
QWEN3_06B = {
    "hidden_size": 1024,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 3072,
    "num_hidden_layers": 2,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
}
QWEN2_05B = {  # mxbai-rerank-base-v2 (Qwen2.5-0.5B)
    "hidden_size": 896,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "num_hidden_layers": 2,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
}
DEBERTA_V3_BASE = {  # mixedbread-ai/mxbai-rerank-base-v1
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "num_hidden_layers": 2,
    "max_position_embeddings": 512,
    "type_vocab_size": 0,
    "relative_attention": True,
    "position_buckets": 256,
    "norm_rel_ebd": "layer_norm",
    "share_att_key": True,
    "pos_att_type": ["p2c", "c2p"],
    "max_relative_positions": -1,
    "position_biased_input": False,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-7,
    "pad_token_id": 0,
}
MPNET_BASE = {  # sentence-transformers/all-mpnet-base-v2
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "num_hidden_layers": 2,
    "max_position_embeddings": 514,
    "relative_attention_num_buckets": 32,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
MODERNBERT_BASE = {
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 1152,
    "num_hidden_layers": 3,
    "max_position_embeddings": 8192,
    "global_attn_every_n_layers": 3,
    "local_attention": 128,
    "norm_eps": 1e-5,
}
E5_SMALL = {  # intfloat/multilingual-e5-small (XLM-R body)
    "hidden_size": 384,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "num_hidden_layers": 2,
    "max_position_embeddings": 514,
}

Builder = Callable[[Path], None]


def _save(model: Any, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _wide_init(config: Any) -> Any:
    """A wider random init than 0.02, so random scores spread enough to rank documents."""
    config.initializer_range = 0.2
    return config


def build_qwen3_reranker(out_dir: Path, sequence_classifier: bool = False) -> None:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3ForSequenceClassification

    torch.manual_seed(SEED)
    tokenizer = train_qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=40960,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        **QWEN3_06B,
    )
    model = Qwen3ForCausalLM(config).eval()
    if sequence_classifier:
        # What the *-seq-cls conversions do: one label whose weight is lm_head[yes] - lm_head[no].
        config.num_labels = 1
        config.architectures = ["Qwen3ForSequenceClassification"]
        classifier = Qwen3ForSequenceClassification(config).eval()
        classifier.model.load_state_dict(model.model.state_dict())
        yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
        with torch.no_grad():
            classifier.score.weight.copy_(model.lm_head.weight[yes] - model.lm_head.weight[no])
        model = classifier
    _save(model, tokenizer, out_dir)


def build_mxbai_rerank_v2(out_dir: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    tokenizer = train_qwen_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=32768,
        bos_token_id=eos,
        eos_token_id=eos,
        **QWEN2_05B,
    )
    _save(Qwen2ForCausalLM(config).eval(), tokenizer, out_dir)


def build_qwen3_embedding(out_dir: Path) -> None:
    """Qwen3-Embedding: Qwen3Model weights, config architectures Qwen3ForCausalLM, last-token pooling."""
    import torch
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(SEED)
    tokenizer = train_qwen_tokenizer(append_eos=True)
    tokenizer.padding_side = "left"
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=32768,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        **QWEN3_06B,
    )
    config.architectures = ["Qwen3ForCausalLM"]
    model = Qwen3Model(config).eval()
    _save(model, tokenizer, out_dir)
    _patch_config(out_dir, architectures=["Qwen3ForCausalLM"])
    write_sentence_transformers_files(out_dir, "lasttoken", 32768, prompts=dict(QWEN3_EMBEDDING_PROMPTS))


def _patch_config(out_dir: Path, **values: Any) -> None:
    path = out_dir / "config.json"
    config = json.loads(path.read_text())
    config.update(values)
    _write_json(path, config)


def build_deberta_v2(out_dir: Path) -> None:
    """mixedbread-ai/mxbai-rerank-base-v1: DeBERTa-v3-base shapes, one logit."""
    import torch
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    torch.manual_seed(SEED)
    tokenizer = train_deberta_v2_tokenizer()
    config = _wide_init(
        DebertaV2Config(
            vocab_size=len(tokenizer),
            num_labels=1,
            architectures=["DebertaV2ForSequenceClassification"],
            **DEBERTA_V3_BASE,
        )
    )
    _save(DebertaV2ForSequenceClassification(config).eval(), tokenizer, out_dir)


def build_mpnet(out_dir: Path) -> None:
    import torch
    from transformers import MPNetConfig, MPNetModel

    torch.manual_seed(SEED)
    tokenizer = train_mpnet_tokenizer()
    config = MPNetConfig(vocab_size=len(tokenizer), architectures=["MPNetModel"], **MPNET_BASE)
    _save(MPNetModel(config).eval(), tokenizer, out_dir)
    write_sentence_transformers_files(out_dir, "mean", 384)


def build_nomic_embed(out_dir: Path) -> None:
    """nomic-embed-text-v1.5: NomicBertConfig's defaults are v1.5's shapes; 2 layers."""
    import torch
    from transformers import NomicBertConfig, NomicBertModel

    torch.manual_seed(SEED)
    tokenizer = train_bert_tokenizer(model_max_length=8192)
    config = NomicBertConfig(
        vocab_size=len(tokenizer),
        num_hidden_layers=2,
        max_position_embeddings=8192,
        architectures=["NomicBertModel"],
    )
    _save(NomicBertModel(config).eval(), tokenizer, out_dir)
    write_sentence_transformers_files(out_dir, "mean", 8192, normalize=False, prompts=dict(NOMIC_PROMPTS))


def _modernbert_config(tokenizer: PreTrainedTokenizerBase, **extra: Any) -> Any:
    from transformers import ModernBertConfig

    return ModernBertConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **MODERNBERT_BASE,
        **extra,
    )


def build_modernbert_reranker(out_dir: Path) -> None:
    """Alibaba-NLP/gte-reranker-modernbert-base: one label, mean classifier pooling."""
    import torch
    from transformers import ModernBertForSequenceClassification

    torch.manual_seed(SEED)
    tokenizer = train_modernbert_tokenizer()
    config = _wide_init(
        _modernbert_config(
            tokenizer,
            num_labels=1,
            classifier_pooling="mean",
            architectures=["ModernBertForSequenceClassification"],
        )
    )
    _save(ModernBertForSequenceClassification(config).eval(), tokenizer, out_dir)


def build_modernbert_embed(out_dir: Path) -> None:
    """nomic-ai/modernbert-embed-base: mean pooling, normalized, nomic's prompts."""
    import torch
    from transformers import ModernBertModel

    torch.manual_seed(SEED)
    tokenizer = train_modernbert_tokenizer()
    config = _modernbert_config(tokenizer, architectures=["ModernBertModel"])
    _save(ModernBertModel(config).eval(), tokenizer, out_dir)
    prompts = {"query": "search_query: ", "document": "search_document: "}
    write_sentence_transformers_files(out_dir, "mean", 8192, prompts=prompts)


def _xlmr_embedder(out_dir: Path, max_length: int, pooling: str, tokenizer_vocab: int, **shape: Any) -> None:
    """An XLMRobertaModel embedder with XLM-R's special ids and the Unigram tokenizer."""
    import torch
    from transformers import XLMRobertaModel

    torch.manual_seed(SEED)
    tokenizer = train_xlmr_tokenizer(tokenizer_vocab, model_max_length=max_length, seed=SEED)
    shape.setdefault("vocab_size", len(tokenizer))
    config = xlmr_reranker_config(**shape)
    config.architectures = ["XLMRobertaModel"]
    _save(XLMRobertaModel(config).eval(), tokenizer, out_dir)
    write_sentence_transformers_files(out_dir, pooling, max_length)


def build_long_xlmr(out_dir: Path) -> None:
    """bge-m3's position range (8194 positions: 8192 tokens) on a tiny XLM-R; CLS pooling, normalized."""
    _xlmr_embedder(
        out_dir,
        8192,
        "cls",
        1000,
        hidden_size=64,
        num_attention_heads=2,
        intermediate_size=128,
        num_hidden_layers=2,
        max_position_embeddings=8194,
    )


def build_e5(out_dir: Path) -> None:
    """multilingual-e5-small's shapes: mean pooling, normalized; no prompts in its files (given at export)."""
    _xlmr_embedder(out_dir, 512, "mean", 1000, **E5_SMALL)


CUSTOM_CONFIGURATION = '''"""A model type of its own: ships with the model, loaded with trust_remote_code."""

from transformers import BertConfig


class OvtextCustomConfig(BertConfig):
    model_type = "{model_type}"
'''

CUSTOM_MODELING = '''"""A BERT body whose relevance head reads the mean of the tokens, not [CLS]."""

import torch
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_ovtext_custom import OvtextCustomConfig


class OvtextCustomForSequenceClassification(BertPreTrainedModel):
    config_class = OvtextCustomConfig

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.score = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        output = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        hidden = output.last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        return SequenceClassifierOutput(logits=self.score(torch.tanh(pooled)))
'''


def build_custom_code(out_dir: Path, model_type: str = "bert") -> None:
    """A reranker whose code sits beside its config (auto_map).

    model_type "bert": optimum-intel knows the type, so --trust_remote_code exports the custom
    class; any other model_type is an architecture optimum-intel cannot export.
    """
    import importlib.util
    import sys

    import torch

    torch.manual_seed(SEED)
    tokenizer = train_bert_tokenizer()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "configuration_ovtext_custom.py").write_text(
        CUSTOM_CONFIGURATION.format(model_type=model_type)
    )
    (out_dir / "modeling_ovtext_custom.py").write_text(CUSTOM_MODELING)
    package = f"ovtext_custom_{model_type.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(
        package, out_dir / "__init__.py", submodule_search_locations=[str(out_dir)]
    )
    (out_dir / "__init__.py").write_text("")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[package] = module
    try:
        from importlib import import_module

        configuration = import_module(f"{package}.configuration_ovtext_custom")
        modeling = import_module(f"{package}.modeling_ovtext_custom")
        config = _wide_init(
            configuration.OvtextCustomConfig(
                vocab_size=len(tokenizer),
                hidden_size=64,
                num_attention_heads=2,
                intermediate_size=128,
                num_hidden_layers=2,
                max_position_embeddings=512,
                num_labels=1,
            )
        )
        model = modeling.OvtextCustomForSequenceClassification(config).eval()
        _save(model, tokenizer, out_dir)
    finally:
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
    (out_dir / "__init__.py").unlink()
    _patch_config(
        out_dir,
        model_type=model_type,
        architectures=["OvtextCustomForSequenceClassification"],
        auto_map={
            "AutoConfig": "configuration_ovtext_custom.OvtextCustomConfig",
            "AutoModelForSequenceClassification": (
                "modeling_ovtext_custom.OvtextCustomForSequenceClassification"
            ),
        },
    )


def build_mecab_bert(out_dir: Path) -> None:
    """A Japanese BERT whose tokenizer splits words with MeCab (cl-nagoya/ruri-*, tohoku BERT)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED)
    vocab = _train_wordpiece(1000, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_attention_heads=2,
        intermediate_size=128,
        num_hidden_layers=1,
        architectures=["BertModel"],
    )
    BertModel(config).eval().save_pretrained(out_dir)
    ordered = sorted(vocab, key=vocab.__getitem__)
    (out_dir / "vocab.txt").write_text("\n".join(ordered) + "\n", encoding="utf-8")
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "BertJapaneseTokenizer",
            "word_tokenizer_type": "mecab",
            "subword_tokenizer_type": "wordpiece",
            "mecab_kwargs": {"mecab_dic": "unidic_lite"},
            "do_lower_case": False,
            "model_max_length": 512,
        },
    )
    write_sentence_transformers_files(out_dir, "mean", 512)


@dataclass(frozen=True)
class Replica:
    """A replica's builder, the task it is exported for, and the recipe of serving/repository/families.py
    it stands for (None: a model no recipe covers, served the plain way or refused)."""

    build: Builder
    task: Task
    family: str | None


# Keyed by the family's name; a family with replicas for both tasks, or several, adds what tells
# them apart.
REPLICAS: dict[str, Replica] = {
    "qwen3-reranker": Replica(build_qwen3_reranker, Task.RERANK, "qwen3-reranker"),
    "qwen3-reranker-seq-cls": Replica(
        lambda out: build_qwen3_reranker(out, sequence_classifier=True), Task.RERANK, "qwen3-reranker-seq-cls"
    ),
    "mxbai-rerank-v2": Replica(build_mxbai_rerank_v2, Task.RERANK, "mxbai-rerank-v2"),
    "qwen3-embedding": Replica(build_qwen3_embedding, Task.EMBEDDINGS, "qwen3-embedding"),
    "deberta-v2": Replica(build_deberta_v2, Task.RERANK, "deberta-v2"),
    "mpnet": Replica(build_mpnet, Task.EMBEDDINGS, "mpnet"),
    # "v1.5" in the name (and so in the folder's path) is what tells the recipe from nomic-embed (v1).
    "nomic-embed-v1.5": Replica(build_nomic_embed, Task.EMBEDDINGS, "nomic-embed-v1.5"),
    "nomic-embed": Replica(build_nomic_embed, Task.EMBEDDINGS, "nomic-embed"),
    "modernbert-reranker": Replica(build_modernbert_reranker, Task.RERANK, "modernbert"),
    "modernbert-embed": Replica(build_modernbert_embed, Task.EMBEDDINGS, "modernbert"),
    "xlm-roberta-long": Replica(build_long_xlmr, Task.EMBEDDINGS, "xlm-roberta"),
    "xlm-roberta-e5": Replica(build_e5, Task.EMBEDDINGS, "xlm-roberta"),
    "custom-code": Replica(build_custom_code, Task.RERANK, None),
    "custom-architecture": Replica(
        lambda out: build_custom_code(out, model_type="ovtext-custom"), Task.RERANK, None
    ),
    "mecab-bert": Replica(build_mecab_bert, Task.EMBEDDINGS, None),
}


def replica_source(name: str, cache_dir: Path | None = None) -> Path:
    """HF folder of the replica `name` (built on first use, cached per recipe version)."""
    if name not in REPLICAS:
        raise ValueError(f"unknown replica {name!r}; choose one of {', '.join(REPLICAS)}")

    def build(out_dir: Path) -> None:
        REPLICAS[name].build(out_dir)
        _finish(out_dir, f"{name}-{RECIPE_VERSION}")

    return cached_build(f"replica-{name}-{RECIPE_VERSION}", build, cache_dir)


# --- for the long-context memory measurement (benchmark/long_context.py), not the tests ------

BGE_M3 = {
    "hidden_size": 1024,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "max_position_embeddings": 8194,
}
BGE_M3_VOCAB = 250002


def build_bge_m3_shaped(out_dir: Path, layers: int) -> None:
    """BAAI/bge-m3's shapes (random weights) with `layers` layers; CLS pooling, normalized."""
    _xlmr_embedder(out_dir, 8192, "cls", 8000, vocab_size=BGE_M3_VOCAB, num_hidden_layers=layers, **BGE_M3)
    _finish(out_dir, f"bge-m3-shaped-{layers}-{RECIPE_VERSION}", layers=layers)


def bge_m3_shaped_source(layers: int = 24, cache_dir: Path | None = None) -> Path:
    """HF folder of a random-weight model shaped like BAAI/bge-m3 (built on first use, cached)."""
    return cached_build(
        f"bge-m3-shaped-{layers}-{RECIPE_VERSION}", lambda out: build_bge_m3_shaped(out, layers), cache_dir
    )
