"""The HTTP endpoints, one module per API family; routes/service.py runs the model requests."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.http.access import ApiKeys, ConcurrencyGate, KeyCheck
from serving.http.metrics import ServerMetrics
from serving.http.routes import admin, cohere, openai, tei, text_pairs
from serving.http.routes.service import ModelService
from serving.registry import ModelRegistry
from serving.settings import ServerSettings


def build_router(registry: ModelRegistry, settings: ServerSettings, metrics: ServerMetrics) -> APIRouter:
    """Every route, with its access rules: model routes need a key (when keys are set) and pass the
    concurrency gate; configuration routes need a key; health is open; /metrics is open unless
    --protect_metrics."""
    service = ModelService(registry, settings, metrics)
    key_check = Depends(KeyCheck(ApiKeys(settings.api_keys, settings.api_key_file)))
    gate = Depends(ConcurrencyGate(settings.max_concurrent_requests))

    router = APIRouter()
    model_routers = (
        cohere.build_router(service),
        openai.build_router(service),
        tei.build_router(service),
        text_pairs.build_router(service),  # last: its path /{model}/post takes any model name
    )
    for model_routes in model_routers:
        router.include_router(model_routes, dependencies=[key_check, gate])
    router.include_router(admin.build_model_router(registry), dependencies=[key_check])
    router.include_router(admin.build_health_router(registry))
    metrics_dependencies = [key_check] if settings.protect_metrics else []
    router.include_router(admin.build_metrics_router(metrics), dependencies=metrics_dependencies)
    return router
