"""Load and soak on a real server, short in `make test`, long in `make stress` (OVTEXT_STRESS=long).

- Load: 64 concurrent clients mix rerank (short, many, chunked documents) and embeddings requests
  while versions are copied in and removed, a model comes and goes in config.json, and reload is
  posted. Every answer of the two steady models must be a 200 and equal the Hugging Face reference
  of the version that answered (x-model-version); the coming-and-going model may only be 404/503.
- Soak: steady load; resident memory after warm-up grows < 5 %, threads and open files end where
  they started.

Each test writes a one-line summary to $OVTEXT_STRESS_SUMMARY (make stress prints the file).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops: needed to read tokenizer IRs)
import pytest

from serving.repository.layout import read_tokenizer_info
from tests.support.repository import copy_version_in, remove_version

from .conftest import ExportedModel, HFReranker, ServerProcess, add_model, wait_until, write_config
from .stress_summary import summary

# Load at scale: `make check` (and `make stress`, long) runs it, `make test` leaves it out.
pytestmark = pytest.mark.slow

LONG = os.environ.get("OVTEXT_STRESS") == "long"
LOAD_SECONDS = 300 if LONG else 24  # two halves with the same churn
SOAK_SECONDS = 600 if LONG else 40
# The share of the soak before memory is measured: allocator arenas and the plugin's per-shape
# caches grow while new batch shapes keep appearing, then level off.
SOAK_WARM_UP = 0.2 if LONG else 0.5
CLIENTS = 64
SOAK_CLIENTS = 8
RERANK = "load/rerank"  # versions alternate between the BERT cross-encoder and the XLM-R reranker
EMBED = "load/embed"
EXTRA = "load/extra"  # added to and removed from config.json while the load runs
KINDS = ("test/cross-encoder", "test/xlmr")
SCORE_TOLERANCE = 1e-3
COSINE_TOLERANCE = 1e-4


# ---- the requests and their Hugging Face answers ----------------------------------------------

WORDS = [
    "panda",
    "bear",
    "bamboo",
    "forest",
    "china",
    "mountain",
    "river",
    "market",
    "stock",
    "price",
    "weather",
    "rain",
    "sun",
]


def make_requests(seed: int = 7) -> tuple[list[dict], list[list[str]]]:
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    reranks = [
        {"query": "what is a panda?", "documents": ["a bear", "a car"]},
        {"query": text(5), "documents": [text(rng.randint(3, 30)) for _ in range(20)]},
        {"query": text(4), "documents": [text(600), text(20), text(150)]},  # chunked on both models
    ]
    embeddings = [
        [text(3)],
        [text(rng.randint(2, 60)) for _ in range(16)],
        [text(rng.randint(1, 20)) for _ in range(64)],
    ]
    return reranks, embeddings


@pytest.fixture(scope="module")
def workload(exported_models: dict[str, ExportedModel], sentence_transformer) -> dict:
    """The request pool and, per model kind, the expected answer of each request."""
    reranks, embeddings = make_requests()
    expected: dict[str, list[np.ndarray]] = {}
    for kind in KINDS:
        hf = HFReranker(exported_models[kind].source)
        limit = token_limit(exported_models[kind])
        expected[kind] = [reference_scores(hf, r["query"], r["documents"], limit) for r in reranks]
    vectors = [sentence_transformer.encode(inputs, normalize_embeddings=True) for inputs in embeddings]
    return {"reranks": reranks, "embeddings": embeddings, "expected": expected, "vectors": vectors}


def token_limit(exported: ExportedModel) -> int:
    """The export's token limit, from its tokenizer IR's runtime info."""
    tokenizer_xml = exported.version_dirs(1)[0] / "model.xml"
    return read_tokenizer_info(ov.Core().read_model(tokenizer_xml)).max_length


def reference_scores(hf: HFReranker, query: str, documents: list[str], max_length: int) -> np.ndarray:
    """Sigmoid scores; a document longer than the model takes scores its best overflow window."""
    scores = []
    for document in documents:
        logits = hf.window_logits(query, document, max_length)
        scores.append(1.0 / (1.0 + np.exp(-logits.max())))
    return np.array(scores)


# ---- the repository and its churn -----------------------------------------------------------


@pytest.fixture(scope="module")
def repo(exported_models: dict[str, ExportedModel], tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stress") / "models"
    root.mkdir()
    add_model(root, exported_models[KINDS[0]], RERANK)
    add_model(root, exported_models["test/minilm"], EMBED)
    add_model(root, exported_models["test/xlmr"], EXTRA)
    write_config(root, [RERANK, EMBED])
    return root


@pytest.fixture(scope="module")
def kinds() -> dict[int, str]:
    """Which export each version of RERANK is a copy of (the load test adds versions)."""
    return {1: KINDS[0]}


@pytest.fixture(scope="module")
def loaded(repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(repo / "config.json", "--poll_interval", "0.5", "--max_concurrent_requests", "512")


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, latency: float, problem: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(latency)
            if problem:
                self.wrong.append(problem)

    def merged(self, other: Tally) -> Tally:
        return Tally(
            self.statuses + other.statuses, self.wrong + other.wrong, self.latencies + other.latencies
        )


def client_loop(
    url: str,
    workload: dict,
    kinds: dict[int, str],
    tally: Tally,
    stop: threading.Event,
    seed: int,
    extra: bool,
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=120) as http:
        while not stop.is_set():
            choice = rng.random()
            started = time.perf_counter()
            try:
                if extra and choice < 0.05:
                    body = {"model": EXTRA, "query": "q", "documents": ["a", "b"]}
                    response = http.post("/v3/rerank", json=body)
                    ok = response.status_code in (200, 404, 503)
                    tally.add(
                        f"extra {response.status_code}",
                        time.perf_counter() - started,
                        None if ok else f"{EXTRA}: {response.status_code} {response.text[:200]}",
                    )
                elif choice < 0.6:
                    index = rng.randrange(len(workload["reranks"]))
                    response = http.post("/v3/rerank", json={"model": RERANK, **workload["reranks"][index]})
                    tally.add(
                        str(response.status_code),
                        time.perf_counter() - started,
                        check_rerank(response, workload, kinds, index),
                    )
                else:
                    index = rng.randrange(len(workload["embeddings"]))
                    body = {"model": EMBED, "input": workload["embeddings"][index]}
                    response = http.post("/v3/embeddings", json=body)
                    tally.add(
                        str(response.status_code),
                        time.perf_counter() - started,
                        check_embeddings(response, workload, index),
                    )
            except httpx.HTTPError as error:
                tally.add("transport error", time.perf_counter() - started, repr(error))


def check_rerank(response: httpx.Response, workload: dict, kinds: dict[int, str], index: int) -> str | None:
    if response.status_code != 200:
        return f"{RERANK}: {response.status_code} {response.text[:200]}"
    version = int(response.headers["x-model-version"])
    expected = workload["expected"][kinds[version]][index]
    got = np.full(len(expected), np.nan)
    for result in response.json()["results"]:
        got[result["index"]] = result["relevance_score"]
    difference = float(np.abs(got - expected).max())
    return (
        None
        if difference < SCORE_TOLERANCE
        else f"{RERANK} v{version} request {index}: off by {difference:.2e}"
    )


def check_embeddings(response: httpx.Response, workload: dict, index: int) -> str | None:
    if response.status_code != 200:
        return f"{EMBED}: {response.status_code} {response.text[:200]}"
    vectors = np.array([item["embedding"] for item in response.json()["data"]])
    cosine = (vectors * workload["vectors"][index]).sum(axis=1)
    return (
        None
        if float(1 - cosine.min()) < COSINE_TOLERANCE
        else f"{EMBED} request {index}: cosine {cosine.min()}"
    )


def process_counts(pid: int) -> tuple[int, int, int]:
    """(resident KB, threads, open file descriptors) of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]), int(status["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


def run_clients(
    url: str,
    workload: dict,
    kinds: dict[int, str],
    clients: int,
    seconds: float,
    extra: bool,
    during: Callable[[threading.Event], None] | None = None,
) -> Tally:
    tally, stop = Tally(), threading.Event()
    threads = [
        threading.Thread(target=client_loop, args=(url, workload, kinds, tally, stop, seed, extra))
        for seed in range(clients)
    ]
    for thread in threads:
        thread.start()
    helper = threading.Thread(target=during, args=(stop,)) if during else None
    if helper:
        helper.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=300)
    if helper:
        helper.join(timeout=300)
    return tally


def describe(name: str, tally: Tally, seconds: float, extra: str = "") -> str:
    latencies = sorted(tally.latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()))
    return (
        f"{name}: {sum(tally.statuses.values())} requests in {seconds:.0f} s ({statuses}); "
        f"{len(tally.wrong)} failed; p50 {p50:.0f} ms, p99 {p99:.0f} ms{extra}"
    )


