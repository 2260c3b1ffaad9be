"""The Text Embeddings Inference API on the real server: TEI's documented requests (POST /rerank,
/embed, GET /info, /health), huggingface_hub's InferenceClient against the server's base URL, TEI's
error body and codes, truncation on either side against Hugging Face, the x-compute-* headers."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from .api_families import AUTH, CROSS, EMBEDDER, EMBEDDER_ALIAS, KEY, PROMPTS, XLMR, ApiServer, api_server
from .conftest import HFReranker

__all__ = ["api_server"]  # the shared server fixture, imported for pytest

QUERY = "What is Baseten?"
TEXTS = ["Deep Learning is ...", "Baseten is a fast inference provider", "A panda eats bamboo."]
# ~800 tokens: about the query at the start, about something else at the end.
LONG = "Baseten is a fast inference provider. " * 40 + "The stock market closed higher on Tuesday. " * 40


@pytest.fixture
def loopback_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub refuses every request in offline mode (HF_HUB_OFFLINE=1, set for the tests),
    even to this loopback server: let its InferenceClient through (no model hub is involved)."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)


@pytest.fixture(scope="module")
def http(api_server: ApiServer) -> httpx.Client:
    with httpx.Client(base_url=api_server.url, headers=AUTH, timeout=60) as client:
        yield client


def tei_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body
    return body["error"]


def test_rerank_as_tei_documents_it(http: httpx.Client, hf_rerankers: dict[str, HFReranker]) -> None:
    # TEI's documented request (also the TensorRT-based services' schema), model omitted: the default.
    body = {
        "query": QUERY, "raw_scores": False, "return_text": False, "texts": TEXTS,
        "truncate": False, "truncation_direction": "right",
    }  # fmt: skip
    response = http.post("/rerank", json=body)
    assert response.status_code == 200, response.text
    ranks = response.json()
    expected = hf_rerankers[CROSS].scores(QUERY, TEXTS)
    assert [set(rank) for rank in ranks] == [{"index", "score"}] * len(TEXTS)
    assert [r["index"] for r in ranks] == list(np.argsort(-expected, kind="stable"))
    assert np.abs(np.array([r["score"] for r in ranks]) - np.sort(expected)[::-1]).max() < 1e-4
    with_text = http.post("/rerank", json={**body, "return_text": True, "raw_scores": True}).json()
    assert [list(rank) for rank in with_text] == [["index", "text", "score"]] * len(TEXTS)  # TEI's order
    assert all(rank["text"] == TEXTS[rank["index"]] for rank in with_text)
    logits = hf_rerankers[CROSS].logits(QUERY, TEXTS)
    assert max(abs(rank["score"] - logits[rank["index"]]) for rank in with_text) < 1e-4

    # x-compute-* as TEI sends them, beside the timing headers.
    cohere = http.post("/v3/rerank", json={"query": QUERY, "documents": TEXTS}).json()
    headers = response.headers
    assert headers["x-compute-tokens"] == str(cohere["usage"]["prompt_tokens"])
    assert headers["x-compute-characters"] == str(len(QUERY) * len(TEXTS) + sum(map(len, TEXTS)))
    assert headers["x-compute-type"] == "cpu"
    for name in ("x-compute-time", "x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time"):
        assert headers[name].isdigit(), name


def test_a_model_field_chooses(http: httpx.Client, hf_rerankers: dict[str, HFReranker]) -> None:
    ranks = http.post("/rerank", json={"query": QUERY, "texts": TEXTS, "raw_scores": True, "model": "xlmr"})
    expected = hf_rerankers[XLMR].logits(QUERY, TEXTS)
    assert max(abs(r["score"] - expected[r["index"]]) for r in ranks.json()) < 1e-4


def test_truncation_cuts_the_given_side(http: httpx.Client, hf_rerankers: dict[str, HFReranker]) -> None:
    hf = hf_rerankers[CROSS]
    body = {"query": QUERY, "texts": [LONG, "short"], "raw_scores": True}
    message = tei_error(http.post("/rerank", json={**body, "truncate": False}), 422, "Validation")
    assert message.startswith("texts: item 0") and "512" in message

    def hf_logit(side: str) -> float:
        hf.tokenizer.truncation_side = side
        try:
            batch = hf.tokenizer(
                [QUERY], [LONG], truncation="only_second", max_length=512, return_tensors="pt"
            )
        finally:
            hf.tokenizer.truncation_side = "right"
        return float(hf._logits(batch)[0])

    def served(**extra: object) -> float:
        ranks = http.post("/rerank", json={**body, **extra}).json()
        return next(r["score"] for r in ranks if r["index"] == 0)

    right, left = hf_logit("right"), hf_logit("left")
    assert abs(right - left) > 1e-3  # the two ends of the document score differently
    assert abs(served(truncate=True, truncation_direction="Right") - right) < 1e-4
    assert abs(served(truncate=True, truncation_direction="Left") - left) < 1e-4
    assert abs(served() - right) < 1e-4  # truncate omitted: cut (TEI 1.9's auto-truncate)


def test_errors_have_tei_body_and_codes(api_server: ApiServer, http: httpx.Client) -> None:
    tei_error(http.post("/rerank", json={"query": QUERY, "texts": []}), 400, "Empty")
    tei_error(http.post("/embed", json={"inputs": []}), 400, "Empty")
    tei_error(http.post("/rerank", json={"query": QUERY, "texts": "a"}), 422, "Validation")
    tei_error(http.post("/rerank", content=b"{not json"), 422, "Validation")
    tei_error(http.post("/embed", json={"inputs": "x", "dimensions": 0}), 422, "Validation")
    tei_error(http.post("/embed", json={"inputs": "x", "truncation_direction": "RIGHT"}), 422, "Validation")
    tei_error(
        http.post("/rerank", json={"query": QUERY, "texts": TEXTS, "model": "no/such"}), 404, "Validation"
    )
    tei_error(
        http.post("/rerank", json={"query": QUERY, "texts": TEXTS, "model": EMBEDDER}), 422, "Validation"
    )
    anonymous = httpx.post(f"{api_server.url}/rerank", json={"query": QUERY, "texts": TEXTS})
    tei_error(anonymous, 401, "Unauthorized")


def test_feature_extraction_with_huggingface_hub(
    api_server: ApiServer, sentence_transformer, loopback_hub: None
) -> None:
    client = InferenceClient(base_url=api_server.url, api_key=KEY)  # posts to / (TEI embeds there)
    texts = ["A man is eating food.", "パンダ"]
    vectors = client.feature_extraction(texts)
    expected = sentence_transformer.encode(texts, normalize_embeddings=True)
    assert vectors.shape == (2, 384) and np.abs(vectors - expected).max() < 1e-5
    with_prompt = client.feature_extraction(texts, prompt_name="query", dimensions=64)
    prompted = sentence_transformer.encode([PROMPTS["query"] + t for t in texts])[:, :64]
    prompted /= np.linalg.norm(prompted, axis=1, keepdims=True)
    assert np.abs(with_prompt - prompted).max() < 1e-5
    raw = client.feature_extraction(texts[0], normalize=False)
    assert raw.shape == (1, 384) and abs(np.linalg.norm(raw) - 1.0) > 1e-3  # MiniLM's mean pooling, not unit
    assert np.abs(raw[0] / np.linalg.norm(raw) - expected[0]).max() < 1e-5
    # Long input: truncate cuts it on the side asked for; truncate false refuses it (422).
    long_text = "rain tomorrow and sun on the weekend " * 60
    tokenizer = sentence_transformer.tokenizer
    ids = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    last = tokenizer.decode(ids[-254:])
    assert tokenizer(last, add_special_tokens=False)["input_ids"] == ids[-254:]
    left = client.feature_extraction(long_text, truncate=True, truncation_direction="left")
    assert np.abs(left[0] - sentence_transformer.encode(last, normalize_embeddings=True)).max() < 1e-5
    right = client.feature_extraction(long_text, truncate=True, truncation_direction="right")
    assert np.abs(right[0] - sentence_transformer.encode(long_text, normalize_embeddings=True)).max() < 1e-5
    with pytest.raises(HfHubHTTPError) as refused:
        client.feature_extraction(long_text, truncate=False)
    assert refused.value.response.status_code == 422
    embedded = InferenceClient(base_url=f"{api_server.url}/embed", api_key=KEY).feature_extraction(texts)
    assert np.abs(embedded - expected).max() < 1e-5


def test_sentence_similarity_with_huggingface_hub(
    api_server: ApiServer, sentence_transformer, loopback_hub: None
) -> None:
    client = InferenceClient(base_url=api_server.url, api_key=KEY)  # posts {"inputs": {...}} to /
    sentences = ["A man is eating a piece of bread.", "A man is riding a horse."]
    similarities = client.sentence_similarity("A man is eating food.", sentences)
    vectors = sentence_transformer.encode(["A man is eating food.", *sentences], normalize_embeddings=True)
    assert np.abs(np.array(similarities) - vectors[1:] @ vectors[0]).max() < 1e-5
    assert similarities[0] > similarities[1]


def test_info_and_health_with_huggingface_hub(api_server: ApiServer, loopback_hub: None) -> None:
    client = InferenceClient(base_url=api_server.url, api_key=KEY, provider="hf-inference")
    assert client.health_check() is True
    info = client.get_endpoint_info()  # the default reranker
    assert info["model_id"] == info["served_model_name"] == CROSS
    assert info["model_type"] == {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}
    assert info["max_input_length"] == 512 and info["model_dtype"] == "float32"
    assert info["max_client_batch_size"] == 1000 and info["auto_truncate"] is True
    with httpx.Client(base_url=api_server.url, headers=AUTH) as http:
        embedder = http.get("/info", params={"model": EMBEDDER_ALIAS}).json()
        assert embedder["model_id"] == EMBEDDER and embedder["model_type"] == {
            "embedding": {"pooling": "mean"}
        }
        assert embedder["max_input_length"] == 256 and embedder["max_client_batch_size"] == 2048
        assert http.get("/info", params={"model": "no/such"}).json()["error_type"] == "Validation"
        # TEI's POST / reranks a {"query", "texts"} body.
        ranks = http.post("/", json={"query": QUERY, "texts": TEXTS}).json()
        assert sorted(r["index"] for r in ranks) == [0, 1, 2]
    # Health is open (probes have no key); /info is not.
    assert httpx.get(f"{api_server.url}/health").status_code == 200
    assert httpx.get(f"{api_server.url}/info").status_code == 401
