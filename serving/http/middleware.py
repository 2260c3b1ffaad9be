"""ASGI middleware: request id and total time, admission and the request body (keys, concurrency,
size, memory budget, read timeout, client disconnects), and request metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.client_text import loggable
from serving.errors import BodyTooLarge, RequestBodyTimedOut, ServingError
from serving.http.access import AccessRules, BodyBudget
from serving.http.errors import count_error, error_response, log_refusal
from serving.http.metrics import ServerMetrics

log = logging.getLogger("serving.http")

REQUEST_ID_HEADER = b"x-request-id"
TOTAL_TIME_HEADER = b"x-total-time"
# A request id a client sends back to us is echoed only if it looks like one.
_MAX_REQUEST_ID = 128


def milliseconds(seconds: float) -> str:
    """A duration as the x-*-time headers carry it: whole milliseconds, as TEI sends them."""
    return str(round(seconds * 1000))


def elapsed(scope: Scope) -> float:
    """Seconds since the request arrived (RequestContextMiddleware records when)."""
    return time.perf_counter() - scope.get("state", {}).get("started", time.perf_counter())


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if 0 < len(text) <= _MAX_REQUEST_ID and text.isprintable():
                return text
    return None


async def _refuse(scope: Scope, send: Send, error: ServingError) -> None:
    """Answer `error` before the request reaches a route (one log line, as the error handlers)."""
    response = error_response(scope.get("path", ""), error)
    log_refusal(scope["method"], scope["path"], response.status_code, error)
    count_error(scope, type(error).__name__)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestContextMiddleware:
    """Gives every response `x-request-id` (the client's own, else a new one) and `x-total-time`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"], state["started"] = request_id, started

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                headers.append((TOTAL_TIME_HEADER, milliseconds(time.perf_counter() - started).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class AdmissionMiddleware:
    """Admits a request before reading its body, then reads the body and hands it on in one piece.

    In order, each refusal costing no body read: the route's API key (401) and concurrency gate
    (429, held until the answer is sent), the declared size (413 over `max_body_bytes`) and room for
    it in the memory `budget` of bodies held at once (429). The body must then arrive in full within
    `body_timeout` seconds (408, and the connection closes), and within the size and the budget as
    it streams. Then the connection is watched and the request cancelled if the client goes away
    before the answer starts, so its waiting batches are dropped instead of computed for nobody.

    Every POST body is JSON in this API, so a missing or form Content-Type (curl -d without -H)
    is read as JSON too.
    """

    def __init__(
        self, app: ASGIApp, access: AccessRules, max_bytes: int, body_timeout: float, budget: BodyBudget
    ) -> None:
        self.app = app
        self.access = access
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key_check, gate = self.access.find(scope)
        try:
            if key_check is not None:
                key_check.check(scope)
            if gate is not None:
                gate.enter()
        except ServingError as error:
            await _refuse(scope, send, error)
            return
        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                await self._with_body(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            if gate is not None:
                gate.leave()

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        expected = int(declared) if declared is not None and declared.isdigit() else 0
        if expected > self.max_bytes:
            await _refuse(scope, send, self._too_large(f"Content-Length {expected}"))
            return
        held = 0  # bytes reserved in the budget for this body
        try:
            self.budget.reserve(expected)
            held = expected
            body = bytearray()
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        raise self._too_large(f"the body streamed so far ({len(body)} bytes)")
                    if len(body) > held:
                        self.budget.reserve(len(body) - held)
                        held = len(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            error = RequestBodyTimedOut(
                f"the body did not arrive in full within {self.body_timeout:g} s (--body_timeout)", "body"
            )
            await _refuse(scope, send, error)
            self.budget.release(held)
            return
        except ServingError as error:
            await _refuse(scope, send, error)
            self.budget.release(held)
            return
        content_type = headers.get(b"content-type", b"")
        if b"json" not in content_type.lower():
            # In place: outer middleware reads what routing writes into this same scope.
            new_headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope["headers"] = [*new_headers, (b"content-type", b"application/json")]
        payload = bytes(body)
        body.clear()  # one copy of the body is held while it is answered, not two
        try:
            await self._run_watching(scope, payload, receive, send)
        finally:
            self.budget.release(held)

    def _too_large(self, size: str) -> BodyTooLarge:
        return BodyTooLarge(
            f"{size} is over this server's limit of {self.max_bytes} bytes (--max_body_bytes)", "body"
        )

    async def _run_watching(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        disconnected = asyncio.Event()
        delivered = False
        answering = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def watch() -> None:
            while True:
                if (await receive())["type"] == "http.disconnect":
                    disconnected.set()
                    return

        async def sending(message: Message) -> None:
            nonlocal answering
            answering = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, replay, sending))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not handler.done() and not answering:
                log.info(
                    "%s %s: the client went away; request cancelled",
                    loggable(scope["method"]),
                    loggable(scope["path"]),
                )
                scope.setdefault("state", {})["cancelled"] = True
                handler.cancel()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            with contextlib.suppress(asyncio.CancelledError):
                await handler  # re-raises what the handler raised, like a plain call would


class MetricsMiddleware:
    """Counts requests by endpoint (the route's path template), model and status; times them.

    A request whose client went away before any answer counts as status 499.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 499
        state = scope.setdefault("state", {})

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            if not state.get("cancelled"):
                status = 500
            raise
        finally:
            route: Any = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            model = state.get("model", "")
            self.metrics.requests.labels(endpoint, model, str(status)).inc()
            self.metrics.latency.labels(endpoint, model).observe(time.perf_counter() - started)
