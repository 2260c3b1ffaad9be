"""Request and response bodies of the HTTP API (they also make the OpenAPI schema at /docs).

Requests are strict about types (a number is not a string, "3" is not an integer) and
accept fields they do not use, because the Cohere and OpenAI SDKs send a few (rank_fields,
priority, user...). Fields with several accepted shapes are checked by hand so the error
names the field and says what is accepted, instead of one pydantic error per union branch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, StrictInt, StrictStr

# Every integer a client sends is bounded, so no value can overflow numpy's int64 further down.
MAX_INT = 2**31 - 1

# ---- rerank (Cohere) ------------------------------------------------------------------------


def _check_documents(value: Any) -> list[str | dict[str, Any]]:
    if not isinstance(value, list):
        raise ValueError("must be a list of strings or of objects with a 'text' field")
    if not value:
        raise ValueError("must not be empty")
    for index, item in enumerate(value):
        if isinstance(item, str):
            if not item:
                raise ValueError(f"item {index} is an empty string")
        elif isinstance(item, dict):
            text = item.get("text")
            if "text" in item and not isinstance(text, str):
                raise ValueError(f"item {index}: 'text' must be a string")
            if isinstance(text, str) and not text:
                raise ValueError(f"item {index}: 'text' is an empty string")
        else:
            raise ValueError(f"item {index} must be a string or an object with a 'text' field")
    return value


Documents = Annotated[
    list[str | dict[str, Any]],
    PlainValidator(_check_documents, json_schema_input_type=list[str | dict[str, Any]]),
]


class RerankRequest(BaseModel):
    """Cohere rerank (v1 and v2 SDKs); also what GPUStack/Jina-style clients send."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr | None = Field(None, description="Model name; optional when one reranker is served")
    query: StrictStr = Field(min_length=1)
    documents: Documents = Field(description="Strings, or objects with a 'text' field")
    top_n: StrictInt | None = Field(None, ge=1, le=MAX_INT, description="Return the best N; default all")
    return_documents: StrictBool | None = Field(
        None, description="Return each document's text; default false, true on /v1/rerank (GPUStack, Jina)"
    )
    max_chunks_per_doc: StrictInt | None = Field(
        None, ge=1, le=MAX_INT, description="Chunks kept per long document"
    )
    max_tokens_per_doc: StrictInt | None = Field(
        None, ge=1, le=MAX_INT, description="Cohere v2: documents are cut to this many tokens first"
    )
    rank_fields: list[StrictStr] | None = Field(
        None, min_length=1, description="Object documents: the fields ranked, in order (default ['text'])"
    )
    raw_scores: StrictBool = Field(False, description="Return the logit instead of sigmoid(logit)")
    instruction: StrictStr | None = Field(
        None,
        description="Instruction-following rerankers (Qwen3-Reranker, mxbai-rerank-v2): the task "
        "instruction of the prompt template; default the one recorded at export",
    )


class RerankDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RerankMeta(BaseModel):
    """Cohere's meta (api_version as an object, as its SDK types it) and the counts rerank services add."""

    model_config = ConfigDict(extra="allow")
    api_version: dict[str, Any]
    processing_time_ms: int
    total_documents: int
    returned_documents: int


class RerankResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    model: str
    results: list[RerankResult]
    usage: Usage
    meta: RerankMeta


# ---- embeddings (OpenAI) --------------------------------------------------------------------

EmbeddingsInputShape = str | list[str] | list[int] | list[list[int]]


def embeddings_input(value: Any) -> list[str] | list[list[int]]:
    """Normalise to a list of texts or a list of token-id lists."""
    if isinstance(value, str):
        if not value:
            raise ValueError("must not be an empty string")
        return [value]
    if not isinstance(value, list):
        raise ValueError("must be a string, a list of strings, a list of token ids or a list of such lists")
    if not value:
        raise ValueError("must not be empty")
    if all(isinstance(item, str) for item in value):
        for index, item in enumerate(value):
            if not item:
                raise ValueError(f"item {index} is an empty string")
        return value
    if all(_is_token_id(item) for item in value):
        return [value]
    if all(isinstance(item, list) for item in value):
        for index, item in enumerate(value):
            if not item:
                raise ValueError(f"item {index} is an empty list of token ids")
            if not all(_is_token_id(token) for token in item):
                raise ValueError(f"item {index} must be a list of integer token ids (int32 values)")
        return value
    raise ValueError(
        "must be a string, a list of strings, a list of token ids (int32 values) or a list of such lists "
        "(not mixed)"
    )


