"""The FastAPI application: routes, error mapping, body limit and metrics around a ModelRegistry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from serving.http.access import AccessRules, BodyBudget
from serving.http.errors import install_error_handlers
from serving.http.metrics import ServerMetrics
from serving.http.middleware import AdmissionMiddleware, MetricsMiddleware, RequestContextMiddleware
from serving.http.responses import JSONBody
from serving.http.routes import build_router
from serving.registry import ModelRegistry
from serving.settings import ServerSettings

DESCRIPTION = """OpenVINO rerankers and text embedders behind the Cohere rerank API (`/v3/rerank`)
and the OpenAI embeddings API (`/v3/embeddings`). Errors are `{"error": "..."}` naming the field."""


def create_app(registry: ModelRegistry, settings: ServerSettings, manage_registry: bool = True) -> FastAPI:
    """The app. With `manage_registry`, the registry starts loading at startup and stops at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_registry:
            registry.start()
        try:
            yield
        finally:
            if manage_registry:
                registry.stop()

    app = FastAPI(
        title="ovtext serving",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=JSONBody,
        # /docs and /openapi.json are the documented pages; no ReDoc copy, no OAuth2 (keys are Bearer).
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # A path with a trailing slash is a 404 like any unknown path: a redirect would be built
        # from the client's Host header.
        redirect_slashes=False,
    )
    metrics = ServerMetrics(registry.queue_sizes)
    app.state.registry = registry
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    access = AccessRules()
    app.include_router(build_router(registry, settings, metrics, access))
    # Added last = outermost: metrics see every request, including those admission refuses,
    # and every response carries x-request-id and x-total-time.
    app.add_middleware(
        AdmissionMiddleware,
        access=access,
        max_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        budget=BodyBudget(settings.max_body_memory),
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContextMiddleware)
    return app
