"""Text Embeddings Inference (TEI): POST /rerank, /embed, /similarity, GET /info, and POST / (where
huggingface_hub's InferenceClient(base_url=<server>) posts; TEI answers it by the model's kind, here
by the body's: `texts` reranks, `inputs.source_sentence` compares, `inputs` embeds).

Errors on these routes have TEI's body `{"error", "error_type"}` and TEI 1.9's codes: 400 Empty,
422 Validation (an input over the limit with `truncate: false` included: TEI answered 413 before
1.9), 424 Backend, 429 Overloaded, 503 Unhealthy. Success responses carry TEI's x-compute-* headers.
TEI serves one model; here a `model` field picks one (default: as the Cohere and OpenAI routes).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from serving.errors import (
    BodyTooLarge,
    EmptyInput,
    InvalidRequest,
    ModelFailure,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    RequestTimedOut,
    ServingError,
    Unauthorized,
)
from serving.http.errors import register_error_body
from serving.http.middleware import elapsed, milliseconds
from serving.http.responses import JSONBody, float_list, json_body, json_list
from serving.http.routes.cohere import ranked
from serving.http.routes.service import ModelAnswer, ModelService, request_field_names
from serving.http.schemas import (
    TEI_ERROR_RESPONSES,
    SimilarityParameters,
    TeiEmbedRequest,
    TeiInfo,
    TeiRank,
    TeiRerankRequest,
    TeiSimilarityRequest,
    embeddings_input,
)
from serving.pipelines.embeddings import EmbeddingsParams
from serving.pipelines.framing import Overflow
from serving.pipelines.rerank import RerankParams, RerankPipeline
from serving.registry import Lease, LoadedVersion
from serving.repository.config import EmbeddingsOptions
from serving.repository.layout import Pooling, Task

TEI_PATHS = frozenset({"/rerank", "/embed", "/similarity", "/info", "/", "/invocations"})

# TEI's status and error_type per kind of error (anything else: 422 Validation).
TEI_ERRORS: dict[type[ServingError], tuple[int, str]] = {
    EmptyInput: (400, "Empty"),
    Unauthorized: (401, "Unauthorized"),  # TEI itself answers a bare 401
    ModelNotFound: (404, "Validation"),
    BodyTooLarge: (413, "Validation"),
    ModelFailure: (424, "Backend"),
    Overloaded: (429, "Overloaded"),
    ModelUnavailable: (503, "Unhealthy"),
    RequestTimedOut: (504, "Backend"),
}
DTYPES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}
POOLING_NAMES = {Pooling.CLS: "cls", Pooling.MEAN: "mean", Pooling.LAST: "last_token"}


def tei_error(error: ServingError) -> tuple[int, str]:
    for kind in type(error).__mro__:
        if kind in TEI_ERRORS:
            return TEI_ERRORS[kind]
    return 422, "Validation"


register_error_body(
    lambda path: path in TEI_PATHS,
    lambda error, _status: {"error": str(error), "error_type": tei_error(error)[1]},
    lambda error, _status: tei_error(error)[0],
)


def server_version() -> str:
    try:
        return metadata.version("ovtext")
    except metadata.PackageNotFoundError:
        return "unknown"


def overflow(truncate: bool | None, direction: str, default: Overflow | None) -> Overflow | None:
    """TEI's truncate: true cuts on the side truncation_direction names, false refuses, null is the
    server's default (`default`)."""
    if truncate is None:
        return default
    if not truncate:
        return Overflow.REFUSE
    return Overflow.CUT_LEFT if direction.lower() == "left" else Overflow.CUT_RIGHT


def compute_headers(served: ModelAnswer, request: Request, characters: int) -> dict[str, str]:
    """TEI's x-compute-* headers (milliseconds; the device that computed, where TEI always says
    gpu+optimized) beside the x-*-time ones every model route sends."""
    return {
        **served.headers,
        "x-compute-type": served.device.lower(),
        "x-compute-time": milliseconds(elapsed(request.scope)),
        "x-compute-characters": str(characters),
        "x-compute-tokens": str(served.outcome.prompt_tokens),
    }


def check_not_empty(texts: list[str], field: str) -> None:
    if not texts:
        raise EmptyInput("must not be empty", field=field)
    for index, text in enumerate(texts):
        if not text:
            raise EmptyInput(f"item {index} is an empty string", field=field)


