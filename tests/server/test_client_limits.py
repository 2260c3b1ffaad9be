"""Slow, idle and greedy clients on a real server: the header timeout, the body timeout, the
connection cap and the memory budget of request bodies (short forms; the long ones are in
test_stress.py under OVTEXT_STRESS=long)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from .conftest import ExportedModel, ServerProcess, add_model, wait_until, write_config
from .raw_http import NEVER_S, closed_by_server, raw_connection, read_response, request_head

CROSS = "test/cross-encoder"
FAST_BODY = {"model": CROSS, "query": "what is a panda?", "documents": ["a bear", "a car"]}
HEADER_TIMEOUT = 2
BODY_TIMEOUT = 5
MAX_BODY = 2_000_000
BODY_MEMORY = 3_000_000
MAX_CONNECTIONS = 6


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
