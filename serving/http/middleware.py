"""ASGI middleware: the request body size limit, and request metrics."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.http.metrics import ServerMetrics

log = logging.getLogger("serving.http")


async def _send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Rejects bodies over `max_bytes` with 413, by Content-Length and by what actually arrives.

    The body is read here (up to the limit) and handed on in one piece. Every POST body is JSON
    in this API, so a missing or form Content-Type (curl -d without -H) is read as JSON too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> str:
        return f"body: {size} is over this server's limit of {self.max_bytes} bytes (--max_body_bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            message = self._too_large(f"Content-Length {int(declared)}")
            log.info("%s %s -> 413: %s", scope["method"], scope["path"], message)
            await _send_error(send, 413, message)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                message = self._too_large(f"the body streamed so far ({size} bytes)")
                log.info("%s %s -> 413: %s", scope["method"], scope["path"], message)
                await _send_error(send, 413, message)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"")
        if b"json" not in content_type.lower():
            # In place: outer middleware reads what routing writes into this same scope.
            new_headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope["headers"] = [*new_headers, (b"content-type", b"application/json")]
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class MetricsMiddleware:
    """Counts requests by endpoint (the route's path template), model and status; times them."""

    API_PREFIXES = ("/v1/", "/v2/", "/v3/")

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.API_PREFIXES):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        scope.setdefault("state", {})

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            model = scope["state"].get("model", "")
            self.metrics.requests.labels(endpoint, model, str(status)).inc()
            self.metrics.latency.labels(endpoint, model).observe(time.perf_counter() - started)