def test_load_with_versions_and_models_changing(
    repo: Path,
    loaded: ServerProcess,
    workload: dict,
    exported_models: dict[str, ExportedModel],
    kinds: dict[int, str],
) -> None:
    with httpx.Client(base_url=loaded.url, timeout=120) as http:
        # Warm-up without churn: thread pools and allocator arenas reach their working size.
        warm = run_clients(loaded.url, workload, kinds, CLIENTS, 5, extra=False)
        assert not warm.wrong, warm.wrong[:10]
        before = process_counts(loaded.process.pid)
        events: Counter = Counter()
        state = {"version": 1, "extra listed": False}

        def churn(stop: threading.Event) -> None:
            while not stop.wait(2.0):
                version = state["version"] = state["version"] + 1
                kinds[version] = KINDS[version % 2]
                copy_version_in(exported_models[kinds[version]], repo / RERANK, version)
                events["versions added"] += 1
                stop.wait(1.0)
                if version - 2 >= 1 and (repo / RERANK / "rerank" / str(version - 2)).exists():
                    remove_version(repo / RERANK, version - 2, "rerank")
                    events["versions removed"] += 1
                state["extra listed"] = not state["extra listed"]
                write_config(repo, [RERANK, EMBED, EXTRA] if state["extra listed"] else [RERANK, EMBED])
                events["config.json edits"] += 1
                if http.post("/v1/config/reload").status_code == 200:
                    events["reloads posted"] += 1
            write_config(repo, [RERANK, EMBED])
            state["extra listed"] = False

        def phase() -> tuple[Tally, tuple[int, int, int]]:
            seconds = LOAD_SECONDS / 2
            tally = run_clients(loaded.url, workload, kinds, CLIENTS, seconds, extra=True, during=churn)
            http.post("/v1/config/reload")
            time.sleep(2.0)
            return tally, process_counts(loaded.process.pid)

        # Two halves with the same churn: what leaks per version or per request grows in both.
        first, middle = phase()
        second, after = phase()
        states = http.get("/v1/config").json()
    tally = first.merged(second)
    happened = ", ".join(f"{k} {v}" for k, v in events.items())
    summary(
        describe(
            f"load ({CLIENTS} clients)",
            tally,
            LOAD_SECONDS,
            f"; {happened}; threads {before[1]} -> {middle[1]} -> {after[1]}, "
            f"open files {before[2]} -> {middle[2]} -> {after[2]}",
        )
    )
    assert not tally.wrong, tally.wrong[:10]
    assert events["versions added"] >= 2 and events["reloads posted"] >= 2
    assert sum(v for k, v in tally.statuses.items() if not k.startswith("extra")) > 0
    # One version of each model is loaded again, as at the start: the retired ones ended, no file is
    # left open, and threads level off. OpenVINO keeps the stream executors of released models for
    # the next ones (the first versions add threads), so a leak shows as growth in the second half.
    assert all(
        status["state"] in ("AVAILABLE", "END")
        for model in states.values()
        for status in model["model_version_status"]
    ), states
    assert after[2] <= before[2] + 2
    assert after[1] <= middle[1] + 2


