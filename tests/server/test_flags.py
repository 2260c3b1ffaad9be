"""A server started as `ovtext-serve` with non-default flags: small batches, lower limits, debug log.

With --max_batch_size 4 and --batch_token_budget 1024, a request of hundreds of documents runs as
a hundred or more inference batches: the answers must still be Hugging Face's, each in its place,
whatever the order of the document lengths, and the metrics show no batch over either limit.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.exports import Exported
from tests.support.references import HFReranker
from tests.support.repository import assemble_repo
from tests.support.server import (
    CONSOLE_SCRIPT_COMMAND,
    ServerProcess,
    embeddings_of,
    metric_value,
    scores_by_index,
)

from .conftest import FP32_LOGIT_TOLERANCE, FP32_TOLERANCE

MAX_BATCH_SIZE = 4
TOKEN_BUDGET = 1024  # a bucket bound of ovtext_batch_padded_tokens: "no batch over it" is readable
MAX_DOCUMENTS = 400
MAX_BODY_BYTES = 300_000
FLAGS = (
    "--max_batch_size", str(MAX_BATCH_SIZE),
    "--batch_token_budget", str(TOKEN_BUDGET),
    "--max_documents", str(MAX_DOCUMENTS),
    "--max_body_bytes", str(MAX_BODY_BYTES),
    "--log_level", "debug",
)  # fmt: skip
QUERY = "what do pandas eat in the mountain forests?"
VOCABULARY = (
    "the giant panda eats bamboo in mountain forests of central China and sleeps between meals while "
    "markets closed higher on Tuesday after the report of rain tomorrow and sun on the weekend café 😀"
)
WORDS = VOCABULARY.split()


def documents(count: int, seed: int, long_documents: int) -> list[str]:
    """Texts of 1-30 words, a tenth of 100-150 words, and `long_documents` of 550-700 words (long
    enough to be chunked), in random order."""
    rng = random.Random(seed)
    medium = count // 10
    lengths = [rng.randint(550, 700) for _ in range(long_documents)]
    lengths += [rng.randint(100, 150) for _ in range(medium)]
    lengths += [rng.randint(1, 30) for _ in range(count - long_documents - medium)]
    rng.shuffle(lengths)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for words in lengths]


def ordered(texts: list[str], order: str, lengths: list[int]) -> list[str]:
    if order == "shortest-first":
        return [texts[i] for i in np.argsort(lengths, kind="stable")]
    return texts  # as generated: lengths shuffled


@pytest.fixture(scope="module")
def flags_server(
    server_exports: dict[str, Exported], start_server: Callable[..., ServerProcess], tmp_path_factory
) -> ServerProcess:
    root = tmp_path_factory.mktemp("flags") / "models"
    models = {"test/cross-encoder": "cross-encoder", "test/xlmr": "xlmr", "test/minilm": "minilm"}
    config_path = assemble_repo(root, {name: server_exports[kind] for name, kind in models.items()})
    return start_server(config_path, *FLAGS, command=CONSOLE_SCRIPT_COMMAND)


@pytest.fixture(scope="module")
def http(flags_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=flags_server.url, timeout=300) as client:
        yield client


def batch_metrics(http: httpx.Client, model: str, endpoint: str) -> dict[str, float]:
    text = http.get("/metrics").text
    return {
        "batches": metric_value(text, "ovtext_batch_size_count", model=model),
        "rows": metric_value(text, "ovtext_batch_size_sum", model=model),
        "batches_within_size": metric_value(
            text, "ovtext_batch_size_bucket", model=model, le=f"{float(MAX_BATCH_SIZE)}"
        ),
        "padded_tokens": metric_value(text, "ovtext_batch_padded_tokens_sum", model=model),
        "batches_within_budget": metric_value(
            text, "ovtext_batch_padded_tokens_bucket", model=model, le=f"{float(TOKEN_BUDGET)}"
        ),
        "documents": metric_value(text, "ovtext_request_documents_sum", endpoint=endpoint, model=model),
        "requests": metric_value(text, "ovtext_request_documents_count", endpoint=endpoint, model=model),
    }


def assert_batches_within_limits(
    before: dict[str, float], after: dict[str, float], rows: int, items: int
) -> None:
    delta = {key: after[key] - before[key] for key in before}
    assert delta["rows"] == rows  # every framed sequence ran once
    assert delta["batches"] >= rows / MAX_BATCH_SIZE
    assert delta["batches_within_size"] == delta["batches"]  # no batch over --max_batch_size
    assert delta["batches_within_budget"] == delta["batches"]  # none over --batch_token_budget
    assert (delta["documents"], delta["requests"]) == (items, 1)  # ovtext_request_documents


def rerank_reference(hf: HFReranker, documents: list[str], max_length: int) -> tuple[np.ndarray, int, int]:
    """(Hugging Face logit of each document: its best window when it does not fit; sequences; tokens)."""
    logits = np.empty(len(documents))
    framed = [len(ids) for ids in hf.tokenizer([QUERY] * len(documents), documents)["input_ids"]]
    fits = [i for i, n in enumerate(framed) if n <= max_length]
    logits[fits] = hf.logits(QUERY, [documents[i] for i in fits])
    rows, tokens = len(fits), sum(framed[i] for i in fits)
    for i in sorted(set(range(len(documents))) - set(fits)):
        windows = hf.chunk_windows(QUERY, documents[i], max_length)
        logits[i] = hf.window_logits(QUERY, documents[i], max_length).max()
        rows, tokens = rows + len(windows["input_ids"]), tokens + int(windows["attention_mask"].sum())
    return logits, rows, tokens


@pytest.mark.parametrize("order", ["shuffled", "shortest-first"])
@pytest.mark.parametrize(("model", "kind"), [("test/cross-encoder", "cross-encoder"), ("test/xlmr", "xlmr")])
def test_hundreds_of_documents_in_many_batches_score_like_hugging_face(
    http: httpx.Client, hf_rerankers, server_exports, model: str, kind: str, order: str
) -> None:
    hf: HFReranker = hf_rerankers[model]
    max_length = server_exports[kind].tokenizer_info().max_length
    generated = documents(200, seed=11, long_documents=4)
    texts = ordered(generated, order, [len(hf.ids(text)) for text in generated])
    expected, rows, tokens = rerank_reference(hf, texts, max_length)
    assert rows > len(texts)  # some documents are chunked

    before = batch_metrics(http, model, "/v3/rerank")
    response = http.post(
        "/v3/rerank", json={"model": model, "query": QUERY, "documents": texts, "raw_scores": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(result["index"] for result in body["results"]) == list(range(len(texts)))
    assert np.abs(scores_by_index(body, len(texts)) - expected).max() < FP32_LOGIT_TOLERANCE
    assert body["usage"]["prompt_tokens"] == tokens
    assert_batches_within_limits(before, batch_metrics(http, model, "/v3/rerank"), rows, len(texts))


@pytest.mark.parametrize("order", ["shuffled", "shortest-first"])
def test_hundreds_of_inputs_in_many_batches_embed_like_sentence_transformers(
    http: httpx.Client, sentence_transformer, order: str
) -> None:
    generated = documents(200, seed=12, long_documents=0)  # all within the model's 256 tokens
    lengths = [len(ids) for ids in sentence_transformer.tokenizer(generated)["input_ids"]]
    assert max(lengths) <= 256
    texts = ordered(generated, order, lengths)
    expected = sentence_transformer.encode(texts, batch_size=32)

    before = batch_metrics(http, "test/minilm", "/v3/embeddings")
    response = http.post("/v3/embeddings", json={"model": "test/minilm", "input": texts})
    assert response.status_code == 200, response.text
    assert np.abs(embeddings_of(response.json()) - expected).max() < FP32_TOLERANCE
    assert response.json()["usage"]["prompt_tokens"] == sum(lengths)
    after = batch_metrics(http, "test/minilm", "/v3/embeddings")
    assert_batches_within_limits(before, after, len(texts), len(texts))
    assert after["padded_tokens"] - before["padded_tokens"] >= sum(lengths)  # padding only adds


def test_max_documents(http: httpx.Client) -> None:
    at_limit = {"model": "test/xlmr", "query": QUERY, "documents": ["a bear"] * MAX_DOCUMENTS}
    assert http.post("/v3/rerank", json=at_limit).status_code == 200
    over = {**at_limit, "documents": ["a bear"] * (MAX_DOCUMENTS + 1)}
    response = http.post("/v3/rerank", json=over)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (
        error.startswith("documents:") and f"at most {MAX_DOCUMENTS}" in error and "--max_documents" in error
    )


def body_of_size(size: int) -> bytes:
    """An embeddings request of exactly `size` bytes (the padding is in `user`, which is ignored)."""
    empty = json.dumps({"model": "test/minilm", "input": "hello", "user": ""}).encode()
    return json.dumps({"model": "test/minilm", "input": "hello", "user": "x" * (size - len(empty))}).encode()


def test_max_body_bytes(http: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    assert len(body_of_size(MAX_BODY_BYTES)) == MAX_BODY_BYTES
    assert (
        http.post("/v3/embeddings", content=body_of_size(MAX_BODY_BYTES), headers=headers).status_code == 200
    )
    response = http.post("/v3/embeddings", content=body_of_size(MAX_BODY_BYTES + 1), headers=headers)
    assert response.status_code == 413
    assert f"limit of {MAX_BODY_BYTES} bytes" in response.json()["error"]


def test_debug_log_has_every_request(
    http: httpx.Client, flags_server: ServerProcess, server: ServerProcess
) -> None:
    body: dict[str, Any] = {"model": "test/minilm", "input": "hello"}
    for path in ("/v3/embeddings?probe=debug", "/v1/embeddings?probe=debug"):
        assert http.post(path, json=body).status_code == 200
    log = flags_server.log()
    assert "POST /v3/embeddings?probe=debug" in log and "POST /v1/embeddings?probe=debug" in log
    assert " DEBUG " in log
    # The shared server runs at the default level (info): its answered requests are not logged.
    assert httpx.post(f"{server.url}/v3/embeddings?probe=info", json=body).status_code == 200
    assert "probe=info" not in server.log() and " DEBUG " not in server.log()
