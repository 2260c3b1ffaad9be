"""Models and versions changing under a running server: swaps under load, removal, half-copied
folders, broken files, config.json edits (polling and POST /v1/config/reload), missing devices.

The tests of one server run in file order and build on each other's repository state.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openvino as ov
import pytest

from serving.repository.layout import MODEL_BIN, MODEL_XML, SUBCONFIG_FILE, TOKENIZER_DIR
from tests.support.exports import Exported
from tests.support.references import HFReranker
from tests.support.repository import copy_model, copy_version_in, remove_version, set_device, write_config
from tests.support.server import ServerProcess, scores_by_index, version_states, wait_until

from .conftest import FP32_TOLERANCE

SWAP = "swap/reranker"
STEADY = "steady/xlmr"
QUERY = "what is a panda?"
DOCUMENTS = ["The giant panda is a bear species endemic to China.", "The stock market closed higher.", "hi"]
POLL = "0.3"


@dataclass
class Reply:
    started: float
    status: int
    scores: np.ndarray | None
    error: str


class RequestLoop:
    """Workers posting the same rerank request back to back until stopped."""

    def __init__(self, url: str, model: str, workers: int = 3) -> None:
        self.url, self.model = url, model
        self.replies: list[Reply] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]

    def _work(self) -> None:
        body = {"model": self.model, "query": QUERY, "documents": DOCUMENTS}
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = http.post("/v3/rerank", json=body)
                    scores = (
                        scores_by_index(response.json(), len(DOCUMENTS))
                        if response.status_code == 200
                        else None
                    )
                    reply = Reply(
                        started, response.status_code, scores, "" if scores is not None else response.text
                    )
                except httpx.HTTPError as err:
                    reply = Reply(started, 0, None, repr(err))
                with self._lock:
                    self.replies.append(reply)

    def __enter__(self) -> RequestLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return len(self.replies)


def matches(scores: np.ndarray | None, expected: np.ndarray) -> bool:
    return scores is not None and bool(np.abs(scores - expected).max() < FP32_TOLERANCE)


def scores_of(http: httpx.Client, model: str) -> np.ndarray:
    """The scores of the loop's request on `model`, which must answer 200."""
    response = http.post("/v3/rerank", json={"model": model, "query": QUERY, "documents": DOCUMENTS})
    assert response.status_code == 200, response.text
    return scores_by_index(response.json(), len(DOCUMENTS))


@pytest.fixture(scope="module")
def expected(hf_rerankers: dict[str, HFReranker]) -> dict[str, np.ndarray]:
    """HF scores of the loop's request for the two models swapped in and out."""
    return {name: hf.scores(QUERY, DOCUMENTS) for name, hf in hf_rerankers.items()}