def _is_token_id(value: Any) -> bool:
    """An integer that fits int32 (out-of-vocabulary ids are the model's to refuse, with its size)."""
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT


EmbeddingsInput = Annotated[
    list[str] | list[list[int]],
    PlainValidator(embeddings_input, json_schema_input_type=EmbeddingsInputShape),
]


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr | None = Field(None, description="Model name; optional when one embedder is served")
    input: EmbeddingsInput
    encoding_format: Literal["float", "base64", "int8", "uint8", "binary", "ubinary"] = Field(
        "float",
        description="base64: little-endian float32 bytes, as the OpenAI SDK decodes them; int8, uint8, "
        "binary, ubinary: quantized as Cohere's embedding_types (docs/api/openai.md, 'Quantized embeddings')",
    )
    dimensions: StrictInt | None = Field(
        None, ge=1, le=MAX_INT, description="Keep the first N dimensions (renormalized)"
    )
    user: StrictStr | None = Field(None, description="Accepted and ignored")
    input_type: StrictStr | None = Field(
        None,
        description="query, document (also Cohere's search_query, search_document, classification, "
        "clustering): the model's prompt for that kind of text; ignored by models without prompts",
    )
    prompt_name: StrictStr | None = Field(
        None, description="One of the model's prompts by name (GET /v3/models lists them)"
    )


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | list[int] | str


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


# ---- embed (Cohere) -------------------------------------------------------------------------

EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]


def _check_texts(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of strings")
    if not value:
        raise ValueError("must not be empty")
    for index, item in enumerate(value):
        if not item:
            raise ValueError(f"item {index} is an empty string")
    return value


Texts = Annotated[list[str], PlainValidator(_check_texts, json_schema_input_type=list[str])]


class CohereEmbedRequest(BaseModel):
    """cohere.ClientV2.embed (/v2/embed) and cohere.Client.embed (/v1/embed); texts only."""

    model_config = ConfigDict(extra="allow")

    texts: Texts = Field(description="The texts to embed (this server embeds no images)")
    model: StrictStr | None = Field(None, description="Model name or alias; optional with one embedder")
    input_type: StrictStr | None = Field(
        None,
        description="search_query, search_document, classification, clustering: the model's prompt for "
        "that kind of text; ignored by models without prompts",
    )
    embedding_types: list[EmbeddingType] | None = Field(
        None, min_length=1, description="Default: float. int8/uint8/binary/ubinary: quantized"
    )
    output_dimension: StrictInt | None = Field(
        None, ge=1, le=MAX_INT, description="Keep the first N dimensions (renormalized)"
    )
    truncate: Literal["NONE", "START", "END", "none", "start", "end"] | None = Field(
        None, description="END (default): cut long texts at the end; START: at the start; NONE: refuse them"
    )
    max_tokens: StrictInt | None = Field(
        None, ge=1, le=MAX_INT, description="Cut each text to this many tokens (special tokens not counted)"
    )


class CohereEmbedMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    api_version: dict[str, Any]
    billed_units: dict[str, float]


class CohereEmbedResponse(BaseModel):
    id: str
    response_type: Literal["embeddings_floats", "embeddings_by_type"]
    embeddings: list[list[float]] | dict[str, list[list[float]] | list[list[int]] | list[str]]
    texts: list[str]
    meta: CohereEmbedMeta


# ---- Text Embeddings Inference --------------------------------------------------------------

TruncationDirection = Literal["Right", "Left", "right", "left"]


class TeiRerankRequest(BaseModel):
    """TEI's POST /rerank."""

    model_config = ConfigDict(extra="allow")

    query: StrictStr = Field(min_length=1)
    texts: list[StrictStr] = Field(description="The documents (empty: 400 with error_type Empty)")
    truncate: StrictBool | None = Field(
        None, description="Cut a document whose pair is over the model's limit (default true); false: 422"
    )
    truncation_direction: TruncationDirection = Field(
        "Right", description="Right: cut its end; Left: its start"
    )
    raw_scores: StrictBool = Field(False, description="The logit instead of sigmoid(logit)")
    return_text: StrictBool = Field(False, description="Return each text")
    model: StrictStr | None = Field(
        None, description="Model name or alias (TEI has none); default as /v3/rerank"
    )


class TeiRank(BaseModel):
    index: int
    text: str | None = None
    score: float


class TeiEmbedRequest(BaseModel):
    """TEI's POST /embed (also what huggingface_hub's InferenceClient.feature_extraction sends)."""

    model_config = ConfigDict(extra="allow")

    inputs: Annotated[Any, PlainValidator(lambda value: value, json_schema_input_type=EmbeddingsInputShape)]
    normalize: StrictBool | None = Field(None, description="L2-normalize; default as exported (normalized)")
    truncate: StrictBool | None = Field(
        None, description="Cut inputs over the model's limit; default as exported (--truncate); false: 422"
    )
    truncation_direction: TruncationDirection = Field(
        "Right", description="Right: cut the end; Left: the start"
    )
    prompt_name: StrictStr | None = Field(None, description="One of the model's prompts by name")
    dimensions: StrictInt | None = Field(None, ge=1, le=MAX_INT, description="Keep the first N dimensions")
    model: StrictStr | None = Field(None, description="Model name or alias (TEI has none)")


class SimilarityInputs(BaseModel):
    source_sentence: StrictStr = Field(min_length=1)
    sentences: list[StrictStr]


class SimilarityParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_name: StrictStr | None = None
    truncate: StrictBool | None = None
    truncation_direction: TruncationDirection = "Right"


class TeiSimilarityRequest(BaseModel):
    """TEI's POST /similarity (huggingface_hub's InferenceClient.sentence_similarity)."""

    model_config = ConfigDict(extra="allow")

    inputs: SimilarityInputs
    parameters: SimilarityParameters | None = None
    model: StrictStr | None = Field(None, description="Model name or alias (TEI has none)")


class TeiInfo(BaseModel):
    model_id: str
    model_sha: str | None = None
    model_dtype: str
    served_model_name: str
    model_type: dict[str, dict[str, Any]]
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None = None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None = None
    docker_label: str | None = None


class TeiErrorBody(BaseModel):
    error: str
    error_type: Literal[
        "Validation", "Empty", "Tokenizer", "Backend", "Overloaded", "Unhealthy", "Unauthorized"
    ]


TEI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": TeiErrorBody, "description": "An empty list or text (error_type Empty)"},
    401: {"model": TeiErrorBody, "description": "API keys are configured and none valid was sent"},
    404: {"model": TeiErrorBody, "description": "Unknown model"},
    413: {"model": TeiErrorBody, "description": "Body over the size limit"},
    422: {
        "model": TeiErrorBody,
        "description": "Invalid request, or an input over the limit with truncate false",
    },
    424: {"model": TeiErrorBody, "description": "The model failed on this request (error_type Backend)"},
    429: {"model": TeiErrorBody, "description": "Too many requests in progress (error_type Overloaded)"},
    503: {"model": TeiErrorBody, "description": "Model not loaded (error_type Unhealthy)"},
    504: {"model": TeiErrorBody, "description": "The request took longer than --request_timeout"},
}


