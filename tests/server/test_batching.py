"""The batching core under concurrency, on a real server: rows of concurrent requests share
batches, every request gets its own answers, and a huge request does not hold back a small one."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import ExportedModel, ServerProcess, add_model, scores_by_index, write_config

CROSS = "test/cross-encoder"
WORDS = ["panda", "bear", "bamboo", "forest", "river", "market", "stock", "price", "rain", "sun"]


def documents(seed: int, count: int, longest: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, longest)))) for _ in range(count)]


def metric_sum(text: str, name: str) -> float:
    match = re.search(rf'^{name}\{{model="{CROSS}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def server(
    exported_models: dict[str, ExportedModel], tmp_path_factory, start_server: Callable
) -> ServerProcess:
    repo: Path = tmp_path_factory.mktemp("batching") / "models"
    repo.mkdir()
    add_model(repo, exported_models[CROSS])
    write_config(repo, [CROSS])
    return start_server(repo / "config.json", "--batch_token_budget", "2048", "--max_batch_size", "16")


def test_concurrent_requests_share_batches_and_keep_their_own_answers(server: ServerProcess) -> None:
    bodies = [
        {"model": CROSS, "query": f"query {i} about pandas", "documents": documents(i, 8, 40)}
        for i in range(24)
    ]
    with httpx.Client(base_url=server.url, timeout=120) as http:
        alone = [scores_by_index(http.post("/v3/rerank", json=body).json(), 8) for body in bodies]
        before = http.get("/metrics").text
        together: list[np.ndarray | None] = [None] * len(bodies)

        def send(index: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as client:
                together[index] = scores_by_index(client.post("/v3/rerank", json=bodies[index]).json(), 8)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = http.get("/metrics").text
    for index, scores in enumerate(together):
        assert scores is not None
        np.testing.assert_allclose(scores, alone[index], atol=1e-5, err_msg=f"request {index}")
    # Requests per batch, summed over the batches: at least one per request; more than one per
    # batch on average means rows of several requests were merged.
    shares = metric_sum(after, "ovtext_batch_requests_sum") - metric_sum(before, "ovtext_batch_requests_sum")
    count = "ovtext_batch_requests_count"
    batches = metric_sum(after, count) - metric_sum(before, count)
    assert shares >= len(bodies)
    assert shares / batches > 1.5, f"{batches} batches carried {shares} request shares"


def test_a_huge_request_does_not_hold_back_a_small_one(server: ServerProcess) -> None:
    """A request of 1000 documents (hundreds of batches) is running; a 2-document request sent after
    it is answered long before the huge one finishes."""
    huge = {"model": CROSS, "query": "what is a panda?", "documents": documents(99, 1000, 80)}
    small = {"model": CROSS, "query": "what is a panda?", "documents": ["a bear", "a car"]}
    finished: dict[str, float] = {}

    def send(name: str, body: dict) -> None:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            assert client.post("/v3/rerank", json=body).status_code == 200
        finished[name] = time.monotonic()

    big = threading.Thread(target=send, args=("huge", huge))
    big.start()
    time.sleep(1.0)  # the huge request's batches are running
    assert "huge" not in finished
    send("small", small)
    big.join()
    assert finished["small"] < finished["huge"]