@pytest.fixture(scope="module")
def repo(server_exports: dict[str, Exported], tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle") / "models"
    root.mkdir()
    copy_model(server_exports["cross-encoder"], root, SWAP)  # version 1: the BERT cross-encoder
    copy_model(server_exports["xlmr"], root, STEADY)
    set_device(copy_model(server_exports["xlmr"], root, "nodevice/xlmr"), "NOT_A_DEVICE")
    write_config(root, [SWAP, STEADY, "nodevice/xlmr"])
    return root


@pytest.fixture(scope="module")
def live(repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(repo / "config.json", "--poll_interval", POLL)


@pytest.fixture(scope="module")
def http(live: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


def status_of(http: httpx.Client, name: str) -> dict[int, tuple[str, str, str]]:
    return version_states(http.get("/v1/config").json(), name)


def test_a_device_that_is_not_there_fails_that_model_alone(http: httpx.Client) -> None:
    state, code, message = status_of(http, "nodevice/xlmr")[1]
    assert (state, code) == ("LOADING", "UNKNOWN") and "NOT_A_DEVICE" in message
    response = http.post(
        "/v3/rerank", json={"model": "nodevice/xlmr", "query": QUERY, "documents": DOCUMENTS}
    )
    assert response.status_code == 503 and "NOT_A_DEVICE" in response.json()["error"]
    assert http.get("/v2/models/nodevice%2Fxlmr/ready").status_code == 503
    assert "nodevice/xlmr" not in [m["id"] for m in http.get("/v3/models").json()["data"]]
    assert (
        http.post("/v3/rerank", json={"model": STEADY, "query": QUERY, "documents": DOCUMENTS}).status_code
        == 200
    )


@pytest.mark.skipif("GPU" in ov.Core().available_devices, reason="this machine has a GPU")
def test_an_absent_gpu_is_reported_the_same_way(
    repo: Path, http: httpx.Client, server_exports: dict[str, Exported]
) -> None:
    set_device(copy_model(server_exports["xlmr"], repo, "gpu/xlmr"), "GPU")
    write_config(repo, [SWAP, STEADY, "nodevice/xlmr", "gpu/xlmr"])
    wait_until(lambda: status_of(http, "gpu/xlmr").get(1, ("", "OK", ""))[1] != "OK", timeout=30)
    state, code, message = status_of(http, "gpu/xlmr")[1]
    assert (state, code) == ("LOADING", "UNKNOWN") and "GPU" in message
    assert status_of(http, STEADY)[1][0] == "AVAILABLE"


def test_a_new_version_swaps_in_under_load_without_a_failed_request(
    repo: Path, live: ServerProcess, http: httpx.Client, server_exports, expected
) -> None:
    v1, v2 = expected["test/cross-encoder"], expected["test/xlmr"]  # scores of the two versions differ
    assert np.abs(v1 - v2).max() > 0.01
    with RequestLoop(live.url, SWAP) as loop:
        wait_until(lambda: loop.count() >= 10)
        copy_version_in(server_exports["xlmr"], repo / SWAP, 2)
        wait_until(lambda: status_of(http, SWAP) == {2: ("AVAILABLE", "OK", "OK"), 1: ("END", "OK", "OK")})
        switched = time.monotonic()
        wait_until(lambda: sum(r.started > switched for r in loop.replies) >= 10)
    replies = loop.replies
    assert [r for r in replies if r.status != 200] == []
    assert all(matches(r.scores, v1) or matches(r.scores, v2) for r in replies)
    assert matches(replies[0].scores, v1)
    assert all(matches(r.scores, v2) for r in replies if r.started > switched)


def test_a_removed_version_is_unloaded_and_the_previous_one_serves(
    repo: Path, live: ServerProcess, http: httpx.Client, expected
) -> None:
    v1, v2 = expected["test/cross-encoder"], expected["test/xlmr"]
    with RequestLoop(live.url, SWAP) as loop:
        wait_until(lambda: loop.count() >= 10)
        remove_version(repo / SWAP, 2, "rerank")
        wait_until(lambda: status_of(http, SWAP) == {2: ("END", "OK", "OK"), 1: ("AVAILABLE", "OK", "OK")})
        switched = time.monotonic()
        wait_until(lambda: sum(r.started > switched for r in loop.replies) >= 10)
    assert [r for r in loop.replies if r.status != 200] == []
    assert matches(loop.replies[0].scores, v2)
    assert all(matches(r.scores, v1) for r in loop.replies if r.started > switched)


def test_a_half_copied_version_is_not_loaded(
    repo: Path, http: httpx.Client, server_exports: dict[str, Exported], expected
) -> None:
    source = server_exports["xlmr"]
    tokenizer_dir, model_dir = source.version_dirs(1)
    shutil.copytree(tokenizer_dir, repo / SWAP / TOKENIZER_DIR / "3")
    target = repo / SWAP / "rerank" / "3"
    target.mkdir()
    shutil.copy(model_dir / MODEL_XML, target / MODEL_XML)
    weights = (model_dir / MODEL_BIN).read_bytes()
    step = max(1, len(weights) // 40)
    body = {"model": SWAP, "query": QUERY, "documents": DOCUMENTS}
    with (target / MODEL_BIN).open("wb") as partial:  # a slow copy: ~40 appends over ~2 s
        for start in range(0, len(weights), step):
            partial.write(weights[start : start + step])
            partial.flush()
            time.sleep(0.05)
            assert 3 not in status_of(http, SWAP)  # never tried while the files change
            assert matches(
                scores_by_index(http.post("/v3/rerank", json=body).json(), 3), expected["test/cross-encoder"]
            )
    wait_until(lambda: status_of(http, SWAP).get(3) == ("AVAILABLE", "OK", "OK"))
    assert matches(scores_by_index(http.post("/v3/rerank", json=body).json(), 3), expected["test/xlmr"])


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(
    repo: Path, http: httpx.Client, server_exports: dict[str, Exported], expected
) -> None:
    tokenizer_dir, model_dir = server_exports["xlmr"].version_dirs(1)
    shutil.copytree(tokenizer_dir, repo / SWAP / TOKENIZER_DIR / "4")
    broken = repo / SWAP / "rerank" / "4"
    broken.mkdir()
    (broken / MODEL_XML).write_text("<net this is not an IR")
    shutil.copy(model_dir / MODEL_BIN, broken / MODEL_BIN)
    wait_until(lambda: status_of(http, SWAP).get(4, ("", "OK", ""))[1] == "UNKNOWN", timeout=30)
    state, code, message = status_of(http, SWAP)[4]
    assert (state, code) == ("LOADING", "UNKNOWN") and "model.xml" in message
    assert status_of(http, SWAP)[3] == ("AVAILABLE", "OK", "OK")
    body = {"model": SWAP, "query": QUERY, "documents": DOCUMENTS}
    assert matches(scores_by_index(http.post("/v3/rerank", json=body).json(), 3), expected["test/xlmr"])
    remove_version(repo / SWAP, 4, "rerank")
    wait_until(lambda: status_of(http, SWAP)[4][0] == "END")


def test_a_broken_graph_is_reported_and_the_model_keeps_serving(
    repo: Path, http: httpx.Client, expected
) -> None:
    graph = repo / SWAP / "graph.pbtxt"
    good = graph.read_text()
    graph.write_text(good.replace("node {", "node { oops", 1))
    error = wait_until(lambda: http.get("/v1/config").json()[SWAP].get("error"))
    assert "graph.pbtxt" in error
    assert matches(scores_of(http, SWAP), expected["test/xlmr"])
    graph.write_text(good)
    wait_until(lambda: "error" not in http.get("/v1/config").json()[SWAP])


def test_an_unreadable_subconfig_is_reported_and_the_model_keeps_serving(
    repo: Path, http: httpx.Client, expected
) -> None:
    subconfig = repo / SWAP / SUBCONFIG_FILE
    good = subconfig.read_text()
    subconfig.write_text(good[: len(good) // 2])  # truncated JSON
    error = wait_until(lambda: http.get("/v1/config").json()[SWAP].get("error"))
    # Named relative to the repository: messages never show the server's own paths.
    assert error.startswith(f"{SWAP}/{SUBCONFIG_FILE}: invalid JSON") and str(repo) not in error
    assert status_of(http, SWAP)[3] == ("AVAILABLE", "OK", "OK")
    assert matches(scores_of(http, SWAP), expected["test/xlmr"])
    subconfig.write_text(good)
    wait_until(lambda: "error" not in http.get("/v1/config").json()[SWAP])


def test_config_json_changes_are_picked_up_by_polling(
    repo: Path, http: httpx.Client, server_exports: dict[str, Exported], expected
) -> None:
    names = [SWAP, STEADY, "nodevice/xlmr"]
    copy_model(server_exports["xlmr"], repo, "added/xlmr")
    write_config(repo, [*names, "added/xlmr"])
    wait_until(lambda: "added/xlmr" in [m["id"] for m in http.get("/v3/models").json()["data"]])
    assert matches(scores_of(http, "added/xlmr"), expected["test/xlmr"])

    body = {"model": "added/xlmr", "query": QUERY, "documents": DOCUMENTS}
    write_config(repo, names)
    wait_until(lambda: http.post("/v3/rerank", json=body).status_code == 404)
    assert status_of(http, "added/xlmr") == {1: ("END", "OK", "OK")}


def test_a_broken_config_json_keeps_everything_serving(
    repo: Path, http: httpx.Client, live: ServerProcess, expected
) -> None:
    config = repo / "config.json"
    good = config.read_text()
    before = http.get("/v1/config").json()
    config.write_text(good[: len(good) // 2])  # truncated JSON
    wait_until(lambda: "is not valid JSON" in live.log() or "invalid JSON" in live.log(), timeout=30)
    assert matches(scores_of(http, STEADY), expected["test/xlmr"])
    assert http.get("/v1/config").json() == before
    config.write_text(good)


# ---- POST /v1/config/reload (a server that does not poll) -------------------------------------


@pytest.fixture(scope="module")
def manual(
    server_exports: dict[str, Exported], start_server: Callable[..., ServerProcess], tmp_path_factory
) -> tuple[Path, ServerProcess]:
    root = tmp_path_factory.mktemp("reload") / "models"
    root.mkdir()
    copy_model(server_exports["xlmr"], root, "r/xlmr")
    write_config(root, ["r/xlmr"])
    return root, start_server(root / "config.json", "--poll_interval", "3600")


def test_reload_endpoint_applies_config_and_new_versions(
    manual: tuple[Path, ServerProcess], server_exports: dict[str, Exported], expected
) -> None:
    root, server = manual
    copy_model(server_exports["xlmr"], root, "r/second")
    write_config(root, ["r/xlmr", "r/second"])
    copy_version_in(server_exports["xlmr"], root / "r/xlmr", 2)
    with httpx.Client(base_url=server.url, timeout=120) as http:
        time.sleep(1)
        assert "r/second" not in http.get("/v1/config").json()  # no polling on this server
        response = http.post("/v1/config/reload")
        assert response.status_code == 200
        assert version_states(response.json(), "r/second") == {1: ("AVAILABLE", "OK", "OK")}
        assert version_states(response.json(), "r/xlmr") == {
            2: ("AVAILABLE", "OK", "OK"),
            1: ("END", "OK", "OK"),
        }
        assert matches(scores_of(http, "r/second"), expected["test/xlmr"])


def test_reload_with_a_broken_config_json_is_an_error_and_keeps_serving(
    manual: tuple[Path, ServerProcess], expected
) -> None:
    root, server = manual
    config = root / "config.json"
    good = config.read_text()
    config.write_text("{ not json")
    with httpx.Client(base_url=server.url, timeout=120) as http:
        response = http.post("/v1/config/reload")
        assert response.status_code == 400
        assert "config.json" in response.json()["error"]
        assert matches(scores_of(http, "r/xlmr"), expected["test/xlmr"])
        config.write_text(good)
        assert http.post("/v1/config/reload").status_code == 200