# ---- text_pairs (the FastAPI bge-reranker service) ------------------------------------------


class TextPairsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    text_pairs: list[list[StrictStr]] | StrictStr = Field(
        description="[[query, document], ...] as JSON, or that list written in Python literal syntax"
    )


class TextPairsResponse(BaseModel):
    text_pairs: list[list[str]]
    rerank_scores: list[float] = Field(description="Raw logits, in the order of text_pairs")
    scores: list[float] = Field(description="The same as rerank_scores")
    request_time: str
    response_time: str
    code: int


# ---- models, config, health -----------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ovtext"
    task: str
    version: int
    aliases: list[str] = Field(default_factory=list, description="Other names requests may use")
    prompts: dict[str, str] | None = None  # embedders with prompts: name -> text prepended
    default_prompt_name: str | None = None
    instruction: str | None = None  # instruction-following rerankers: the default instruction
    weight_format: str | None = None  # fp32 | fp16 | int8, as exported
    quantization: str | None = None  # none | weight-only | static (int8 activations too)
    # Quantized exports: the figures against the fp32 model (export_models/accuracy.py), e.g.
    # {"ndcg@10": 0.998, "top1": 1.0, ...}, and the gate they passed.
    accuracy: dict[str, Any] | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    error: str


class HealthStatus(BaseModel):
    status: Literal["healthy"]
    timestamp: str
    model_loaded: bool


# Error statuses the model routes document in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request (the message names the field)"},
    401: {"model": ErrorBody, "description": "API keys are configured and none valid was sent"},
    404: {"model": ErrorBody, "description": "Unknown model"},
    413: {"model": ErrorBody, "description": "Body over the size limit"},
    429: {"model": ErrorBody, "description": "Too many requests in progress (see Retry-After)"},
    500: {"model": ErrorBody, "description": "The model failed on this request"},
    503: {"model": ErrorBody, "description": "Model not loaded"},
    504: {"model": ErrorBody, "description": "The request took longer than --request_timeout"},
}
