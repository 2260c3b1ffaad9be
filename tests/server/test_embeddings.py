"""POST /v3/embeddings (OpenAI API) against sentence-transformers on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import openvino as ov
import pytest

from serving.repository.layout import Pooling
from tests.support.references import cosine_distance, sentence_embedder
from tests.support.server import ServerProcess, embeddings_of

from .conftest import FP32_TOLERANCE, UNPINNED

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


def test_embeddings_equal_sentence_transformers(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm", input=TEXTS)
    expected = sentence_transformer.encode(TEXTS, normalize_embeddings=True)
    got = embeddings_of(body)
    assert [item["index"] for item in body["data"]] == list(range(len(TEXTS)))
    assert body["object"] == "list" and body["model"] == "test/minilm"
    assert {item["object"] for item in body["data"]} == {"embedding"}
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < FP32_TOLERANCE
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # the export normalizes
    tokens = sum(len(ids) for ids in sentence_transformer.tokenizer(TEXTS)["input_ids"])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_single_string_input(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm", input=TEXTS[0])
    expected = sentence_transformer.encode([TEXTS[0]], normalize_embeddings=True)
    assert len(body["data"]) == 1
    assert np.abs(embeddings_of(body)[0] - expected[0]).max() < FP32_TOLERANCE


def test_token_id_inputs_embed_like_their_text(client, sentence_transformer) -> None:
    ids = [sentence_transformer.tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS[:2]]
    from_ids = embeddings_of(embed(client, model="test/minilm", input=ids))
    one_list = embeddings_of(embed(client, model="test/minilm", input=ids[0]))[0]
    expected = sentence_transformer.encode(TEXTS[:2], normalize_embeddings=True)
    assert np.abs(from_ids - expected).max() < FP32_TOLERANCE
    assert np.abs(one_list - expected[0]).max() < FP32_TOLERANCE


def test_dimensions_keep_the_first_values_renormalized(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm", input=TEXTS[:2], dimensions=64)
    full = sentence_transformer.encode(TEXTS[:2], normalize_embeddings=True)[:, :64]
    expected = full / np.linalg.norm(full, axis=1, keepdims=True)
    got = embeddings_of(body)
    assert got.shape == (2, 64)
    assert np.abs(got - expected).max() < FP32_TOLERANCE


def test_input_over_the_limit_is_a_400_without_truncate(client) -> None:
    response = client.post("/v3/embeddings", json={"model": "test/minilm", "input": ["short", LONG_TEXT]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("input:") and "256" in error and "--truncate" in error


def test_truncate_export_cuts_like_sentence_transformers(client, sentence_transformer) -> None:
    body = embed(client, model="test/minilm-truncate", input=[LONG_TEXT, TEXTS[0]])
    expected = sentence_transformer.encode([LONG_TEXT, TEXTS[0]], normalize_embeddings=True)  # cuts at 256
    assert np.abs(embeddings_of(body) - expected).max() < FP32_TOLERANCE
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
    assert np.abs(got - expected).max() < FP32_TOLERANCE
    tokens = sum(len(ids) for ids in sentence_transformer.tokenizer(TEXTS[:3])["input_ids"])
    assert response.usage.prompt_tokens == tokens


def test_openai_sdk_on_v1_path(server: ServerProcess, sentence_transformer) -> None:
    sdk = openai.OpenAI(api_key="unused", base_url=f"{server.url}/v1")
    response = sdk.embeddings.create(model="test/minilm", input="hello", dimensions=8)
    full = sentence_transformer.encode(["hello"], normalize_embeddings=True)[0, :8]
    assert np.abs(np.array(response.data[0].embedding) - full / np.linalg.norm(full)).max() < FP32_TOLERANCE
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model="no/such-model", input="hello")


# ---- pooling and normalization as graph.pbtxt says (variants of the MiniLM export) ------------


@pytest.mark.parametrize(
    ("model", "pooling"), [("test/minilm-cls", Pooling.CLS), ("test/minilm-last", Pooling.LAST)]
)
def test_pooling_of_the_graph_matches_sentence_transformers_with_that_pooling(
    client, minilm_source, sentence_transformer, model: str, pooling: Pooling
) -> None:
    reference = sentence_embedder(minilm_source, pooling)
    got = embeddings_of(embed(client, model=model, input=TEXTS))
    assert np.abs(got - reference.encode(TEXTS)).max() < FP32_TOLERANCE
    # Really another pooling: far from the model's own mean pooling.
    assert cosine_distance(got, sentence_transformer.encode(TEXTS)).max() > 0.05


def test_skip_normalize_serves_the_raw_pooled_vector(client, minilm_source) -> None:
    reference = sentence_embedder(minilm_source, Pooling.MEAN, normalize=False).encode(TEXTS)
    got = embeddings_of(embed(client, model="test/minilm-unnormalized", input=TEXTS))
    assert np.abs(got - reference).max() < FP32_TOLERANCE
    assert np.abs(np.linalg.norm(got, axis=1) - 1.0).min() > 0.1  # not unit vectors


def test_dimensions_without_normalization_are_the_first_values_as_they_are(client, minilm_source) -> None:
    reference = sentence_embedder(minilm_source, Pooling.MEAN, normalize=False).encode(TEXTS)
    got = embeddings_of(embed(client, model="test/minilm-unnormalized", input=TEXTS, dimensions=16))
    assert got.shape == (len(TEXTS), 16)
    assert np.abs(got - reference[:, :16]).max() < FP32_TOLERANCE


def _cpu_computes_bf16_by_default() -> bool:
    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT") == ov.Type.bf16


@pytest.mark.skipif(not _cpu_computes_bf16_by_default(), reason="this CPU computes f32 by default")
def test_fp32_tolerance_tells_the_pinned_precision_from_the_plugin_default(
    client, sentence_transformer
) -> None:
    """The same fp32 export served with INFERENCE_PRECISION_HINT bf16 in its plugin_config runs bf16:
    the tolerance the other tests use rejects it, so a server that ignored plugin_config would fail them."""
    expected = sentence_transformer.encode(TEXTS)
    pinned = embeddings_of(embed(client, model="test/minilm", input=TEXTS))
    unpinned = embeddings_of(embed(client, model=UNPINNED, input=TEXTS))
    assert np.abs(pinned - expected).max() < FP32_TOLERANCE
    assert np.abs(unpinned - expected).max() > 10 * FP32_TOLERANCE
