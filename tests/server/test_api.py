"""The rest of the HTTP surface: models, health, config, metrics, bad input, concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from .conftest import ServerProcess, version_states

SERVED = ["test/cross-encoder", "test/minilm", "test/minilm-truncate", "test/xlmr", "test/xlmr-few-chunks"]
RERANK = {"model": "test/xlmr", "query": "what is a panda?", "documents": ["a bear", "a car"]}


@pytest.mark.parametrize("path", ["/v3/models", "/v1/models"])
def test_model_list(client, path) -> None:
    body = client.get(path).json()
    assert body["object"] == "list"
    assert sorted(m["id"] for m in body["data"]) == SERVED
    tasks = {m["id"]: m["task"] for m in body["data"]}
    assert tasks["test/minilm"] == "embeddings" and tasks["test/xlmr"] == "rerank"
    assert {m["object"] for m in body["data"]} == {"model"}


def test_health(client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200


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
    assert client.get("/docs").status_code == 200


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


def test_json_without_a_content_type_is_still_json(client) -> None:
    # curl -d without -H sends application/x-www-form-urlencoded.
    content = json.dumps(RERANK).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/v3/rerank", content=content, headers=headers).status_code == 200


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


def _samples(text: str, metric: str, **labels: str) -> list[float]:
    """Values of the samples of `metric` that carry all `labels` (in any order)."""
    values = []
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name == metric and all(f'{key}="{value}"' in rest for key, value in labels.items()):
            values.append(float(line.rsplit(" ", 1)[1]))
    return values


def test_metrics(client) -> None:
    client.post("/v3/rerank", json=RERANK)
    client.post("/v3/rerank", json={**RERANK, "documents": []})
    client.post("/v3/embeddings", json={"model": "test/minilm", "input": ["a", "b", "c"]})
    text = client.get("/metrics").text
    assert (
        _samples(text, "ovtext_requests_total", endpoint="/v3/rerank", model="test/xlmr", status="200")[0]
        >= 1
    )
    assert _samples(text, "ovtext_requests_total", endpoint="/v3/rerank", status="400")[0] >= 1
    assert (
        _samples(text, "ovtext_request_errors_total", endpoint="/v3/rerank", error="InvalidRequest")[0] >= 1
    )
    latency = _samples(
        text, "ovtext_request_duration_seconds_count", endpoint="/v3/embeddings", model="test/minilm"
    )
    assert latency[0] >= 1
    assert _samples(text, "ovtext_batch_size_bucket", model="test/minilm", le="4.0")[0] >= 1
    assert _samples(text, "ovtext_inference_duration_seconds_count", model="test/xlmr")[0] >= 1
    for name in SERVED:
        assert _samples(text, "ovtext_queue_size", model=name) == [0.0]


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
    main_repo, start_server: Callable[..., ServerProcess]
) -> None:
    # The seed's `docker run ... --port 9000 --rest_port 8000 --config_path ...`: --port names a gRPC
    # port this server does not have; the line must still work and the log must say it is ignored.
    server = start_server(main_repo / "config.json", "--port", "9000")
    answer = httpx.post(
        f"{server.url}/v3/rerank",
        json={"model": "test/cross-encoder", "query": "welcome", "documents": ["good morning", "farewell"]},
        timeout=60,
    )
    assert answer.status_code == 200
    assert sorted(r["index"] for r in answer.json()["results"]) == [0, 1]
    assert "--port 9000 ignored" in server.log()
