"""Every error a client can cause, mapped to an HTTP status and a {"error": "..."} body in one place.

Client mistakes are logged as one line (no traceback); only unexpected exceptions log one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from serving.client_text import loggable
from serving.errors import (
    BodyTooLarge,
    EmptyInput,
    InputTooLong,
    InvalidRequest,
    ModelFailure,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    ReloadFailed,
    RequestBodyTimedOut,
    RequestTimedOut,
    ServingError,
    TooManyChunks,
    TooManyDocuments,
    TooManyTokens,
    Unauthorized,
)
from serving.http.responses import JSONBody, json_body

log = logging.getLogger("serving.http")

STATUS: dict[type[ServingError], int] = {
    InvalidRequest: 400,
    EmptyInput: 400,
    TooManyDocuments: 400,
    TooManyChunks: 400,
    TooManyTokens: 400,
    InputTooLong: 400,
    ReloadFailed: 400,
    Unauthorized: 401,
    ModelNotFound: 404,
    RequestBodyTimedOut: 408,
    BodyTooLarge: 413,
    Overloaded: 429,
    ModelFailure: 500,
    ModelUnavailable: 503,
    RequestTimedOut: 504,
}

# Extra headers some errors carry (RFC 6750's challenge; when to retry).
HEADERS: dict[type[ServingError], dict[str, str]] = {
    Unauthorized: {"WWW-Authenticate": 'Bearer realm="ovtext"'},
    Overloaded: {"Retry-After": "1"},
    ModelUnavailable: {"Retry-After": "5"},
    # The rest of a stalled body is not waited for: the connection closes after the answer.
    RequestBodyTimedOut: {"Connection": "close"},
}

# The error body of the routes of one API family: (path -> belongs to it, (error, status) -> body,
# and optionally (error, status) -> the family's own status). The default is
# {"error": "<field>: <message>"} with STATUS; API families with their own error body and codes
# (TEI's {"error", "error_type"}, 422 for validation) register theirs with register_error_body().
ErrorBody = Callable[[ServingError, int], dict[str, Any]]
ErrorStatus = Callable[[ServingError, int], int]
_BODIES: list[tuple[Callable[[str], bool], ErrorBody, ErrorStatus | None]] = []


def register_error_body(
    applies_to: Callable[[str], bool], body: ErrorBody, status: ErrorStatus | None = None
) -> None:
    _BODIES.append((applies_to, body, status))


def status_of(error: ServingError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def error_response(path: str, error: ServingError) -> JSONBody:
    """The one place a ServingError becomes an HTTP response (status, headers, body)."""
    status = status_of(error)
    body: dict[str, Any] = {"error": str(error)}
    for applies_to, shape, family_status in _BODIES:
        if applies_to(path):
            status = family_status(error, status) if family_status else status
            body = shape(error, status)
            break
    headers: dict[str, str] = {}
    for kind in type(error).__mro__:
        headers.update(HEADERS.get(kind, {}))
    return json_body(body, status_code=status, headers=headers)


def count_error(scope: Scope, kind: str) -> None:
    """One more error of `kind` in /metrics, by the route's path and the model."""
    metrics = getattr(scope["app"].state, "metrics", None)
    if metrics is not None:
        endpoint = getattr(scope.get("route"), "path", "unmatched")
        model = scope.get("state", {}).get("model", "")
        metrics.errors.labels(endpoint, model, kind).inc()


def _count(request: Request, kind: str) -> None:
    count_error(request.scope, kind)


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


def log_refusal(method: str, path: str, status: int, reason: object) -> None:
    """The one log line of a refused request (client text in it escaped and bounded)."""
    log.info("%s %s -> %d: %s", loggable(method), loggable(path), status, loggable(reason))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError) -> JSONBody:
        response = error_response(request.url.path, error)
        log_refusal(request.method, request.url.path, response.status_code, error)
        _count(request, type(error).__name__)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONBody:
        message = validation_message(error)
        response = error_response(request.url.path, InvalidRequest(message))
        log_refusal(request.method, request.url.path, response.status_code, message)
        _count(request, InvalidRequest.__name__)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONBody:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 400:  # FastAPI could not read the body (not UTF-8, not JSON)
            _count(request, InvalidRequest.__name__)
            return error_response(request.url.path, InvalidRequest(message, field="body"))
        _count(request, f"HTTP{error.status_code}")
        if error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
            if len(request.url.path) > 1 and request.url.path.endswith("/"):
                message += " (paths take no trailing slash)"
        elif error.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return json_body({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONBody:
        log.exception("%s %s failed", loggable(request.method), loggable(request.url.path))
        _count(request, "InternalError")
        return error_response(request.url.path, ModelFailure(f"internal error: {type(error).__name__}"))