def test_soak_memory_threads_and_files_hold_steady(
    loaded: ServerProcess, workload: dict, kinds: dict[int, str]
) -> None:
    pid = loaded.process.pid
    samples: list[tuple[float, int, int, int]] = []

    def sample(stop: threading.Event) -> None:
        started = time.monotonic()
        while not stop.wait(max(1.0, SOAK_SECONDS / 60)):
            samples.append((time.monotonic() - started, *process_counts(pid)))

    tally = run_clients(loaded.url, workload, kinds, SOAK_CLIENTS, SOAK_SECONDS, extra=False, during=sample)
    warm = [s for s in samples if s[0] >= SOAK_SECONDS * SOAK_WARM_UP]
    baseline_rss = warm[0][1]
    growth = (max(s[1] for s in warm) - baseline_rss) / baseline_rss
    threads = {s[2] for s in warm}
    files = {s[3] for s in warm}
    summary(
        describe(
            f"soak ({SOAK_CLIENTS} clients)",
            tally,
            SOAK_SECONDS,
            f"; RSS {baseline_rss / 1024:.0f} MB after warm-up, growth {growth:.1%}; "
            f"threads {sorted(threads)}, open files {sorted(files)}",
        )
    )
    assert not tally.wrong, tally.wrong[:10]
    assert growth < 0.05
    assert max(threads) - min(threads) <= 2 and max(files) - min(files) <= 4


# ---- slow, idle and greedy clients (long forms of test_client_limits.py) ------------------------

needs_long = pytest.mark.skipif(not LONG, reason="long form: make stress (OVTEXT_STRESS=long)")
FAST_RERANK = {"model": "test/cross-encoder", "query": "q", "documents": ["a bear", "a car"]}


