"""POST /v3/embeddings (OpenAI API) against sentence-transformers on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from .conftest import ServerProcess

TEXTS = [
    "A man is eating food.",
    "A man is riding a horse.",
    "Café crème, naïve façade.",
    "パンダは中国に住むクマの一種です。",
    "emoji 🐼🎋",
    "x",
]
LONG_TEXT = "The weather report says rain tomorrow and sun on the weekend. " * 40  # ~500 tokens > 256


def embed(client: httpx.Client, **body) -> dict:
    response = client.post("/v3/embeddings", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return 1.0 - (a * b).sum(-1)


def test_embeddings_equal_sentence_transformers(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm", input=TEXTS)
    expected = sentence_transformer.encode(TEXTS, normalize_embeddings=True)
    got = np.array([item["embedding"] for item in body["data"]])
    assert [item["index"] for item in body["data"]] == list(range(len(TEXTS)))
    assert body["object"] == "list" and body["model"] == "test/minilm"
    assert {item["object"] for item in body["data"]} == {"embedding"}
    assert got.shape == expected.shape
    assert cosine_distance(got, expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # the export normalizes
    tokens = sum(len(ids) for ids in sentence_transformer.tokenizer(TEXTS)["input_ids"])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_single_string_input(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm", input=TEXTS[0])
    expected = sentence_transformer.encode([TEXTS[0]], normalize_embeddings=True)
    assert len(body["data"]) == 1
    assert cosine_distance(np.array(body["data"][0]["embedding"]), expected[0]) < 1e-4


def test_token_id_inputs_embed_like_their_text(client, sentence_transformer) -> None:
    ids = [sentence_transformer.tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS[:2]]
    from_ids = np.array([d["embedding"] for d in embed(client, model="test/minilm", input=ids)["data"]])
    one_list = np.array(embed(client, model="test/minilm", input=ids[0])["data"][0]["embedding"])
    expected = sentence_transformer.encode(TEXTS[:2], normalize_embeddings=True)
    assert cosine_distance(from_ids, expected).max() < 1e-4
    assert cosine_distance(one_list, expected[0]) < 1e-4


def test_dimensions_keep_the_first_values_renormalized(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm", input=TEXTS[:2], dimensions=64)
    full = sentence_transformer.encode(TEXTS[:2], normalize_embeddings=True)[:, :64]
    expected = full / np.linalg.norm(full, axis=1, keepdims=True)
    got = np.array([d["embedding"] for d in body["data"]])
    assert got.shape == (2, 64)
    assert np.abs(got - expected).max() < 1e-4


def test_input_over_the_limit_is_a_400_without_truncate(client) -> None:
    response = client.post("/v3/embeddings", json={"model": "test/minilm", "input": ["short", LONG_TEXT]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("input:") and "256" in error and "--truncate" in error


def test_truncate_export_cuts_like_sentence_transformers(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm-truncate", input=[LONG_TEXT, TEXTS[0]])
    expected = sentence_transformer.encode([LONG_TEXT, TEXTS[0]], normalize_embeddings=True)  # cuts at 256
    got = np.array([d["embedding"] for d in body["data"]])
    assert cosine_distance(got, expected).max() < 1e-4
    assert body["usage"]["prompt_tokens"] == 256 + len(sentence_transformer.tokenizer(TEXTS[0])["input_ids"])


def test_base64_is_little_endian_float32(client) -> None:
    as_float = embed(client, model="test/minilm", input=TEXTS[:2])
    as_base64 = embed(client, model="test/minilm", input=TEXTS[:2], encoding_format="base64")
    for f, b in zip(as_float["data"], as_base64["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        assert np.array_equal(decoded, np.array(f["embedding"], dtype=np.float32))


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_openai_sdk(server: ServerProcess, sentence_transformer, encoding_format) -> None:
    sdk = openai.OpenAI(api_key="unused", base_url=f"{server.url}/v3")
    options = (
        {} if encoding_format is None else {"encoding_format": encoding_format}
    )  # None: SDK default base64
    response = sdk.embeddings.create(model="test/minilm", input=TEXTS[:3], **options)
    expected = sentence_transformer.encode(TEXTS[:3], normalize_embeddings=True)
    if encoding_format == "base64":  # asked explicitly: the SDK hands the string over untouched
        got = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in response.data])
    else:
        got = np.array([d.embedding for d in response.data])
    assert cosine_distance(got, expected).max() < 1e-4
    assert response.usage.prompt_tokens > 0


def test_openai_sdk_on_v1_path(server: ServerProcess) -> None:
    sdk = openai.OpenAI(api_key="unused", base_url=f"{server.url}/v1")
    response = sdk.embeddings.create(model="test/minilm", input="hello", dimensions=8)
    assert len(response.data[0].embedding) == 8
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model="no/such-model", input="hello")
