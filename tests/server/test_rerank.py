"""POST /v3/rerank (Cohere API) against Hugging Face on the BERT and XLM-R fixture rerankers."""

from __future__ import annotations

import cohere
import httpx
import numpy as np
import pytest

from tests.support.references import HFReranker
from tests.support.server import ServerProcess, scores_by_index

from .conftest import FP32_LOGIT_TOLERANCE, FP32_TOLERANCE

QUERY = "what is a panda?"
DOCUMENTS = [
    "hi",
    "The giant panda is a bear species endemic to China.",
    "Pandas eat bamboo and live in mountain forests.",
    "The stock market closed higher on Tuesday.",
    "Café crème, naïve façade — accents everywhere.",
    "パンダは中国の山岳地帯に住むクマの一種です。",
    "熊猫是中国特有的熊科动物。",
    "emoji 🐼🎋 bamboo!",
]
FAMILIES = ["test/cross-encoder", "test/xlmr"]
KIND = {"test/cross-encoder": "cross-encoder", "test/xlmr": "xlmr"}


def rerank(client: httpx.Client, **body) -> dict:
    response = client.post("/v3/rerank", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("model", FAMILIES)
def test_scores_equal_hugging_face_sigmoid(client, hf_rerankers, model) -> None:
    body = rerank(client, model=model, query=QUERY, documents=DOCUMENTS)
    expected = hf_rerankers[model].scores(QUERY, DOCUMENTS)
    got = scores_by_index(body, len(DOCUMENTS))
    assert np.abs(got - expected).max() < FP32_TOLERANCE
    assert body["model"] == model
    # Sorted by relevance, highest first; every document once.
    relevance = [r["relevance_score"] for r in body["results"]]
    assert relevance == sorted(relevance, reverse=True)
    assert sorted(r["index"] for r in body["results"]) == list(range(len(DOCUMENTS)))
    assert "document" not in body["results"][0]


@pytest.mark.parametrize("model", FAMILIES)
def test_raw_scores_are_the_logits(client, hf_rerankers, model) -> None:
    body = rerank(client, model=model, query=QUERY, documents=DOCUMENTS, raw_scores=True)
    expected = hf_rerankers[model].logits(QUERY, DOCUMENTS)
    assert np.abs(scores_by_index(body, len(DOCUMENTS)) - expected).max() < FP32_LOGIT_TOLERANCE


def test_fine_tuned_cross_encoder_ranks_relevant_documents_first(client) -> None:
    body = rerank(client, model="test/cross-encoder", query=QUERY, documents=DOCUMENTS[:4])
    assert {r["index"] for r in body["results"][:2]} == {1, 2}


def test_top_n_and_return_documents(client) -> None:
    documents = [DOCUMENTS[0], {"text": DOCUMENTS[1], "id": "doc-1"}, DOCUMENTS[2]]
    full = rerank(client, model="test/cross-encoder", query=QUERY, documents=documents)
    top = rerank(
        client, model="test/cross-encoder", query=QUERY, documents=documents, top_n=2, return_documents=True
    )
    assert [r["index"] for r in top["results"]] == [r["index"] for r in full["results"][:2]]
    for result in top["results"]:
        original = documents[result["index"]]
        text = original if isinstance(original, str) else original["text"]
        assert result["document"]["text"] == text
        if isinstance(original, dict):
            assert result["document"]["id"] == "doc-1"  # other fields of an object document are kept


def test_usage_counts_the_framed_tokens(client, hf_rerankers) -> None:
    hf = hf_rerankers["test/cross-encoder"].tokenizer
    body = rerank(client, model="test/cross-encoder", query=QUERY, documents=DOCUMENTS[:3])
    expected = sum(len(hf(QUERY, d)["input_ids"]) for d in DOCUMENTS[:3])
    assert body["usage"] == {"prompt_tokens": expected, "total_tokens": expected}


# Repetitions of each part of the long document: about one chunk each (BERT 512, tiny XLM-R 128 tokens).
PART_REPEATS = {"test/cross-encoder": 45, "test/xlmr": 8}


@pytest.mark.parametrize("model", FAMILIES)
def test_long_document_scores_its_best_chunk(client, hf_rerankers, server_exports, model) -> None:
    hf: HFReranker = hf_rerankers[model]
    numbers = "1 2 3 4 5 6 7 8 9 10 " * PART_REPEATS[model]
    prose = "The weather report says rain tomorrow and sun on the weekend. " * PART_REPEATS[model]
    long_document = numbers + prose + numbers
    max_length = server_exports[KIND[model]].tokenizer_info().max_length
    windows = hf.chunk_windows(QUERY, long_document, max_length)  # Hugging Face's own split
    assert len(windows["input_ids"]) >= 3
    window_logits = hf.window_logits(QUERY, long_document, max_length)
    # A document whose best chunk is not its first: the max over chunks is really taken.
    assert window_logits.max() > window_logits[0] + 0.1

    body = rerank(client, model=model, query=QUERY, documents=[long_document, "hi"], raw_scores=True)
    assert abs(scores_by_index(body, 2)[0] - window_logits.max()) < FP32_LOGIT_TOLERANCE
    # The query is in every chunk, and the usage shows it.
    framed = int(windows["attention_mask"].sum()) + len(hf.tokenizer(QUERY, "hi")["input_ids"])
    assert body["usage"]["prompt_tokens"] == framed

    # max_chunks_per_doc keeps the first chunks only.
    first = rerank(
        client, model=model, query=QUERY, documents=[long_document], raw_scores=True, max_chunks_per_doc=1
    )
    assert abs(first["results"][0]["relevance_score"] - window_logits[0]) < FP32_LOGIT_TOLERANCE


def test_too_many_chunks_is_a_clear_400(client) -> None:
    long_document = (
        "The weather report says rain tomorrow. " * 100
    )  # far more than 3 chunks of the tiny model
    response = client.post(
        "/v3/rerank", json={"model": "test/xlmr-few-chunks", "query": QUERY, "documents": [long_document]}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("documents:") and "max_allowed_chunks" in error and "3" in error
    # The same model takes documents that fit.
    assert (
        client.post(
            "/v3/rerank", json={"model": "test/xlmr-few-chunks", "query": QUERY, "documents": ["short one"]}
        ).status_code
        == 200
    )


def test_query_longer_than_the_model_is_a_400(client) -> None:
    response = client.post(
        "/v3/rerank", json={"model": "test/xlmr", "query": "panda " * 300, "documents": ["a bear"]}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("query:")


def test_model_is_required_when_several_rerankers_are_served(client) -> None:
    response = client.post("/v3/rerank", json={"query": QUERY, "documents": ["a"]})
    assert response.status_code == 400
    assert response.json()["error"].startswith("model:")


@pytest.mark.parametrize("path", ["/v3/rerank", "/v1/rerank", "/v2/rerank", "/v3/v1/rerank"])
def test_every_rerank_path_answers_the_seed_request(client, hf_rerankers, path) -> None:
    # The curl line of the reference demo, with the model name of this repository.
    body = {"model": "test/cross-encoder", "query": "welcome", "documents": ["good morning", "farewell"]}
    response = client.post(path, json=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    expected = hf_rerankers["test/cross-encoder"].scores(body["query"], body["documents"])
    assert np.abs(scores_by_index(response.json(), 2) - expected).max() < FP32_TOLERANCE


def test_cohere_client_v2(server: ServerProcess, hf_rerankers) -> None:
    co = cohere.ClientV2(api_key="unused", base_url=server.url)
    response = co.rerank(model="test/xlmr", query=QUERY, documents=DOCUMENTS, top_n=3)
    expected = hf_rerankers["test/xlmr"].scores(QUERY, DOCUMENTS)
    assert [r.index for r in response.results] == list(np.argsort(-expected)[:3])
    for result in response.results:
        assert abs(result.relevance_score - expected[result.index]) < FP32_TOLERANCE


def test_cohere_client_v1_form_of_the_reference_demo(server: ServerProcess, hf_rerankers) -> None:
    co = cohere.Client(api_key="unused", base_url=f"{server.url}/v3")  # posts /v3/v1/rerank
    documents = [{"text": d} for d in DOCUMENTS[:4]]
    response = co.rerank(model="test/cross-encoder", query=QUERY, documents=documents, return_documents=True)
    expected = hf_rerankers["test/cross-encoder"].scores(QUERY, DOCUMENTS[:4])
    for result in response.results:
        assert abs(result.relevance_score - expected[result.index]) < FP32_TOLERANCE
        assert result.document.text == DOCUMENTS[result.index]


def test_cohere_sdk_sees_client_errors(server: ServerProcess) -> None:
    co = cohere.ClientV2(api_key="unused", base_url=server.url)
    with pytest.raises(cohere.errors.NotFoundError) as raised:
        co.rerank(model="no/such-model", query=QUERY, documents=["a"])
    assert "no/such-model" in raised.value.body["error"]


def test_max_tokens_per_doc_cuts_documents_first(client, hf_rerankers) -> None:
    hf = hf_rerankers["test/cross-encoder"]
    document = DOCUMENTS[1] + " " + DOCUMENTS[2]
    cut = hf.tokenizer.decode(hf.ids(document)[:6])
    body = rerank(client, model="test/cross-encoder", query=QUERY, documents=[document], max_tokens_per_doc=6)
    assert body["usage"]["prompt_tokens"] == len(hf.ids(QUERY)) + 3 + 6
    assert abs(body["results"][0]["relevance_score"] - hf.scores(QUERY, [cut])[0]) < FP32_TOLERANCE


def test_rank_fields_rank_object_documents_on_those_fields(client, hf_rerankers) -> None:
    documents = [{"title": "Pandas", "body": DOCUMENTS[1]}, {"title": "Markets", "body": DOCUMENTS[3]}]
    body = rerank(
        client, model="test/cross-encoder", query=QUERY, documents=documents, rank_fields=["title", "body"],
        return_documents=True,
    )  # fmt: skip
    texts = [f"title: {d['title']}\nbody: {d['body']}" for d in documents]
    expected = hf_rerankers["test/cross-encoder"].scores(QUERY, texts)
    assert np.abs(scores_by_index(body, 2) - expected).max() < FP32_TOLERANCE
    assert body["results"][0]["document"]["title"] == documents[body["results"][0]["index"]]["title"]


def test_max_doc_length_cuts_documents_before_chunking(client, hf_rerankers) -> None:
    """graph.pbtxt's max_doc_length 40 (test/cross-encoder-doc40): only a document's first 40 tokens
    count, whatever its length; the pair is what Hugging Face frames from those 40 tokens."""
    hf = hf_rerankers["test/cross-encoder"]
    numbers = "1 2 3 4 5 6 7 8 9 10 " * 60  # 600 tokens: two chunks without the limit
    documents = [DOCUMENTS[1] + " " + numbers, numbers + DOCUMENTS[1], DOCUMENTS[2]]
    body = rerank(client, model="test/cross-encoder-doc40", query=QUERY, documents=documents, raw_scores=True)
    cut = [hf.tokenizer.decode(hf.ids(document)[:40]) for document in documents]
    assert [hf.ids(text) for text in cut] == [hf.ids(document)[:40] for document in documents]  # exact
    expected = hf.logits(QUERY, cut)
    assert np.abs(scores_by_index(body, 3) - expected).max() < FP32_LOGIT_TOLERANCE
    assert body["usage"]["prompt_tokens"] == sum(len(hf.tokenizer(QUERY, text)["input_ids"]) for text in cut)
    # The same documents on the export's default (16000): the long ones are scored on all their chunks.
    full = rerank(client, model="test/cross-encoder", query=QUERY, documents=documents, raw_scores=True)
    assert full["usage"]["prompt_tokens"] > body["usage"]["prompt_tokens"] + 1000
