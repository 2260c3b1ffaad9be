"""Slow, idle and greedy clients on a real server: the header timeout, the body timeout, the
connection cap and the memory budget of request bodies (short forms; the long ones are in
test_stress.py under OVTEXT_STRESS=long)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import ExportedModel, ServerProcess, add_model, wait_until, write_config

CROSS = "test/cross-encoder"
FAST_BODY = {"model": CROSS, "query": "what is a panda?", "documents": ["a bear", "a car"]}
HEADER_TIMEOUT = 2
BODY_TIMEOUT = 5
MAX_BODY = 2_000_000
BODY_MEMORY = 3_000_000
MAX_CONNECTIONS = 6
# How long a test waits for the server to act on a limit before it counts as never.
NEVER_S = 30


@pytest.fixture(scope="module")
def repo(exported_models: dict[str, ExportedModel], tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("client-limits") / "models"
    root.mkdir()
    add_model(root, exported_models[CROSS])
    write_config(root, [CROSS])
    return root


@pytest.fixture(scope="module")
def timed(repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """Short header and body timeouts, a small body size and body memory budget."""
    return start_server(
        repo / "config.json",
        "--header_timeout", str(HEADER_TIMEOUT),
        "--body_timeout", str(BODY_TIMEOUT),
        "--max_body_bytes", str(MAX_BODY),
        "--max_body_memory", str(BODY_MEMORY),
    )  # fmt: skip


@pytest.fixture(scope="module")
def capped(repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(repo / "config.json", "--max_connections", str(MAX_CONNECTIONS))


@contextmanager
def raw_connection(server: ServerProcess) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=NEVER_S) as connection:
        yield connection


def request_head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def read_response(connection: socket.socket) -> tuple[int, dict, bytes]:
    """(status, JSON body, everything read) of the one response the server sends, then closes."""
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


def test_a_client_dripping_its_headers_is_answered_408_and_disconnected(timed: ServerProcess) -> None:
    with raw_connection(timed) as connection:
        connection.sendall(b"POST /v3/rerank HTTP/1.1\r\nHost: test\r\n")
        connection.settimeout(0.5)
        started, answer = time.monotonic(), b""
        # One header line every half second, as a slowloris client sends them: the server must
        # close the connection instead of waiting for ever (NEVER_S counts as for ever here).
        while time.monotonic() - started < NEVER_S:
            try:
                connection.sendall(b"X-Drip: 1\r\n")
                chunk = connection.recv(65536)
            except (BrokenPipeError, ConnectionResetError):
                break
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
        else:
            pytest.fail(f"the server kept a connection sending headers open for {NEVER_S} s")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"--header_timeout" in answer
    # An idle connection is closed too, without an answer.
    with raw_connection(timed) as idle:
        assert idle.recv(65536) == b""


def test_a_stalled_body_is_answered_408_and_the_connection_closes(timed: ServerProcess) -> None:
    with raw_connection(timed) as connection:
        connection.sendall(request_head("/v3/rerank", 1000) + b'{"model":')  # 9 of 1000 bytes
        status, body, _ = read_response(connection)
        assert status == 408, body
        assert "--body_timeout" in body["error"]
        assert closed_by_server(connection)
    assert "Traceback" not in timed.log()
    assert httpx.post(f"{timed.url}/v3/rerank", json=FAST_BODY, timeout=60).status_code == 200


def test_bodies_over_the_memory_budget_are_refused_before_they_are_read(timed: ServerProcess) -> None:
    padded = json.dumps({**FAST_BODY, "padding": "x" * 1_500_000}).encode()
    with raw_connection(timed) as stalled:
        # 1.9 MB of 3 MB held by a body that is still arriving...
        stalled.sendall(request_head("/v3/rerank", 1_900_000) + b"{" + b" " * 100_000)
        time.sleep(0.5)  # its headers are read first
        # ...so a 1.5 MB body does not fit: refused before any of it is sent.
        with raw_connection(timed) as refused:
            refused.sendall(request_head("/v3/rerank", len(padded)))
            status, body, _ = read_response(refused)
        assert status == 429, body
        assert "--max_body_memory" in body["error"]
        # A small request still fits beside it.
        assert httpx.post(f"{timed.url}/v3/rerank", json=FAST_BODY, timeout=60).status_code == 200
        status, body, _ = read_response(stalled)
        assert status == 408, body
    # The stalled body's bytes were given back: the 1.5 MB request is now taken.
    answer = httpx.post(
        f"{timed.url}/v3/rerank", content=padded, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert answer.status_code == 200, answer.text


def test_connections_over_the_cap_get_503_while_open_ones_keep_working(capped: ServerProcess) -> None:
    with httpx.Client(base_url=capped.url, timeout=60) as client, ExitStack() as stack:
        assert client.post("/v3/rerank", json=FAST_BODY).status_code == 200  # one connection, kept
        for _ in range(MAX_CONNECTIONS - 1):
            stack.enter_context(raw_connection(capped))
        with raw_connection(capped) as extra:
            extra.sendall(request_head("/v3/rerank", 2) + b"{}")
            status, body, received = read_response(extra)
        assert status == 503, body
        assert "--max_connections" in body["error"]
        assert b"retry-after: 1" in received.lower()
        # The connection that was open before keeps answering.
        assert client.post("/v3/rerank", json=FAST_BODY).status_code == 200
    # With the idle connections gone, new ones are taken again.
    wait_until(lambda: httpx.post(f"{capped.url}/v3/rerank", json=FAST_BODY, timeout=60).status_code == 200)
    assert "Traceback" not in capped.log()
