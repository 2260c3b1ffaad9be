"""Model families as data: one small recipe per family, read by the export, the server and the
parity reference (export_models/hf_reference.py).

A recipe says which models it covers (config.json `architectures[0]` or `model_type`: the folder's
content, never its name), how the export converts
them, how a reranker scores (a causal LM's yes/no logits folded into one logit) and frames its
prompt, how an embedder pools and post-processes, and which prompts it defaults to. The facts
the server needs are also written into the IRs' runtime info at export (layout.TokenizerInfo,
layout.ModelInfo), so a repository keeps serving the way it was exported even if a recipe here
changes later. Pure data: no torch, no transformers (the server imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from serving.repository.layout import Pooling, Task


class Conversion(str, Enum):
    """How the export turns the Hugging Face model into an OpenVINO IR."""

    # optimum-cli export openvino --library transformers (text-classification / feature-extraction)
    OPTIMUM = "optimum"
    # A *ForCausalLM scored by two tokens' logits at the last position: the export builds a one-label
    # *ForSequenceClassification on the same body whose score row is lm_head[yes] - lm_head[no]
    # (so sigmoid(logit) = softmax([no, yes])[1]) and exports that with optimum.
    CAUSAL_LM_TO_CLASSIFIER = "causal-lm-to-classifier"
    # optimum-cli export openvino --library sentence_transformers: for architectures optimum's
    # transformers exporter does not know; the IR gives token embeddings, the server pools.
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    # torch.export.export, then openvino.convert_model (optimum-intel refuses the architecture).
    TORCH_EXPORT = "torch-export"


class PostPooling(str, Enum):
    """A step between pooling and the Matryoshka truncation / L2 normalization."""

    # Layer norm without weights over the pooled vector (torch.nn.functional.layer_norm, eps 1e-5).
    LAYER_NORM = "layer_norm"


LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class PromptTemplate:
    """How an instruction-following reranker frames a (query, document) pair.

    The server tokenizes `query` (formatted with the query and instruction) and `document`
    (formatted with the document) with the tokenizer IR; the constant pieces are tokenized at
    export by the Hugging Face tokenizer, each piece on its own:

        prefix pieces + tok(query) + middle pieces + tok(document) + suffix pieces

    A long document is chunked inside tok(document); the rest repeats around every chunk.
    `reference` is the model card's own layout (each piece tokenized on its own, placeholders
    {instruction} {query} {document}); the export proves both layouts give the same ids.
    """

    prefix: tuple[str, ...]
    query: str
    middle: tuple[str, ...]
    document: str
    suffix: tuple[str, ...]
    reference: tuple[str, ...]
    default_instruction: str | None = None
    # The query piece when the instruction is empty (mxbai-rerank-v2 drops its instruction line).
    query_without_instruction: str | None = None
    reference_without_instruction: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TokenScoring:
    """A causal LM's relevance: sigmoid(logit[yes_token] - logit[no_token]) at the last position."""

    yes_token: str
    no_token: str


@dataclass(frozen=True)
class Family:
    """One family's recipe. Fields left at their defaults mean "as for any BERT-style model"."""

    name: str
    examples: tuple[str, ...]
    tasks: tuple[Task, ...]
    architectures: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    conversion: Conversion = Conversion.OPTIMUM
    scoring: TokenScoring | None = None
    template: PromptTemplate | None = None
    # Embedders: pooling when the model has no sentence-transformers pooling config.
    pooling: Pooling | None = None
    post_pooling: tuple[PostPooling, ...] = ()
    # Embedders: prompts when the model's sentence-transformers config has none.
    prompts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The model card's token limit, when it is below what the positions allow.
    max_length: int | None = None
    notes: str = ""

    def matches(self, task: Task, architecture: str, model_type: str, source: str = "") -> bool:
        """Whether the recipe covers the model; `source` (its name) is not looked at: two folders with
        the same content are exported the same way whatever they are called."""
        if task not in self.tasks:
            return False
        return architecture in self.architectures or model_type in self.model_types


