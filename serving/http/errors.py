"""Every error a client can cause, mapped to an HTTP status and a {"error": "..."} body in one place.

Client mistakes are logged as one line (no traceback); only unexpected exceptions log one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.errors import (
    BodyTooLarge,
    InputTooLong,
    InvalidRequest,
    ModelNotFound,
    ModelUnavailable,
    NonFiniteOutput,
    ReloadFailed,
    ServingError,
    TooManyChunks,
    TooManyDocuments,
)

log = logging.getLogger("serving.http")

STATUS: dict[type[ServingError], int] = {
    InvalidRequest: 400,
    TooManyDocuments: 400,
    TooManyChunks: 400,
    InputTooLong: 400,
    ReloadFailed: 400,
    ModelNotFound: 404,
    BodyTooLarge: 413,
    ModelUnavailable: 503,
    NonFiniteOutput: 500,
}


def status_of(error: ServingError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def _count(request: Request, kind: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        model = request.scope.get("state", {}).get("model", "")
        metrics.errors.labels(_endpoint(request), model, kind).inc()


def _field_path(location: tuple[Any, ...]) -> str:
    parts = (
        [str(p) for p in location[1:]] if location and location[0] == "body" else [str(p) for p in location]
    )
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


def validation_message(error: RequestValidationError) -> str:
    """One line naming the field(s), e.g. "documents: item 2 is an empty string"."""
    messages = []
    for item in error.errors()[:3]:
        kind, location = item.get("type", ""), tuple(item.get("loc", ()))
        message = str(item.get("msg", "invalid"))
        if kind == "json_invalid":
            reason = (item.get("ctx") or {}).get("error", "")
            position = location[1] if len(location) > 1 else "?"
            messages.append(f"body: malformed JSON ({reason} at character {position})")
            continue
        if location == ("body",) and kind == "missing":
            messages.append("body: a JSON object is required")
            continue
        if location == ("body",) and kind in ("model_attributes_type", "dict_type"):
            messages.append("body: must be a JSON object")
            continue
        message = message.removeprefix("Value error, ")
        if kind == "missing":
            message = "field required"
        messages.append(f"{_field_path(location)}: {message}")
    extra = len(error.errors()) - 3
    return "; ".join(messages) + (f" (and {extra} more)" if extra > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError) -> JSONResponse:
        status = status_of(error)
        log.info("%s %s -> %d: %s", request.method, request.url.path, status, error)
        _count(request, type(error).__name__)
        return error_response(status, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        message = validation_message(error)
        log.info("%s %s -> 400: %s", request.method, request.url.path, message)
        _count(request, InvalidRequest.__name__)
        return error_response(400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        _count(request, f"HTTP{error.status_code}")
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif error.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        _count(request, "InternalError")
        return error_response(500, f"internal error: {type(error).__name__}")
