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
    return_documents: StrictBool = False
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


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    usage: Usage


# ---- embeddings (OpenAI) --------------------------------------------------------------------

EmbeddingsInputShape = str | list[str] | list[int] | list[list[int]]


def _check_input(value: Any) -> list[str] | list[list[int]]:
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
    PlainValidator(_check_input, json_schema_input_type=EmbeddingsInputShape),
]


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr | None = Field(None, description="Model name; optional when one embedder is served")
    input: EmbeddingsInput
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: little-endian float32 bytes, as the OpenAI SDK decodes them"
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
    embedding: list[float] | str


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


# ---- models, config, health -----------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ovtext"
    task: str
    version: int
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