@dataclass(frozen=True)
class TokenizerRefusal:
    """A tokenizer the export refuses: openvino-tokenizers would split differently."""

    tokenizer_class: str
    config_key: str  # tokenizer_config.json key whose value decides
    values: tuple[str, ...]
    reason: str


QWEN3_RERANKER_TEMPLATE = PromptTemplate(
    prefix=(
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
        'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n',
    ),
    query="<Instruct>: {instruction}\n<Query>: {query}\n<Document>:",
    middle=(),
    document=" {document}",
    suffix=("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",),
    reference=(
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
        'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n',
        "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    ),
    default_instruction="Given a web search query, retrieve relevant passages that answer the query",
)

_MXBAI_V2_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
)
_MXBAI_V2_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your "
    "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)
_MXBAI_V2_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"

# mixedbread-ai/mxbai-rerank (mxbai_rerank_v2.py): prefix + tok(query) + tok("\n") +
# tok("document: " + document) + tok("\n") + tok(task) + tok(suffix), each piece on its own.
MXBAI_RERANK_V2_TEMPLATE = PromptTemplate(
    prefix=(_MXBAI_V2_PREFIX,),
    query="instruction: {instruction}\nquery: {query}",
    middle=("\n", "document:"),
    document=" {document}",
    suffix=("\n", _MXBAI_V2_TASK, _MXBAI_V2_SUFFIX),
    reference=(
        _MXBAI_V2_PREFIX,
        "instruction: {instruction}\nquery: {query}",
        "\n",
        "document: {document}",
        "\n",
        _MXBAI_V2_TASK,
        _MXBAI_V2_SUFFIX,
    ),
    default_instruction=None,
    query_without_instruction="query: {query}",
    reference_without_instruction=(
        _MXBAI_V2_PREFIX,
        "query: {query}",
        "\n",
        "document: {document}",
        "\n",
        _MXBAI_V2_TASK,
        _MXBAI_V2_SUFFIX,
    ),
)

QWEN3_EMBEDDING_PROMPTS = MappingProxyType(
    {
        "query": (
            "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
        ),
        "document": "",
    }
)
NOMIC_PROMPTS = MappingProxyType(
    {
        "search_query": "search_query: ",
        "search_document": "search_document: ",
        "classification": "classification: ",
        "clustering": "clustering: ",
    }
)

