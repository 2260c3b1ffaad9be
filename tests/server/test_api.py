"""The rest of the HTTP surface: models, health, config, metrics, bad input, concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.exports import Exported
from tests.support.references import HFReranker
from tests.support.repository import assemble_repo
from tests.support.server import ServerProcess, metric_samples, scores_by_index, version_states, wait_until

from .conftest import FP32_TOLERANCE, MAIN_MODELS

SERVED = sorted(MAIN_MODELS)
RERANK = {"model": "test/xlmr", "query": "what is a panda?", "documents": ["a bear", "a car"]}


@pytest.mark.parametrize("path", ["/v3/models", "/v1/models"])
def test_model_list(client, server: ServerProcess, path) -> None:
    body = client.get(path).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == SERVED
    for card in body["data"]:
        # The fields docs/api/index.md lists, and nothing else.
        assert set(card) == {
            "id", "object", "created", "owned_by", "task", "version", "aliases", "weight_format",
            "quantization", "accuracy", "prompts", "default_prompt_name", "instruction",
            "inference_precision", "sentence_modules",
        }  # fmt: skip
        assert card["object"] == "model" and card["owned_by"] == "ovtext" and card["version"] == 1
        assert (card["weight_format"], card["quantization"], card["accuracy"]) == ("fp32", "none", None)
        assert card["aliases"] == []
        assert server.started_at - 1 <= card["created"] <= time.time()  # when this server loaded it
    tasks = {m["id"]: m["task"] for m in body["data"]}
    assert tasks["test/minilm"] == "embeddings" and tasks["test/xlmr"] == "rerank"


def _get_status(server: ServerProcess, path: str) -> int | None:
    try:
        return httpx.get(f"{server.url}{path}", timeout=2).status_code
    except httpx.TransportError:
        return None


def test_health(client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_ready_is_503_until_the_models_are_loaded(
    server_exports: dict[str, Exported],
    start_server: Callable[..., ServerProcess],
    hf_rerankers: dict[str, HFReranker],
    tmp_path: Path,
) -> None:
    """The first load waits on a graph.pbtxt that is a named pipe: loading lasts until the test writes it."""
    root = tmp_path / "models"
    config_path = assemble_repo(root, {"slow/xlmr": server_exports["xlmr"]})
    graph = root / "slow/xlmr" / "graph.pbtxt"
    later = graph.with_name("graph.later")
    graph.rename(later)
    os.mkfifo(graph)
    server = start_server(config_path, wait=False)
    wait_until(lambda: _get_status(server, "/v2/health/live") == 200)
    for _ in range(3):
        response = httpx.get(f"{server.url}/v2/health/ready")
        assert response.status_code == 503 and "loading" in response.json()["error"]
        time.sleep(0.2)
    body = {"model": "slow/xlmr", "query": RERANK["query"], "documents": RERANK["documents"]}
    assert httpx.post(f"{server.url}/v3/rerank", json=body).status_code == 503

    with open(graph, "w") as pipe:  # the server is blocked reading it: this open lets it go on
        os.replace(later, graph)  # its next polls read a regular file
        pipe.write(graph.read_text())
    server.wait_ready(timeout=60)
    scores = scores_by_index(httpx.post(f"{server.url}/v3/rerank", json=body).json(), 2)
    expected = hf_rerankers["test/xlmr"].scores(body["query"], body["documents"])
    assert np.abs(scores - expected).max() < FP32_TOLERANCE


def test_model_ready_takes_url_encoded_names(client) -> None:
    response = client.get("/v2/models/test%2Fcross-encoder/ready")
    assert response.status_code == 200 and response.json()["ready"] is True
    assert client.get("/v2/models/test/cross-encoder/ready").status_code == 200
    missing = client.get("/v2/models/no%2Fsuch/ready")
    assert missing.status_code == 404 and "no/such" in missing.json()["error"]


def test_config_reports_every_version_available(client) -> None:
    status = client.get("/v1/config").json()
    assert sorted(status) == SERVED
    for name in SERVED:
        assert version_states(status, name) == {1: ("AVAILABLE", "OK", "OK")}


def test_openapi_schema_and_docs(client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v3/rerank", "/v3/embeddings", "/v1/config"} <= set(schema["paths"])
    request_schema = schema["paths"]["/v3/rerank"]["post"]["requestBody"]["content"]["application/json"]
    assert request_schema["schema"]["$ref"].endswith("/RerankRequest")
    docs = client.get("/docs")
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text  # the page loads this schema


BAD_RERANK = [
    ({"query": "q"}, "documents"),
    ({"query": "q", "documents": []}, "documents"),
    ({"query": "q", "documents": ["a", ""]}, "documents"),
    ({"query": "q", "documents": "a"}, "documents"),
    ({"query": "q", "documents": [1]}, "documents"),
    ({"query": "q", "documents": [{"title": "no text"}]}, "documents"),
    ({"query": "", "documents": ["a"]}, "query"),
    ({"query": 5, "documents": ["a"]}, "query"),
    ({"documents": ["a"]}, "query"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
    ({"query": "q", "documents": ["a"], "top_n": "2"}, "top_n"),
    ({"query": "q", "documents": ["a"], "return_documents": "yes"}, "return_documents"),
    ({"query": "q", "documents": ["a"], "max_chunks_per_doc": -1}, "max_chunks_per_doc"),
    ({"query": "q", "documents": ["a"], "model": 7}, "model"),
    ({"query": "q", "documents": ["a"], "model": "test/minilm"}, "model"),  # an embedder
    ({"query": "q", "documents": ["a"] * 1001}, "documents"),  # over --max_documents
]


@pytest.mark.parametrize(("body", "field"), BAD_RERANK)
def test_bad_rerank_requests_name_the_field(client, body, field) -> None:
    request = {"model": "test/xlmr", **body} if "model" not in body else body
    response = client.post("/v3/rerank", json=request)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"{field}:"), response.json()


BAD_EMBEDDINGS = [
    ({}, "input"),
    ({"input": ""}, "input"),
    ({"input": []}, "input"),
    ({"input": ["a", ""]}, "input"),
    ({"input": [1, "a"]}, "input"),
    ({"input": [[1, 2], []]}, "input"),
    ({"input": [[1, "x"]]}, "input"),
    ({"input": {"text": "a"}}, "input"),
    ({"input": [[-1]]}, "input"),
    ({"input": [[10**9]]}, "input"),  # outside the vocabulary
    ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
    ({"input": "a", "dimensions": 0}, "dimensions"),
    ({"input": "a", "dimensions": 385}, "dimensions"),  # MiniLM has 384
    ({"input": ["a"] * 2049}, "input"),  # over --max_inputs
]


@pytest.mark.parametrize(("body", "field"), BAD_EMBEDDINGS)
def test_bad_embeddings_requests_name_the_field(client, body, field) -> None:
    response = client.post("/v3/embeddings", json={"model": "test/minilm", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"{field}:"), response.json()


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"query": "q", "documents": ["a"', {"content-type": "application/json"}),  # malformed JSON
        (b"[1, 2]", {"content-type": "application/json"}),  # not an object
        (b"", {"content-type": "application/json"}),  # no body
        (b"\xff\xfe", {"content-type": "application/json"}),  # not UTF-8
    ],
)
def test_malformed_bodies_are_400(client, content, headers) -> None:
    response = client.post("/v3/rerank", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith("body:")


def test_json_without_a_content_type_is_still_json(client, hf_rerankers) -> None:
    # curl -d without -H sends application/x-www-form-urlencoded.
    content = json.dumps(RERANK).encode()
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {}):
        response = client.post("/v3/rerank", content=content, headers=headers)
        assert response.status_code == 200, response.text
        expected = hf_rerankers["test/xlmr"].scores(RERANK["query"], RERANK["documents"])
        assert np.abs(scores_by_index(response.json(), 2) - expected).max() < FP32_TOLERANCE


def test_unknown_model_is_404(client) -> None:
    for path, body in [
        ("/v3/rerank", {**RERANK, "model": "no/such"}),
        ("/v3/embeddings", {"model": "x", "input": "a"}),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == 404
        assert response.json()["error"].startswith("model:")


def test_body_over_the_limit_is_413_by_length_and_by_stream(client) -> None:
    big = json.dumps({**RERANK, "documents": ["word " * 1000] * 2200}).encode()  # ~11 MB > 10 MB
    assert len(big) > 10 * 1024 * 1024
    response = client.post("/v3/rerank", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"].startswith("body:")

    def stream():  # chunked: no Content-Length to trust
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    response = client.post("/v3/rerank", content=stream(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"].startswith("body:")
    assert client.post("/v3/rerank", json=RERANK).status_code == 200  # the worker is alive


def test_unknown_path_and_method(client) -> None:
    assert client.get("/v3/nothing").status_code == 404
    response = client.get("/v3/rerank")
    assert response.status_code == 405 and "error" in response.json()


def test_client_mistakes_leave_no_traceback_in_the_log(client, server: ServerProcess) -> None:
    for body, _ in BAD_RERANK[:6]:
        client.post("/v3/rerank", json=body)
    client.post("/v3/rerank", content=b"{oops", headers={"content-type": "application/json"})
    log = server.log()
    assert "-> 400" in log  # client errors are logged, one line each
    assert "Traceback" not in log and "ERROR" not in log


def test_metrics(client) -> None:
    client.post("/v3/rerank", json=RERANK)
    client.post("/v3/rerank", json={**RERANK, "documents": []})
    client.post("/v3/embeddings", json={"model": "test/minilm", "input": ["a", "b", "c"]})
    text = client.get("/metrics").text
    assert (
        metric_samples(text, "ovtext_requests_total", endpoint="/v3/rerank", model="test/xlmr", status="200")[
            0
        ]
        >= 1
    )
    assert metric_samples(text, "ovtext_requests_total", endpoint="/v3/rerank", status="400")[0] >= 1
    assert (
        metric_samples(text, "ovtext_request_errors_total", endpoint="/v3/rerank", error="InvalidRequest")[0]
        >= 1
    )
    latency = metric_samples(
        text, "ovtext_request_duration_seconds_count", endpoint="/v3/embeddings", model="test/minilm"
    )
    assert latency[0] >= 1
    assert metric_samples(text, "ovtext_batch_size_bucket", model="test/minilm", le="4.0")[0] >= 1
    assert metric_samples(text, "ovtext_inference_duration_seconds_count", model="test/xlmr")[0] >= 1
    for name in SERVED:
        assert metric_samples(text, "ovtext_queue_size", model=name) == [0.0]


def test_concurrent_requests_get_their_own_correct_answers(server: ServerProcess, client) -> None:
    queries = [f"question number {i} about pandas and bears" for i in range(12)]
    documents = [[f"document {i}.{j}: " + "bamboo " * (3 * j + i) for j in range(6)] for i in range(12)]
    texts = [f"sentence {i} " + "words " * i for i in range(12)]
    # One at a time first: the answers each concurrent request must get.
    expected_rerank = [
        client.post("/v3/rerank", json={"model": m, "query": q, "documents": d}).json()
        for m in ("test/xlmr", "test/cross-encoder")
        for q, d in zip(queries, documents, strict=True)
    ]
    expected_embeddings = client.post("/v3/embeddings", json={"model": "test/minilm", "input": texts}).json()

    async def run_all() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            rerank_calls = [
                http.post("/v3/rerank", json={"model": m, "query": q, "documents": d})
                for m in ("test/xlmr", "test/cross-encoder")
                for q, d in zip(queries, documents, strict=True)
            ]
            embed_calls = [
                http.post("/v3/embeddings", json={"model": "test/minilm", "input": t}) for t in texts
            ]
            responses = await asyncio.gather(*rerank_calls, *embed_calls)
            return responses[: len(rerank_calls)], responses[len(rerank_calls) :]

    reranked, embedded = asyncio.run(run_all())
    assert all(r.status_code == 200 for r in reranked + embedded)
    for got, expected in zip(reranked, expected_rerank, strict=True):
        assert [r["index"] for r in got.json()["results"]] == [r["index"] for r in expected["results"]]
        got_scores = [r["relevance_score"] for r in got.json()["results"]]
        expected_scores = [r["relevance_score"] for r in expected["results"]]
        assert np.allclose(got_scores, expected_scores, atol=1e-5)
    for index, response in enumerate(embedded):
        got = np.array(response.json()["data"][0]["embedding"])
        assert np.allclose(got, expected_embeddings["data"][index]["embedding"], atol=1e-5)


def test_the_reference_command_line_with_its_grpc_port_starts_the_server(
    server_exports: dict[str, Exported],
    start_server: Callable[..., ServerProcess],
    hf_rerankers: dict[str, HFReranker],
    tmp_path: Path,
) -> None:
    # The seed's `docker run ... --port 9000 --rest_port 8000 --config_path ...`: --port names a gRPC
    # port this server does not have; the line must still work and the log must say it is ignored.
    config_path = assemble_repo(tmp_path / "models", {"test/cross-encoder": server_exports["cross-encoder"]})
    server = start_server(config_path, "--port", "9000")
    body = {"model": "test/cross-encoder", "query": "welcome", "documents": ["good morning", "farewell"]}
    answer = httpx.post(f"{server.url}/v3/rerank", json=body, timeout=60)
    assert answer.status_code == 200
    expected = hf_rerankers["test/cross-encoder"].scores(body["query"], body["documents"])
    assert np.abs(scores_by_index(answer.json(), 2) - expected).max() < FP32_TOLERANCE
    assert "--port 9000 ignored" in server.log()
