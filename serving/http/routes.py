"""The HTTP endpoints. Handlers validate, take a lease on a model, run its pipeline, shape the reply."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from serving.errors import InvalidRequest, ModelNotFound, ModelUnavailable, ReloadFailed, TooManyDocuments
from serving.http.metrics import ServerMetrics
from serving.http.schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorBody,
    ModelCard,
    ModelList,
    RerankRequest,
    RerankResponse,
)
from serving.pipelines.embeddings import EmbeddingsPipeline
from serving.pipelines.rerank import RerankPipeline
from serving.registry import ModelRegistry, ServedModel
from serving.repository.config import ConfigError
from serving.repository.layout import Task
from serving.settings import ServerSettings

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request (the message names the field)"},
    404: {"model": ErrorBody, "description": "Unknown model"},
    413: {"model": ErrorBody, "description": "Body over the size limit"},
    503: {"model": ErrorBody, "description": "Model not loaded"},
}

RERANK_PATHS = ("/v3/rerank", "/v2/rerank", "/v1/rerank", "/v3/v1/rerank", "/v3/v2/rerank")
EMBEDDINGS_PATHS = ("/v3/embeddings", "/v1/embeddings", "/v3/v1/embeddings")
MODELS_PATHS = ("/v3/models", "/v1/models", "/v3/v1/models")


def _document_text(index: int, document: str | dict[str, Any], rank_fields: list[str] | None) -> str:
    if isinstance(document, str):
        return document
    if rank_fields:
        parts = [f"{name}: {document[name]}" for name in rank_fields if name in document]
        if not parts:
            raise InvalidRequest(f"item {index} has none of the rank_fields {rank_fields}", field="documents")
        return "\n".join(parts)
    if "text" not in document:
        raise InvalidRequest(f"item {index} needs a 'text' field (or pass rank_fields)", field="documents")
    return str(document["text"])


def _model_card(model: ServedModel) -> ModelCard:
    card = ModelCard(
        id=model.name, created=int(model.loaded_at), task=model.task.value, version=model.version
    )
    info = model.tokenizer_info
    if info is not None:
        card.prompts = dict(info.prompts) or None
        card.default_prompt_name = info.default_prompt_name
        card.instruction = info.default_instruction if info.takes_instruction else None
    return card


def build_router(registry: ModelRegistry, settings: ServerSettings, metrics: ServerMetrics) -> APIRouter:
    router = APIRouter()

    def check_count(count: int, field: str) -> None:
        if count > settings.max_documents:
            raise TooManyDocuments(
                f"{count} items; this server takes at most {settings.max_documents} per request "
                "(--max_documents)",
                field=field,
            )

    async def rerank(body: RerankRequest, request: Request) -> Response:
        """Score documents against a query (Cohere rerank). Sorted by relevance, highest first."""
        check_count(len(body.documents), "documents")
        texts = [_document_text(i, doc, body.rank_fields) for i, doc in enumerate(body.documents)]
        with registry.acquire(body.model, Task.RERANK) as servable:
            request.state.model = servable.name
            assert isinstance(servable.pipeline, RerankPipeline)
            outcome = await servable.pipeline.rerank(
                body.query,
                texts,
                raw_scores=body.raw_scores,
                max_chunks_per_doc=body.max_chunks_per_doc,
                max_tokens_per_doc=body.max_tokens_per_doc,
                instruction=body.instruction,
            )
        metrics.observe_batches(servable.name, outcome.batches)
        metrics.documents.labels(request.scope["route"].path, servable.name).observe(len(texts))
        order = np.argsort(-outcome.scores, kind="stable")
        if body.top_n is not None:
            order = order[: body.top_n]
        scores = outcome.scores[order].tolist()
        results: list[dict[str, Any]] = []
        for index, score in zip(order.tolist(), scores, strict=True):
            result: dict[str, Any] = {"index": index, "relevance_score": score}
            if body.return_documents:
                document = body.documents[index]
                result["document"] = (
                    {"text": document} if isinstance(document, str) else {"text": texts[index], **document}
                )
            results.append(result)
        usage = {"prompt_tokens": outcome.prompt_tokens, "total_tokens": outcome.prompt_tokens}
        return JSONResponse(
            {"id": str(uuid.uuid4()), "model": servable.name, "results": results, "usage": usage}
        )

    async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
        """Embed texts or token-id lists (OpenAI embeddings)."""
        check_count(len(body.input), "input")
        is_text = isinstance(body.input[0], str)
        with registry.acquire(body.model, Task.EMBEDDINGS) as servable:
            request.state.model = servable.name
            assert isinstance(servable.pipeline, EmbeddingsPipeline)
            outcome = await servable.pipeline.embed(
                texts=body.input if is_text else None,  # type: ignore[arg-type]
                token_ids=None if is_text else body.input,  # type: ignore[arg-type]
                dimensions=body.dimensions,
                prompt_name=body.prompt_name,
                input_type=body.input_type,
            )
        metrics.observe_batches(servable.name, outcome.batches)
        metrics.documents.labels(request.scope["route"].path, servable.name).observe(len(body.input))
        vectors = outcome.vectors
        encoded: list[Any]
        if body.encoding_format == "base64":
            little_endian = np.ascontiguousarray(vectors, dtype="<f4")
            encoded = [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]
        else:
            encoded = vectors.tolist()
        data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)]
        usage = {"prompt_tokens": outcome.prompt_tokens, "total_tokens": outcome.prompt_tokens}
        return JSONResponse({"object": "list", "data": data, "model": servable.name, "usage": usage})

    async def models() -> ModelList:
        """The models being served (OpenAI model list)."""
        served = sorted(registry.served_models(), key=lambda m: m.name)
        return ModelList(data=[_model_card(m) for m in served])

    for path in RERANK_PATHS:
        router.add_api_route(
            path,
            rerank,
            methods=["POST"],
            response_model=RerankResponse,
            responses=ERROR_RESPONSES,
            tags=["rerank"],
            include_in_schema=path == "/v3/rerank" or path == "/v2/rerank",
        )
    for path in EMBEDDINGS_PATHS:
        router.add_api_route(
            path,
            embeddings,
            methods=["POST"],
            response_model=EmbeddingsResponse,
            responses=ERROR_RESPONSES,
            tags=["embeddings"],
            include_in_schema=path == "/v3/embeddings",
        )
    for path in MODELS_PATHS:
        router.add_api_route(
            path, models, methods=["GET"], tags=["models"], include_in_schema=path == "/v3/models"
        )

    @router.get("/v1/config", tags=["config"])
    async def config_status() -> dict[str, Any]:
        """Per model: each version's state and status (error_code, error_message), as OVMS reports them."""
        return registry.config_status()

    @router.post("/v1/config/reload", tags=["config"], responses={400: {"model": ErrorBody}})
    async def config_reload() -> dict[str, Any]:
        """Re-read config.json and the version folders now; returns the new /v1/config."""
        try:
            await asyncio.to_thread(registry.reload, True)
        except ConfigError as err:
            raise ReloadFailed(f"{err}; the loaded models keep serving") from err
        return registry.config_status()

    @router.get("/v2/health/live", tags=["health"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/v2/health/ready", tags=["health"], responses={503: {"model": ErrorBody}})
    async def ready() -> Response:
        if registry.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"error": "models are still loading"}, status_code=503)

    @router.get("/v2/models/{name:path}/ready", tags=["health"], responses=ERROR_RESPONSES)
    async def model_ready(name: str) -> dict[str, Any]:
        """Whether the model (name URL-encoded, e.g. BAAI%2Fbge-reranker-large) has a loaded version."""
        if not registry.is_known(name):
            raise ModelNotFound(f"model '{name}' is not configured")
        if not registry.is_model_ready(name):
            raise ModelUnavailable(f"model '{name}' has no loaded version (see GET /v1/config)")
        return {"name": name, "ready": True}

    @router.get("/metrics", tags=["metrics"], response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
