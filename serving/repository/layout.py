"""The model repository format: the contract between export_models/ (writer) and serving/ (reader).

A repository looks like this (docs/repository.md), in one of two forms per model:

    config.json                      {"mediapipe_config_list": [{"name", "base_path"}],
                                      "model_config_list": [{"config": {"name", "base_path"}}]}
  legacy (OpenVINO Model Server's `rerank`/`embeddings` export, versioned):
    <model_name>/graph.pbtxt         session nodes (servable_name) + RerankCalculator/EmbeddingsCalculator
    <model_name>/subconfig.json      model_config_list: the tokenizer and the rerank/embeddings model
    <model_name>/tokenizer/<v>/model.xml, model.bin
    <model_name>/rerank/<v>/...      or embeddings/<v>/...
  ov (OVMS's `rerank_ov`/`embeddings_ov` export, and optimum-cli's folder; one flat version 1):
    <model_name>/graph.pbtxt         one RerankCalculatorOV/EmbeddingsCalculatorOV node (models_path)
    <model_name>/openvino_model.xml, openvino_tokenizer.xml, config.json, tokenizer_config.json

Facts that belong to one exported version (special token ids, the pair layout, the
token limit, the number of labels, serving settings OVMS's graph has no field for) travel
inside that version's IR as runtime info, so a new version of a different model can be
swapped in without touching the graph.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import openvino as ov

CONFIG_FILE = "config.json"
# Short names beside config.json: OVMS validates config.json strictly (no extra keys), so they live here.
ALIASES_FILE = "aliases.json"
GRAPH_FILE = "graph.pbtxt"
SUBCONFIG_FILE = "subconfig.json"
MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
TOKENIZER_DIR = "tokenizer"

# The flat form (optimum-cli's output folder, OVMS's rerank_ov/embeddings_ov models_path): one version.
FLAT_MODEL_XML = "openvino_model.xml"
FLAT_TOKENIZER_XML = "openvino_tokenizer.xml"
HF_CONFIG_FILE = "config.json"  # Hugging Face's model config, inside a flat model folder
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
FLAT_VERSION = 1

# Calculators: the current OVMS form, and the legacy form whose RerankCalculator/EmbeddingsCalculator
# get their models from session nodes.
RERANK_CALCULATOR = "RerankCalculatorOV"
EMBEDDINGS_CALCULATOR = "EmbeddingsCalculatorOV"
LEGACY_RERANK_CALCULATOR = "RerankCalculator"
LEGACY_EMBEDDINGS_CALCULATOR = "EmbeddingsCalculator"
SESSION_CALCULATOR = "OpenVINOModelServerSessionCalculator"

# Keys of the runtime info (rt_info) entries written into the IRs, each a JSON string.
TOKENIZER_INFO_KEY = "ovtext_tokenizer_info"
MODEL_INFO_KEY = "ovtext_model_info"
# OVMS's legacy export copies every key of config.json (model IR) and tokenizer_config.json
# (tokenizer IR) under this runtime info section; its RerankCalculator reads the token ids there.
OVMS_MODEL_INFO_SECTION = "model_info"


class GraphFormat(str, Enum):
    """Which OpenVINO Model Server graph the export writes (docs/repository.md)."""

    LEGACY = "legacy"  # three nodes, versioned tokenizer/ and rerank|embeddings/ folders
    OV = "ov"  # one RerankCalculatorOV/EmbeddingsCalculatorOV node over a flat folder


class Task(str, Enum):
    RERANK = "rerank"
    EMBEDDINGS = "embeddings"

    @property
    def model_dir(self) -> str:
        """Folder of the versioned inference model beside tokenizer/."""
        return self.value

    @property
    def calculator(self) -> str:
        return RERANK_CALCULATOR if self is Task.RERANK else EMBEDDINGS_CALCULATOR

    @property
    def legacy_calculator(self) -> str:
        return LEGACY_RERANK_CALCULATOR if self is Task.RERANK else LEGACY_EMBEDDINGS_CALCULATOR

    @property
    def article(self) -> str:
        """'a rerank', 'an embeddings': the task in a sentence."""
        return f"an {self.value}" if self is Task.EMBEDDINGS else f"a {self.value}"

    @property
    def session_tag(self) -> str:
        """The legacy calculator's side-packet tag of the model session (TOKENIZER_SESSION is the other)."""
        return f"{self.value.upper()}_SESSION"


class Pooling(str, Enum):
    CLS = "CLS"
    MEAN = "MEAN"
    LAST = "LAST"


def tokenizer_servable_name(model_name: str) -> str:
    return f"{model_name}_tokenizer_model"


def model_servable_name(model_name: str, task: Task) -> str:
    return f"{model_name}_{task.value}_model"


