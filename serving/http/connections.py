"""Connection limits under the HTTP protocol: how long a client may take to send a request's
headers, and how many connections may be open at once.

uvicorn closes a connection idle between requests (timeout_keep_alive) but has no limit on how long
headers may take: any byte received stops its idle timer, so a client sending a header line every
few seconds holds a connection (and its file descriptor) for ever. Its limit_concurrency answers 503
only once a request's headers are complete, which such a client never sends. This protocol adds both:

- a header timeout: from the moment a connection opens, or its last answer is sent, the next
  request's headers must be complete within `header_timeout` seconds. A client that sent part of a
  request is answered 408 and the connection closed; an idle one is just closed.
- a connection cap: a connection beyond `max_connections` is answered 503 (a JSON body, Retry-After)
  at once and closed, without reading a request from it. Its request is read and dropped for a
  moment first (a lingering close), so the client reads the 503 instead of a connection reset.

Request bodies are timed by the application (AdmissionMiddleware: --body_timeout), which answers
with the API's error body. The server's graceful drain is uvicorn's, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("serving.http")

# How long a refused connection is read from and dropped before it is closed.
LINGER_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    max_connections: int


def _raw_response(status: str, message: str, extra: str = "") -> bytes:
    body = orjson.dumps({"error": message})
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


def limited_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the header timeout and the connection cap of `limits`."""

    refusal = _raw_response(
        "503 Service Unavailable",
        f"this server has {limits.max_connections} connections open, its limit (--max_connections): "
        "retry shortly",
        "retry-after: 1\r\n",
    )
    header_timeout = _raw_response(
        "408 Request Timeout",
        f"the request headers did not arrive within {limits.header_timeout:g} s (--header_timeout)",
    )

    class LimitedProtocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._awaited_after: object = None  # the request cycle current when the timer was set
            self._partial = False  # bytes of the awaited request have arrived
            self._refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self._refuse()
                return
            self._await_headers()

        def _refuse(self) -> None:
            self._refused = True
            self.transport.write(refusal)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

        def _await_headers(self) -> None:
            self._stop_header_timer()
            self._awaited_after = self.cycle
            self._partial = False
            self._header_timer = self.loop.call_later(limits.header_timeout, self._headers_timed_out)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_arrived(self) -> bool:
            return self.cycle is not self._awaited_after

        def _headers_timed_out(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self._headers_arrived():
                return
            if self._partial:
                log.debug("closing a connection whose request headers took over %g s", limits.header_timeout)
                self.transport.write(header_timeout)
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # read and dropped until the lingering close
            if self._header_timer is not None:
                self._partial = True
            super().data_received(data)
            if self._header_timer is not None and self._headers_arrived():
                self._stop_header_timer()

        def eof_received(self) -> None:
            if self._refused:
                self.transport.close()
            super().eof_received()

        def on_response_complete(self) -> None:
            # The next request's headers are awaited from now (a pipelined one may be parsed at once).
            self._await_headers()
            super().on_response_complete()
            if self.transport.is_closing() or self._headers_arrived():
                self._stop_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

    return LimitedProtocol
