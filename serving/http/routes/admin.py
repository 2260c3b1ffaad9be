"""Models, configuration, health and metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from serving.errors import ModelNotFound, ModelUnavailable, ReloadFailed
from serving.http.metrics import ServerMetrics
from serving.http.responses import JSONBody, json_body
from serving.http.schemas import ERROR_RESPONSES, ErrorBody, HealthStatus, ModelCard, ModelList, TeiErrorBody
from serving.registry import ModelRegistry, ServedModel
from serving.repository.config import ConfigError

MODELS_PATHS = ("/v3/models", "/v1/models", "/v3/v1/models", "/models")


def model_card(model: ServedModel) -> ModelCard:
    card = ModelCard(
        id=model.name,
        created=int(model.loaded_at),
        task=model.task.value,
        version=model.version,
        aliases=list(model.aliases),
        inference_precision=model.inference_precision,
    )
    info = model.tokenizer_info
    if info is not None:
        card.prompts = dict(info.prompts) or None
        card.default_prompt_name = info.default_prompt_name
        card.instruction = info.default_instruction if info.takes_instruction else None
    exported = model.model_info
    if exported is not None:
        card.weight_format = exported.weight_format
        card.quantization = exported.quantization or None
        card.sentence_modules = list(exported.sentence_modules) or None
        if exported.accuracy:
            card.accuracy = {key: exported.accuracy.get(key) for key in ("metrics", "gate", "chosen")}
    return card


def build_model_router(registry: ModelRegistry) -> APIRouter:
    """Routes that describe or change what is served (they need an API key when keys are set)."""
    router = APIRouter()

    async def models() -> ModelList:
        """The models being served (OpenAI model list), with their prompts and default instruction."""
        served = sorted(registry.served_models(), key=lambda m: m.name)
        return ModelList(data=[model_card(m) for m in served])

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

    return router


def build_health_router(registry: ModelRegistry) -> APIRouter:
    """Liveness and readiness: always open (orchestrators probe them without keys)."""
    router = APIRouter()

    @router.get("/v2/health/live", tags=["health"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/v2/health/ready", tags=["health"], responses={503: {"model": ErrorBody}})
    async def ready() -> JSONBody:
        if registry.ready:
            return json_body({"ready": True})
        return json_body({"error": "models are still loading"}, status_code=503)

    async def health() -> JSONBody:
        """Healthy once the models were loaded and one serves: 200 (what TEI's, the FastAPI rerank
        services' and huggingface_hub's health checks look at); else 503 with TEI's error body."""
        if registry.ready and registry.served_models():
            now = datetime.now(UTC).isoformat()
            return json_body({"status": "healthy", "timestamp": now, "model_loaded": True})
        reason = "models are still loading" if not registry.ready else "no model has a loaded version"
        return json_body(
            {"status": "unhealthy", "error": f"unhealthy: {reason}", "error_type": "Unhealthy"},
            status_code=503,
        )

    router.add_api_route(
        "/health",
        health,
        methods=["GET"],
        tags=["health"],
        response_model=HealthStatus,
        responses={503: {"model": TeiErrorBody, "description": "Not loaded yet, or no model serves"}},
    )
    for path in ("/", "/ping"):  # TEI answers its health on these too
        router.add_api_route(path, health, methods=["GET"], include_in_schema=False)

    @router.get("/v2/models/{name:path}/ready", tags=["health"], responses=ERROR_RESPONSES)
    async def model_ready(name: str) -> dict[str, Any]:
        """Whether the model (name URL-encoded, e.g. BAAI%2Fbge-reranker-large) has a loaded version."""
        if not registry.is_known(name):
            raise ModelNotFound(f"model '{name}' is not configured")
        if not registry.is_model_ready(name):
            raise ModelUnavailable(f"model '{name}' has no loaded version (see GET /v1/config)")
        return {"name": name, "ready": True}

    return router


def build_metrics_router(metrics: ServerMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", tags=["metrics"], response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