@dataclass(frozen=True)
class TokenizerInfo:
    """How the server turns token ids from the tokenizer IR into model inputs.

    The server frames token ids without special tokens (the body of each text). A rerank tokenizer
    IR is exported without special tokens; an embeddings tokenizer IR adds them (OVMS's
    embeddings calculators expect that): `adds_special_tokens` says so, and the server then takes
    single_prefix and single_suffix off each text the IR returns. Neither truncates, so one call
    tokenizes a query and all its documents; the server then frames each sequence:

        single text:  single_prefix + text + single_suffix
        pair:         pair_prefix + query + pair_middle + document + pair_suffix

    token_type_ids are 0 up to and including pair_middle, then second_type_id
    (BERT: 1; XLM-R: 0). For bge-reranker (XLM-R): pair_prefix [0], pair_middle [2, 2],
    pair_suffix [2]. For BERT: [101], [102], [102].
    """

    max_length: int  # most tokens one framed sequence may have (specials included)
    pad_token_id: int
    single_prefix: list[int]
    single_suffix: list[int]
    pair_prefix: list[int]
    pair_middle: list[int]
    pair_suffix: list[int]
    second_type_id: int = 0
    # Special token ids by role, for readers and future use (e.g. LAST pooling needs eos).
    special_tokens: dict[str, int] = field(default_factory=dict)
    # One id per export, also in the model's ModelInfo: both IRs of a version must carry the same
    # one. None in IRs exported before it was recorded.
    export_id: str | None = None
    # Prompt templates (serving/repository/families.py, PromptTemplate): the texts the tokenizer IR
    # sees are these, formatted; pair_prefix/middle/suffix then hold the template's constant pieces.
    query_template: str = "{query}"  # may also hold {instruction}
    document_template: str = "{document}"
    # The query template when the request's instruction is empty (None: query_template is used).
    query_template_without_instruction: str | None = None
    default_instruction: str | None = None
    # Embedders: prompts by name (sentence-transformers' `prompts`, or --prompt at export), prepended
    # to the text before tokenizing, and the one used when a request names none.
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    # The IR returns single_prefix + text + single_suffix (the server strips them to get the body).
    adds_special_tokens: bool = False

    @property
    def takes_instruction(self) -> bool:
        return "{instruction}" in self.query_template

    def query_text(self, query: str, instruction: str | None = None) -> str:
        """The query as the tokenizer IR sees it: the query template, with the request's instruction
        (None: the default one; empty: the template without instruction, when there is one)."""
        if instruction is None:
            instruction = self.default_instruction
        if not instruction and self.query_template_without_instruction is not None:
            return self.query_template_without_instruction.format(query=query)
        return self.query_template.format(query=query, instruction=instruction or "")

    def document_text(self, document: str) -> str:
        return self.document_template.format(document=document)

    @property
    def pair_overhead(self) -> int:
        return len(self.pair_prefix) + len(self.pair_middle) + len(self.pair_suffix)

    @property
    def single_overhead(self) -> int:
        return len(self.single_prefix) + len(self.single_suffix)


@dataclass(frozen=True)
class ModelInfo:
    """What the exported inference model is; recorded at export time."""

    task: str  # Task value
    source_model: str  # hub id or local folder it was exported from
    architecture: str  # e.g. XLMRobertaForSequenceClassification
    weight_format: str  # fp32 | fp16 | int8 (see quantization)
    hidden_size: int
    num_labels: int = 1  # rerankers; 0 for embedders
    export_id: str | None = None  # the same as the tokenizer's TokenizerInfo.export_id
    family: str = ""  # the recipe of serving/repository/families.py the export followed ("": none)
    conversion: str = "optimum"  # families.Conversion value
    # Embedders: steps between pooling and normalization (families.PostPooling values).
    post_pooling: list[str] = field(default_factory=list)
    # Serving settings as exported. They travel here because OVMS's graph options have no field for
    # some of them (max_doc_length; pooling and truncate in the legacy graph); where graph.pbtxt
    # does set one, the graph wins. None: not recorded (older exports; graph or default decides).
    max_doc_length: int | None = None
    max_allowed_chunks: int | None = None
    pooling: str | None = None
    normalize_embeddings: bool | None = None
    truncate: bool | None = None
    # "none" (fp32, fp16), "weight-only" (int8 weights) or "static" (int8 weights and activations,
    # calibrated); "" in IRs exported before it was recorded.
    quantization: str = ""
    # The accuracy report against the fp32 IR (static int8, --weight-format auto), as accuracy.json.
    accuracy: dict[str, Any] | None = None


def write_info(model: ov.Model, key: str, info: TokenizerInfo | ModelInfo) -> None:
    """Store a dataclass as a JSON string in the IR's runtime info."""
    model.set_rt_info(json.dumps(asdict(info)), key)


def _read_info_dict(model: ov.Model, key: str) -> dict[str, Any]:
    if not model.has_rt_info(key):
        raise KeyError(f"runtime info '{key}' is missing: was this IR exported by export_models?")
    return json.loads(model.get_rt_info(key).astype(str))


def read_tokenizer_info(model: ov.Model) -> TokenizerInfo:
    return TokenizerInfo(**_read_info_dict(model, TOKENIZER_INFO_KEY))


def read_model_info(model: ov.Model) -> ModelInfo:
    return ModelInfo(**_read_info_dict(model, MODEL_INFO_KEY))


def write_ovms_model_info(model: ov.Model, values: dict[str, Any]) -> None:
    """Every key of a Hugging Face config under rt_info `model_info`, as OVMS's export writes it
    (a value OpenVINO cannot store as it is goes in as its str())."""
    for key, value in values.items():
        try:
            model.set_rt_info(value, [OVMS_MODEL_INFO_SECTION, key])
        except (TypeError, RuntimeError, ValueError):
            model.set_rt_info(str(value), [OVMS_MODEL_INFO_SECTION, key])


def _rt_value(value: Any) -> Any:
    if isinstance(value, dict):  # a nested section; an empty one is how a None was saved
        return {str(k): _rt_value(v) for k, v in value.items()} or None
    return value.astype(str)


def read_rt_section(model: ov.Model, section: str = OVMS_MODEL_INFO_SECTION) -> dict[str, Any]:
    """A runtime info section as nested dicts of strings ({} when absent): values read back from an
    IR file are text (numbers as digits, booleans as YES/NO or True/False)."""
    if not model.has_rt_info(section):
        return {}
    raw = model.get_rt_info()[section]
    return {str(k): _rt_value(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def rt_text(model: ov.Model, key: str) -> str | None:
    """A top-level runtime info value as text (None when absent or a section)."""
    if not model.has_rt_info(key):
        return None
    value = model.get_rt_info()[key]
    return None if isinstance(value, dict) else value.astype(str)
