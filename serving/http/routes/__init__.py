"""The HTTP endpoints, one module per API family; routes/service.py runs the model requests."""

from __future__ import annotations

from fastapi import APIRouter

from serving.http.access import AccessRules, ApiKeys, ConcurrencyGate, KeyCheck
from serving.http.metrics import ServerMetrics
from serving.http.routes import admin, cohere, openai, tei, text_pairs
from serving.http.routes.service import ModelService
from serving.registry import ModelRegistry
from serving.settings import ServerSettings


def build_router(
    registry: ModelRegistry, settings: ServerSettings, metrics: ServerMetrics, access: AccessRules
) -> APIRouter:
    """Every route, its access rules added to `access`: model routes need a key (when keys are set)
    and pass the concurrency gate; configuration routes need a key; health is open; /metrics is
    open unless --protect_metrics."""
    service = ModelService(registry, settings, metrics)
    key_check = KeyCheck(ApiKeys(settings.api_keys, settings.api_key_file))
    gate = ConcurrencyGate(settings.max_concurrent_requests)

    router = APIRouter()
    model_routers = (
        cohere.build_router(service),
        openai.build_router(service),
        tei.build_router(service),
        text_pairs.build_router(service),  # last: its path /{model}/post takes any model name
    )
    for model_routes in model_routers:
        router.include_router(model_routes)
        access.add(model_routes.routes, key_check, gate)
    configuration = admin.build_model_router(registry)
    router.include_router(configuration)
    access.add(configuration.routes, key_check)
    router.include_router(admin.build_health_router(registry))
    metrics_routes = admin.build_metrics_router(metrics)
    router.include_router(metrics_routes)
    if settings.protect_metrics:
        access.add(metrics_routes.routes, key_check)
    return router
