"""Version policies as served (`specific`, `all`), and a retired version's memory released once its
last request is done.

Each model here has versions of two different rerankers (the BERT cross-encoder and the tiny
XLM-R), so the scores tell which version answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.repository.layout import MODEL_BIN, TOKENIZER_DIR
from tests.support.exports import Exported
from tests.support.references import HFReranker
from tests.support.repository import (
    copy_model,
    copy_version_in,
    remove_version,
    set_version_policy,
    write_config,
)
from tests.support.server import ServerProcess, scores_by_index, version_states, wait_until

from .conftest import FP32_TOLERANCE

SPECIFIC, ALL, RETIRE = "policy/specific", "policy/all", "retire/reranker"
QUERY = "what is a panda?"
DOCUMENTS = ["The giant panda is a bear species endemic to China.", "The stock market closed higher.", "hi"]


@pytest.fixture(scope="module")
def repo(server_exports: dict[str, Exported], tmp_path_factory) -> Path:
    bert, xlmr = server_exports["cross-encoder"], server_exports["xlmr"]
    root = tmp_path_factory.mktemp("versions") / "models"
    root.mkdir()
    # specific [1, 2] out of 1 (BERT), 2 (XLM-R), 3 (BERT): versions 1 and 2 load, requests get 2.
    folder = copy_model(bert, root, SPECIFIC)
    copy_version_in(xlmr, folder, 2)
    copy_version_in(bert, folder, 3)
    set_version_policy(folder, {"specific": {"versions": [1, 2]}})
    # all: 1 (BERT) and 2 (XLM-R) both load, requests get 2.
    folder = copy_model(bert, root, ALL)
    copy_version_in(xlmr, folder, 2)
    set_version_policy(folder, {"all": {}})
    copy_model(bert, root, RETIRE)
    write_config(root, [SPECIFIC, ALL, RETIRE])
    return root


@pytest.fixture(scope="module")
def live(repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(repo / "config.json", "--poll_interval", "0.3")


@pytest.fixture(scope="module")
def http(live: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def expected(hf_rerankers: dict[str, HFReranker]) -> dict[str, np.ndarray]:
    scores = {"bert": hf_rerankers["test/cross-encoder"].scores(QUERY, DOCUMENTS)}
    scores["xlmr"] = hf_rerankers["test/xlmr"].scores(QUERY, DOCUMENTS)
    assert np.abs(scores["bert"] - scores["xlmr"]).max() > 0.01  # the answers tell the versions apart
    return scores


def answered_by(http: httpx.Client, model: str, expected: dict[str, np.ndarray]) -> str:
    response = http.post("/v3/rerank", json={"model": model, "query": QUERY, "documents": DOCUMENTS})
    assert response.status_code == 200, response.text
    scores = scores_by_index(response.json(), len(DOCUMENTS))
    (which,) = [name for name, values in expected.items() if np.abs(scores - values).max() < FP32_TOLERANCE]
    return which


def states(http: httpx.Client, model: str) -> dict[int, str]:
    return {
        version: state
        for version, (state, _, _) in version_states(http.get("/v1/config").json(), model).items()
    }


def served_version(http: httpx.Client, model: str) -> int:
    (card,) = [card for card in http.get("/v3/models").json()["data"] if card["id"] == model]
    return card["version"]


def test_specific_loads_the_listed_versions_and_serves_the_highest(http: httpx.Client, expected) -> None:
    assert states(http, SPECIFIC) == {2: "AVAILABLE", 1: "AVAILABLE"}  # 3 is on disk, not listed
    assert served_version(http, SPECIFIC) == 2
    assert answered_by(http, SPECIFIC, expected) == "xlmr"


def test_all_loads_every_version_and_a_removed_one_falls_back_to_the_loaded_next(
    repo: Path, http: httpx.Client, expected
) -> None:
    assert states(http, ALL) == {2: "AVAILABLE", 1: "AVAILABLE"}
    assert served_version(http, ALL) == 2 and answered_by(http, ALL, expected) == "xlmr"
    remove_version(repo / ALL, 2, "rerank")
    wait_until(lambda: states(http, ALL) == {2: "END", 1: "AVAILABLE"})
    assert served_version(http, ALL) == 1 and answered_by(http, ALL, expected) == "bert"


def mapped_files(pid: int) -> set[str]:
    """Files the process has mapped: OpenVINO maps model.bin instead of reading it."""
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split(maxsplit=5)[5].strip() for line in maps if len(line.split(maxsplit=5)) == 6}


def test_a_retired_version_finishes_its_requests_then_ends(
    repo: Path, live: ServerProcess, http: httpx.Client, server_exports: dict[str, Exported], expected
) -> None:
    """The weights are read into memory, not mapped (ENABLE_MMAP off: a model.bin copied over in
    place cannot crash the server), so the states say when a retired version is released."""
    model_dir = repo / RETIRE
    version_1 = {str(model_dir / kind / "1" / MODEL_BIN) for kind in (TOKENIZER_DIR, "rerank")}
    assert not version_1 & mapped_files(live.pid)  # read, not mapped

    # A request long enough to be running when version 2 takes over: about 20k tokens through the
    # cross-encoder (3 s on 2 quiet cores), where the swap takes about 1 s.
    long_documents = ["The weather report says rain tomorrow and sun on the weekend. " * 40] * 40
    result: dict[str, httpx.Response] = {}

    def long_request() -> None:
        body = {"model": RETIRE, "query": QUERY, "documents": [*DOCUMENTS, *long_documents]}
        result["response"] = http.post("/v3/rerank", json=body)

    worker = threading.Thread(target=long_request)
    worker.start()
    wait_until(lambda: "ovtext_queue_size" in http.get("/metrics").text)  # the server is answering
    copy_version_in(server_exports["xlmr"], model_dir, 2)
    wait_until(lambda: states(http, RETIRE).get(2) == "AVAILABLE")
    assert worker.is_alive(), "the long request ended before version 2 took over: make it longer"
    assert states(http, RETIRE)[1] == "UNLOADING"  # retired, still in use
    assert answered_by(http, RETIRE, expected) == "xlmr"  # new requests go to version 2

    worker.join(timeout=300)
    response = result["response"]
    assert response.status_code == 200, response.text
    scores = scores_by_index(response.json(), len(DOCUMENTS) + len(long_documents))[: len(DOCUMENTS)]
    assert np.abs(scores - expected["bert"]).max() < FP32_TOLERANCE  # it finished on version 1
    wait_until(lambda: states(http, RETIRE)[1] == "END", timeout=10)