def build_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    async def rerank(body: TeiRerankRequest, request: Request) -> JSONBody:
        """Rank texts against a query (TEI). Sorted by score, highest first."""
        check_not_empty(body.texts, "texts")
        # truncate null: cut, as TEI 1.9 does (its --auto-truncate now defaults to true)
        cutting = overflow(body.truncate is not False, body.truncation_direction, None)
        assert cutting is not None
        with request_field_names({"documents": "texts"}):
            params = RerankParams(raw_scores=body.raw_scores, overflow=cutting)
            served = await service.rerank(request, body.model, body.query, body.texts, params)
        ranks: list[dict[str, Any]] = []
        for index, score in ranked(served.outcome.scores, None):
            rank: dict[str, Any] = {"index": index}
            if body.return_text:
                rank["text"] = body.texts[index]
            rank["score"] = score
            ranks.append(rank)
        characters = len(body.query) * len(body.texts) + sum(len(text) for text in body.texts)
        return json_body(ranks, headers=compute_headers(served, request, characters))

    async def embed(body: TeiEmbedRequest, request: Request) -> JSONBody:
        """Embed one input or many (TEI): always a list of vectors."""
        if body.inputs in ("", []):
            raise EmptyInput("must not be empty", field="inputs")
        try:
            inputs = embeddings_input(body.inputs)
        except ValueError as error:
            raise InvalidRequest(str(error), field="inputs") from error
        is_text = isinstance(inputs[0], str)
        with request_field_names({"input": "inputs"}):
            params = EmbeddingsParams(
                dimensions=body.dimensions,
                prompt_name=body.prompt_name,
                overflow=overflow(body.truncate, body.truncation_direction, None),
                normalized=body.normalize,
            )
            served = await service.embed(
                request,
                body.model,
                params,
                texts=inputs if is_text else None,  # type: ignore[arg-type]
                token_ids=None if is_text else inputs,  # type: ignore[arg-type]
            )
        vectors = served.outcome.vectors
        characters = sum(len(item) for item in inputs)
        return await json_list(
            float_list(vectors), vectors.size, compute_headers(served, request, characters)
        )

    async def similarity(body: TeiSimilarityRequest, request: Request) -> JSONBody:
        """Cosine similarity of a sentence with each of several (TEI)."""
        check_not_empty(body.inputs.sentences, "inputs.sentences")
        limit = service.settings.max_inputs
        service.check_count(len(body.inputs.sentences), "inputs.sentences", limit, "--max_inputs")
        parameters = body.parameters or SimilarityParameters()
        texts = [body.inputs.source_sentence, *body.inputs.sentences]
        params = EmbeddingsParams(
            prompt_name=parameters.prompt_name,
            overflow=overflow(parameters.truncate, parameters.truncation_direction, None),
            normalized=True,
        )
        served = await service.embed(request, body.model, params, texts=texts, uncounted=1)
        vectors = served.outcome.vectors
        characters = sum(len(text) for text in texts)
        return json_body(
            float_list(vectors[1:] @ vectors[0]), headers=compute_headers(served, request, characters)
        )

    async def root(request: Request) -> JSONBody:
        """TEI's POST /: rerank for {"query", "texts"}, similarity for {"inputs": {"source_sentence",
        "sentences"}}, embed for {"inputs"}."""
        try:
            payload = await request.json()
        except ValueError as error:
            raise InvalidRequest("malformed JSON", field="body") from error
        except RecursionError as error:
            raise InvalidRequest("JSON nested too deeply", field="body") from error
        if not isinstance(payload, dict):
            raise InvalidRequest("must be a JSON object", field="body")
        handlers: list[tuple[type[BaseModel], Any]] = [
            (TeiRerankRequest, rerank),
            (TeiSimilarityRequest, similarity),
            (TeiEmbedRequest, embed),
        ]
        if "texts" in payload or "query" in payload:
            schema, handler = handlers[0]
        elif isinstance(payload.get("inputs"), dict):
            schema, handler = handlers[1]
        else:
            schema, handler = handlers[2]
        try:
            body = schema.model_validate(payload)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from error
        return await handler(body, request)

    def info_lease(model: str | None) -> Lease:
        """The model /info describes: the one named, else the reranker /rerank would use, else the
        embedder /embed would use."""
        refusals: list[ServingError] = []
        for task in (Task.RERANK, Task.EMBEDDINGS):
            name = model if model is not None else service.default_model(task)
            try:
                return service.registry.acquire(name, task)
            except (ModelNotFound, InvalidRequest) as error:
                refusals.append(error)
        raise refusals[0]

    async def info(model: str | None = None) -> TeiInfo:
        """What TEI's GET /info reports, for the model `model` (name or alias) or the default one."""
        with info_lease(model) as servable:
            return tei_info(servable, service)

    routes: list[tuple[str, Any, str, Any]] = [
        ("/rerank", rerank, "POST", list[TeiRank]),
        ("/embed", embed, "POST", list[list[float]]),
        ("/similarity", similarity, "POST", list[float]),
        ("/info", info, "GET", TeiInfo),
    ]
    for path, endpoint, method, response_model in routes:
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            response_model=response_model,
            responses=TEI_ERROR_RESPONSES,
            tags=["text-embeddings-inference"],
        )
    for path in ("/", "/invocations"):
        router.add_api_route(path, root, methods=["POST"], include_in_schema=False)
    return router


def tei_info(servable: LoadedVersion, service: ModelService) -> TeiInfo:
    settings, info = service.settings, servable.tokenizer_info
    weight_format = servable.model_info.weight_format if servable.model_info else ""
    if isinstance(servable.pipeline, RerankPipeline):
        model_type = {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}
        batch_size, auto_truncate = settings.max_documents, True
    else:
        options = servable.pipeline.options
        assert isinstance(options, EmbeddingsOptions)
        model_type = {"embedding": {"pooling": POOLING_NAMES[options.pooling]}}
        batch_size, auto_truncate = settings.max_inputs, options.truncate
    return TeiInfo(
        model_id=servable.name,
        model_dtype=DTYPES.get(weight_format, weight_format or "unknown"),
        served_model_name=servable.name,
        model_type=model_type,
        max_concurrent_requests=settings.max_concurrent_requests,
        max_input_length=info.max_length,
        max_batch_tokens=settings.batch_token_budget,
        max_client_batch_size=batch_size,
        auto_truncate=auto_truncate,
        tokenization_workers=1,
        version=server_version(),
    )