FAMILIES: tuple[Family, ...] = (
    Family(
        name="qwen3-reranker",
        examples=("Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-8B"),
        tasks=(Task.RERANK,),
        architectures=("Qwen3ForCausalLM",),
        conversion=Conversion.CAUSAL_LM_TO_CLASSIFIER,
        scoring=TokenScoring(yes_token="yes", no_token="no"),
        template=QWEN3_RERANKER_TEMPLATE,
        max_length=8192,
    ),
    Family(
        name="qwen3-reranker-seq-cls",
        examples=("tomaarsen/Qwen3-Reranker-0.6B-seq-cls",),
        tasks=(Task.RERANK,),
        architectures=("Qwen3ForSequenceClassification",),
        template=QWEN3_RERANKER_TEMPLATE,
        max_length=8192,
        notes="already converted to one logit (yes - no); the same template",
    ),
    Family(
        name="mxbai-rerank-v2",
        examples=("mixedbread-ai/mxbai-rerank-base-v2", "mixedbread-ai/mxbai-rerank-large-v2"),
        tasks=(Task.RERANK,),
        architectures=("Qwen2ForCausalLM",),
        conversion=Conversion.CAUSAL_LM_TO_CLASSIFIER,
        scoring=TokenScoring(yes_token="1", no_token="0"),
        template=MXBAI_RERANK_V2_TEMPLATE,
        max_length=8192,
    ),
    Family(
        name="qwen3-embedding",
        examples=("Qwen/Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-4B", "Qwen/Qwen3-Embedding-8B"),
        tasks=(Task.EMBEDDINGS,),
        architectures=("Qwen3ForCausalLM", "Qwen3Model"),
        pooling=Pooling.LAST,
        prompts=QWEN3_EMBEDDING_PROMPTS,
        notes="the tokenizer appends <|endoftext|>; its last position is pooled",
    ),
    Family(
        name="deberta-v2",
        examples=("mixedbread-ai/mxbai-rerank-base-v1", "mixedbread-ai/mxbai-rerank-large-v1"),
        tasks=(Task.RERANK, Task.EMBEDDINGS),
        model_types=("deberta-v2",),
        notes="Unigram tokenizer; type_vocab_size 0, so the IR has no token_type_ids input",
    ),
    Family(
        name="mpnet",
        examples=("sentence-transformers/all-mpnet-base-v2",),
        tasks=(Task.RERANK, Task.EMBEDDINGS),
        model_types=("mpnet",),
        pooling=Pooling.MEAN,
        notes="position ids from the padding id (padding_idx + 1 offset), inside the IR",
    ),
    Family(
        name="nomic-embed",
        examples=("nomic-ai/nomic-embed-text-v1", "nomic-ai/nomic-embed-text-v1.5"),
        tasks=(Task.EMBEDDINGS,),
        model_types=("nomic_bert",),
        conversion=Conversion.SENTENCE_TRANSFORMERS,
        pooling=Pooling.MEAN,
        prompts=NOMIC_PROMPTS,
        notes="v1.5's modules.json adds a LayerNorm (served as the layer_norm step before Matryoshka "
        "truncation and L2): read from the folder, as every sentence-transformers module is",
    ),
    Family(
        name="modernbert",
        examples=("Alibaba-NLP/gte-reranker-modernbert-base", "nomic-ai/modernbert-embed-base"),
        tasks=(Task.RERANK, Task.EMBEDDINGS),
        model_types=("modernbert",),
        conversion=Conversion.TORCH_EXPORT,
        notes=(
            "attention masks patched so a padded position never has all keys masked (OpenVINO's "
            "attention gives NaN for such rows, and the NaN spreads to real tokens)"
        ),
    ),
    Family(
        name="xlm-roberta",
        examples=("BAAI/bge-m3", "BAAI/bge-reranker-v2-m3", "intfloat/multilingual-e5-large"),
        tasks=(Task.RERANK, Task.EMBEDDINGS),
        model_types=("xlm-roberta",),
        notes=(
            "up to 8192 tokens (8194 positions); e5: --prompt query='query: ' --prompt document='passage: '"
        ),
    ),
)

TOKENIZER_REFUSALS: tuple[TokenizerRefusal, ...] = (
    TokenizerRefusal(
        tokenizer_class="BertJapaneseTokenizer",
        config_key="word_tokenizer_type",
        values=("mecab", "sudachi", "jumanpp"),
        reason=(
            "its words are split by a morphological analyser ({value}), which openvino-tokenizers cannot "
            "convert; a tokenizer that splits differently would give different scores"
        ),
    ),
)

# Cohere's input_type values and OpenAI-style names: the prompt names each may mean, in order.
INPUT_TYPE_PROMPTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "query": ("query", "search_query"),
        "search_query": ("search_query", "query"),
        "document": ("document", "search_document", "passage"),
        "search_document": ("search_document", "document", "passage"),
        "passage": ("passage", "document", "search_document"),
        "classification": ("classification",),
        "clustering": ("clustering",),
    }
)


def find_family(task: Task, architecture: str, model_type: str, source: str = "") -> Family | None:
    """The first recipe that covers the model for `task`, or None (a BERT-style model: no recipe needed)."""
    for family in FAMILIES:
        if family.matches(task, architecture, model_type, source):
            return family
    return None


def family_by_name(name: str) -> Family | None:
    return next((family for family in FAMILIES if family.name == name), None)


def tokenizer_refusal(tokenizer_config: Mapping[str, object]) -> str | None:
    """Why the tokenizer described by tokenizer_config.json cannot be served, or None."""
    for refusal in TOKENIZER_REFUSALS:
        if tokenizer_config.get("tokenizer_class") != refusal.tokenizer_class:
            continue
        value = str(tokenizer_config.get(refusal.config_key, ""))
        if value in refusal.values:
            return f"{refusal.tokenizer_class}: " + refusal.reason.format(value=value)
    return None
