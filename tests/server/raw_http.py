"""HTTP/1.1 over a bare socket, for tests of what a client sends slowly, partly or not at all."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# How long a test waits for the server to act on a limit before it counts as never.
NEVER_S = 30


@contextmanager
def raw_connection(server: Any, timeout: float = NEVER_S) -> Iterator[socket.socket]:
    """A TCP connection to `server` (a ServerProcess)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as connection:
        yield connection


def request_head(path: str, length: int, extra: str = "") -> bytes:
    """A POST's request line and headers, declaring a JSON body of `length` bytes; `extra`: more
    header lines, each ending in CRLF."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def read_response(connection: socket.socket) -> tuple[int, dict, bytes]:
    """(status, JSON body, everything read) of the next response on `connection`."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full response: {received!r}")
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers["content-length"]):
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), json.loads(body), received


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server closed the connection (after whatever it still sent)."""
    try:
        while connection.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True
