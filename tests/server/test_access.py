"""Access and load on a real server: API keys, the concurrency gate (429), the request timeout (504),
cancellation when the client goes away, the SIGTERM drain and settings from the environment.

Slow requests are real: many long documents on the MiniLM cross-encoder, one row per batch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cohere
import httpx
import openai
import pytest

from tests.support.server import metric_value

from .conftest import REPO_ROOT, ExportedModel, ServerProcess, add_model, free_port, wait_until, write_config
from .raw_http import raw_connection, read_response, request_head

CROSS = "test/cross-encoder"
MINILM = "test/minilm"
KEY = "k1-secret-for-tests"
FILE_KEY = "k2-from-the-key-file"
# ~500 tokens per document; with a 512-token batch budget every document is its own batch.
SLOW_BODY = {"model": CROSS, "query": "what is a panda?", "documents": ["panda bear bamboo " * 160] * 600}
FAST_BODY = {"model": CROSS, "query": "what is a panda?", "documents": ["a bear", "a car"]}


def batches_run(http: httpx.Client, headers: dict[str, str] | None = None) -> float:
    """Inference batches the cross-encoder has run so far (from /metrics)."""
    text = http.get("/metrics", headers=headers or {}).text
    match = re.search(r'^ovtext_batch_size_count\{model="test/cross-encoder"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def repo(exported_models: dict[str, ExportedModel], tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("access") / "models"
    root.mkdir()
    add_model(root, exported_models[CROSS])
    add_model(root, exported_models[MINILM])
    write_config(root, [CROSS, MINILM])
    return root


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text(f"# one key a line\n{FILE_KEY}\n")
    return path


@pytest.fixture(scope="module")
def guarded(repo: Path, key_file: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(
        repo / "config.json",
        "--api_key", KEY,
        "--api_key_file", str(key_file),
        "--max_concurrent_requests", "2",
        "--request_timeout", "2",
        "--batch_token_budget", "512",
    )  # fmt: skip


@pytest.fixture(scope="module")
def http(guarded: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def test_model_routes_need_a_key(guarded: ServerProcess) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60) as anonymous:
        for method, path in (("POST", "/v3/rerank"), ("POST", "/v3/embeddings"), ("GET", "/v3/models"),
                             ("GET", "/v1/config"), ("POST", "/v1/config/reload")):  # fmt: skip
            response = anonymous.request(method, path, json=FAST_BODY)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "authorization" in response.json()["error"]
        wrong = anonymous.post("/v3/rerank", json=FAST_BODY, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = anonymous.post("/v3/rerank", json=FAST_BODY, headers={"Authorization": f"Basic {KEY}"})
        assert basic.status_code == 401
        # Health and metrics stay open for probes and scrapers.
        for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{CROSS}/ready", "/metrics"):
            assert anonymous.get(path).status_code == 200, path
        for key in (KEY, FILE_KEY):
            answer = anonymous.post("/v3/rerank", json=FAST_BODY, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200


def test_a_request_without_a_key_is_refused_before_its_body_is_sent(guarded: ServerProcess) -> None:
    """Only the headers of a 10 MB request are sent: the 401 must not wait for the body."""
    with raw_connection(guarded, timeout=10) as connection:
        connection.sendall(request_head("/v3/rerank", 10_000_000))
        status, body, _ = read_response(connection)
    assert status == 401, body
    assert "authorization" in body["error"]


def test_the_sdks_send_their_key(guarded: ServerProcess) -> None:
    reranked = cohere.ClientV2(api_key=KEY, base_url=guarded.url).rerank(
        model=CROSS, query="what is a panda?", documents=["a bear", "a car"]
    )
    assert len(reranked.results) == 2
    vectors = openai.OpenAI(api_key=KEY, base_url=f"{guarded.url}/v3").embeddings.create(
        model=MINILM, input="hi"
    )
    assert len(vectors.data[0].embedding) == 384
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=f"{guarded.url}/v3").embeddings.create(
            model=MINILM, input="hi"
        )


def test_the_key_file_is_re_read_when_it_changes(guarded: ServerProcess, key_file: Path) -> None:
    original = key_file.read_text()
    with httpx.Client(base_url=guarded.url, timeout=60) as client:

        def status(key: str) -> int:
            return client.post(
                "/v3/rerank", json=FAST_BODY, headers={"Authorization": f"Bearer {key}"}
            ).status_code

        try:
            key_file.write_text("rotated-key\n")
            wait_until(lambda: status("rotated-key") == 200)
            assert status(FILE_KEY) == 401
            assert status(KEY) == 200  # keys given on the command line stay
        finally:
            key_file.write_text(original)
        wait_until(lambda: status(FILE_KEY) == 200)


def test_keys_never_reach_the_log(guarded: ServerProcess) -> None:
    assert KEY not in guarded.log() and FILE_KEY not in guarded.log()


def _slow_request(url: str, results: list, timeout: float = 60) -> None:
    try:
        with httpx.Client(
            base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {KEY}"}
        ) as client:
            results.append(client.post("/v3/rerank", json=SLOW_BODY))
    except httpx.HTTPError as error:
        results.append(error)


def test_a_request_over_the_timeout_is_504_and_its_batches_stop(http: httpx.Client) -> None:
    started = time.monotonic()
    response = http.post("/v3/rerank", json=SLOW_BODY)
    assert response.status_code == 504, response.text
    assert "--request_timeout" in response.json()["error"]
    assert time.monotonic() - started < 30
    settled = batches_run(http)
    time.sleep(1.0)
    assert batches_run(http) - settled <= 1  # at most the batch that was running
    assert http.post("/v3/rerank", json=FAST_BODY).status_code == 200


def test_a_client_that_goes_away_cancels_its_batches(guarded: ServerProcess, http: httpx.Client) -> None:
    before = batches_run(http)
    results: list = []
    _slow_request(guarded.url, results, timeout=0.8)
    assert isinstance(results[0], httpx.TimeoutException)
    wait_until(lambda: "client went away" in guarded.log())
    settled = batches_run(http)
    time.sleep(1.0)
    assert batches_run(http) - settled <= 1
    assert settled - before < len(SLOW_BODY["documents"]) / 2  # far fewer than the request needed
    # Counted (as 499) once its handler is done: its place under --max_concurrent_requests is free.
    wait_until(lambda: 'status="499"' in http.get("/metrics").text)


def test_requests_over_the_concurrency_limit_get_429_at_once(
    guarded: ServerProcess, http: httpx.Client
) -> None:
    results: list = []
    slow = [threading.Thread(target=_slow_request, args=(guarded.url, results)) for _ in range(2)]
    for thread in slow:
        thread.start()
    # Both slow requests are in (under load the second can arrive well after the first).
    wait_until(lambda: metric_value(http.get("/metrics").text, "ovtext_queue_size", model=CROSS) >= 2)
    time.sleep(0.3)
    refused = http.post("/v3/rerank", json=FAST_BODY)
    assert not results, [getattr(result, "text", result) for result in results]
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "1"
    # Refused before its body is read: only the headers are sent.
    with raw_connection(guarded, timeout=10) as connection:
        connection.sendall(request_head("/v3/rerank", 5_000_000, f"Authorization: Bearer {KEY}\r\n"))
        status, body, _ = read_response(connection)
    assert status == 429, body
    for thread in slow:
        thread.join()
    assert [r.status_code for r in results] == [504, 504]
    assert http.post("/v3/rerank", json=FAST_BODY).status_code == 200


def test_sigterm_lets_requests_in_flight_finish_and_exits_0(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(repo / "config.json", log, "--batch_token_budget", "512")
    try:
        server.wait_ready()
        body = {**SLOW_BODY, "documents": SLOW_BODY["documents"][:60]}
        results: list = []

        def send() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                results.append(client.post("/v3/rerank", json=body))

        thread = threading.Thread(target=send)
        thread.start()
        wait_until(
            lambda: "ovtext_batch_size_count" in httpx.get(f"{server.url}/metrics").text, interval=0.02
        )
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "Shutting down" in server.log(), interval=0.02)
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{server.url}/v3/rerank", json=FAST_BODY, timeout=5)
        thread.join()
        assert results[0].status_code == 200 and len(results[0].json()["results"]) == 60
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()


def test_settings_come_from_the_environment_and_flags_win(repo: Path, tmp_path: Path) -> None:
    port, other = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "OVTEXT_CONFIG_PATH": str(repo / "config.json"),
           "OVTEXT_MAX_DOCUMENTS": "1", "OVTEXT_API_KEYS": f"{KEY},other"}  # fmt: skip
    commands = {
        port: [sys.executable, "-m", "serving"],
        other: [sys.executable, "-m", "serving", "--rest_port", str(other), "--max_documents", "5"],
    }
    processes = {
        p: subprocess.Popen(
            c,
            cwd=REPO_ROOT,
            env={**env, "OVTEXT_REST_PORT": "1"} if p == other else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p, c in commands.items()
    }
    try:
        for p in processes:
            url = f"http://127.0.0.1:{p}"
            wait_until(lambda url=url: _ready(url), timeout=120)
            headers = {"Authorization": "Bearer other"}
            two = httpx.post(f"{url}/v3/rerank", json={**FAST_BODY}, headers=headers, timeout=60)
            # OVTEXT_MAX_DOCUMENTS=1 refuses two documents; the flag's 5 takes them.
            assert two.status_code == (400 if p == port else 200), two.text
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=30)


@pytest.mark.parametrize(
    ("flags", "env", "problem"),
    [
        (["--api_key", "correct horse battery staple"], {}, "holds a space"),
        ([], {"OVTEXT_API_KEYS": "correct horse battery staple"}, "holds a space"),
        (["--api_key", "good, padded"], {}, "starts or ends with a space"),
        (["--api_key", "tab\tinside"], {}, "control or non-ASCII"),
    ],
)
def test_keys_with_spaces_or_controls_are_refused_at_start_up(
    repo: Path, flags: list[str], env: dict[str, str], problem: str
) -> None:
    """Whitespace never splits keys (only commas do), and a key that breaks the rule stops the
    server at start-up with one line that does not quote it."""
    completed = subprocess.run(
        [sys.executable, "-m", "serving", "--config_path", str(repo / "config.json"), "--rest_port",
         str(free_port()), *flags],
        cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    assert problem in completed.stderr
    assert "horse" not in completed.stderr and "padded" not in completed.stderr


def test_a_key_file_line_with_a_space_is_refused_at_start_up(repo: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# keys\ngood-key\ncorrect horse\n")
    completed = subprocess.run(
        [sys.executable, "-m", "serving", "--config_path", str(repo / "config.json"), "--rest_port",
         str(free_port()), "--api_key_file", str(keys)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    assert "keys.txt line 3: the key holds a space" in completed.stderr
    assert "horse" not in completed.stderr


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