@pytest.fixture(scope="module")
def small_repo(exported_models: dict[str, ExportedModel], tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clients") / "models"
    root.mkdir()
    add_model(root, exported_models["test/cross-encoder"])
    write_config(root, ["test/cross-encoder"])
    return root


def open_connections(port: int, count: int) -> list[socket.socket]:
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        connection.setblocking(False)
        connections.append(connection)
    return connections


def still_open(connections: list[socket.socket]) -> list[socket.socket]:
    """The connections the server has not closed (reading and dropping whatever it sent)."""
    alive = []
    for connection in connections:
        try:
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
        except BlockingIOError:
            alive.append(connection)
        except OSError:
            pass
    return alive


def answer_status(url: str) -> int | str:
    try:
        return httpx.post(f"{url}/v3/rerank", json=FAST_RERANK, timeout=10).status_code
    except httpx.HTTPError as error:
        return type(error).__name__


@needs_long
def test_two_thousand_dripping_connections_are_closed_by_the_header_timeout(
    small_repo: Path, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(small_repo / "config.json", "--header_timeout", "10")
    connections = open_connections(server.port, 2000)
    for connection in connections:
        connection.sendall(b"POST /v3/rerank HTTP/1.1\r\nHost: test\r\n")
    started, statuses = time.monotonic(), Counter()
    alive = connections
    while alive and time.monotonic() - started < 60:
        for connection in alive:
            with contextlib.suppress(OSError):
                connection.send(b"X-Drip: 1\r\n")  # a header line every 5 s, as the probe sent
        statuses[answer_status(server.url)] += 1
        time.sleep(5)
        alive = still_open(alive)
    seconds = time.monotonic() - started
    for connection in connections:
        connection.close()
    summary(
        f"2000 dripping connections: {len(alive)} open after {seconds:.0f} s; "
        f"normal requests meanwhile {dict(statuses)}"
    )
    assert not alive
    assert set(statuses) == {200}


@needs_long
def test_forty_stalled_ten_megabyte_bodies_stay_within_the_body_memory_budget(
    small_repo: Path, start_server: Callable[..., ServerProcess]
) -> None:
    """Each sends 10 MB of a declared 10.4 MB and stalls (before the budget: +486 MB measured)."""
    server = start_server(small_repo / "config.json", "--body_timeout", "20")
    pid = server.process.pid
    assert answer_status(server.url) == 200
    before = process_counts(pid)[0]
    declared, sent = 10_400_000, 10_000_000  # under the 10 MiB --max_body_bytes
    head = (f"POST /v3/rerank HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()  # fmt: skip
    connections, refused = [], 0
    for _ in range(40):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        connection.sendall(head)
        with contextlib.suppress(OSError):  # a refused body may be cut short
            connection.sendall(b" " * sent)
        connection.setblocking(False)
        connections.append(connection)
    time.sleep(3)
    peak = process_counts(pid)[0]
    for connection in connections:
        with contextlib.suppress(BlockingIOError):  # nothing yet: the body was taken
            refused += b" 429 " in connection.recv(65536)
    wait_until(lambda: not still_open(connections), timeout=120)
    after = process_counts(pid)[0]
    status = answer_status(server.url)
    for connection in connections:
        connection.close()
    grown, kept = (peak - before) / 1024, (after - before) / 1024
    summary(f"40 stalled 10 MB bodies: RSS +{grown:.0f} MB while stalled (budget 256 MB), +{kept:.0f} MB "
            f"after they closed; {refused} refused with 429 before their body was read")  # fmt: skip
    assert grown < 256 + 64
    assert refused >= 40 - 256 * 1024 * 1024 // declared
    assert status == 200


@needs_long
def test_six_hundred_half_open_connections_under_a_512_descriptor_limit_get_clear_refusals(
    small_repo: Path, start_server: Callable[..., ServerProcess]
) -> None:
    """Before: normal requests timed out (Too many open files). Now the connection cap (the limit
    minus 128) answers 503 at once, and the header timeout frees the held connections."""
    command = ("prlimit", "--nofile=512:512", sys.executable, "-m", "serving")
    server = start_server(small_repo / "config.json", "--header_timeout", "10", command=command)
    connections = open_connections(server.port, 600)
    during = Counter(answer_status(server.url) for _ in range(5))
    wait_until(lambda: not still_open(connections), timeout=60)
    after = answer_status(server.url)
    for connection in connections:
        connection.close()
    summary(
        f"600 half-open connections at 512 descriptors: normal requests during {dict(during)}, after {after}"
    )
    assert set(during) <= {200, 503}
    assert after == 200
    assert "Too many open files" not in server.log()
