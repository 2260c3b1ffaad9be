"""Cohere embed on the real server with the cohere SDK (ClientV2 -> /v2/embed, Client -> /v1/embed),
input_type through the model's prompts, and the quantized embedding types checked against
sentence-transformers' own quantize_embeddings (an independent implementation of the formulas);
the same types as encoding_format on /v3/embeddings through the OpenAI SDK."""

from __future__ import annotations

import cohere
import numpy as np
import openai
import pytest
from scipy.stats import spearmanr
from sentence_transformers import quantize_embeddings

from serving.errors import InvalidRequest
from serving.pipelines.quantization import quantize

from .api_families import EMBEDDER, EMBEDDER_ALIAS, KEY, PROMPTS, ApiServer, api_server

__all__ = ["api_server"]  # the shared server fixture, imported for pytest

TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "Two pandas play in the snow.",
    "The stock market closed higher.",
    "Café crème, naïve façade.",
]
TYPES = ["float", "int8", "uint8", "binary", "ubinary"]
# sentence-transformers' calibration ranges, fixed to where unit vectors' components lie.
UNIT_RANGES = np.vstack([-np.ones(384), np.ones(384)]).astype(np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def v2(api_server: ApiServer) -> cohere.ClientV2:
    return cohere.ClientV2(api_key=KEY, base_url=api_server.url)


def test_v2_embed_by_type_with_input_type(v2: cohere.ClientV2, sentence_transformer) -> None:
    response = v2.embed(model=EMBEDDER_ALIAS, texts=TEXTS, input_type="search_query", embedding_types=TYPES)
    assert response.response_type == "embeddings_by_type" and response.texts == TEXTS
    assert response.meta.api_version.version == "2" and response.meta.billed_units.input_tokens > 0
    floats = np.array(response.embeddings.float_, dtype=np.float32)
    # search_query -> the model's "query" prompt, prepended as sentence-transformers does.
    expected = sentence_transformer.encode([PROMPTS["query"] + t for t in TEXTS], normalize_embeddings=True)
    assert np.abs(floats - expected).max() < 1e-5
    for kind in TYPES[1:]:
        got = np.array(getattr(response.embeddings, kind))
        reference = quantize_embeddings(floats, kind, ranges=UNIT_RANGES)
        assert got.shape == reference.shape and (got == reference).all(), kind
    # binary: sign bits, 8 per byte, first dimension in the top bit; ubinary - 128.
    bits = (floats > 0).astype(int)
    first_byte = int("".join(map(str, bits[0, :8])), 2)
    assert response.embeddings.ubinary[0][0] == first_byte
    assert response.embeddings.binary[0][0] == first_byte - 128
    # int8 keeps the ranking of the pairwise similarities (figure in docs/api/openai.md).
    int8 = unit(np.array(response.embeddings.int8, dtype=np.float32) + 1.0)  # bucket centers / step
    pairs = np.triu_indices(len(TEXTS), 1)
    assert spearmanr((floats @ floats.T)[pairs], (int8 @ int8.T)[pairs]).statistic > 0.95


def test_v2_embed_output_dimension_and_document_prompt(v2: cohere.ClientV2, sentence_transformer) -> None:
    response = v2.embed(model=EMBEDDER, texts=TEXTS[:2], input_type="search_document", output_dimension=64)
    floats = np.array(response.embeddings.float_)
    full = sentence_transformer.encode(
        [PROMPTS["document"] + t for t in TEXTS[:2]], normalize_embeddings=True
    )
    assert floats.shape == (2, 64) and np.abs(floats - unit(full[:, :64])).max() < 1e-5
    assert response.embeddings.int8 is None  # only the types asked for


def test_v1_embed_batches_of_96_in_order(api_server: ApiServer, v2: cohere.ClientV2) -> None:
    texts = [f"sentence number {i} about pandas" for i in range(200)]
    v1 = cohere.Client(api_key=KEY, base_url=api_server.url)
    response = v1.embed(texts=texts, model=EMBEDDER_ALIAS, input_type="search_document")
    assert response.response_type == "embeddings_floats" and len(response.embeddings) == 200
    assert response.meta.api_version.version == "1"
    one_request = v2.embed(
        model=EMBEDDER_ALIAS, texts=texts, input_type="search_document", embedding_types=["float"]
    )
    assert np.abs(np.array(response.embeddings) - np.array(one_request.embeddings.float_)).max() < 1e-5
    by_type = v1.embed(texts=texts[:3], model=EMBEDDER_ALIAS, embedding_types=["int8", "ubinary"])
    assert by_type.response_type == "embeddings_by_type"
    assert np.array(by_type.embeddings.int8).shape == (3, 384) and np.array(
        by_type.embeddings.ubinary
    ).shape == (3, 48)


def test_truncate_none_start_end(v2: cohere.ClientV2, sentence_transformer) -> None:
    long_text = "rain tomorrow and sun on the weekend " * 60  # ~400 tokens > 256
    with pytest.raises(cohere.BadRequestError) as refused:
        v2.embed(model=EMBEDDER_ALIAS, texts=[long_text], input_type="search_document", truncate="NONE")
    assert "input" in refused.value.body["error"]
    end = v2.embed(
        model=EMBEDDER_ALIAS, texts=[long_text], input_type="search_document", embedding_types=["float"]
    )
    prompted = PROMPTS["document"] + long_text  # search_document -> the "document" prompt
    expected_end = sentence_transformer.encode(prompted, normalize_embeddings=True)
    assert np.abs(np.array(end.embeddings.float_[0]) - expected_end).max() < 1e-5  # END: Cohere's default
    start = v2.embed(
        model=EMBEDDER_ALIAS,
        texts=[long_text],
        input_type="search_document",
        embedding_types=["float"],
        truncate="START",
    )
    assert np.abs(np.array(start.embeddings.float_[0]) - expected_end).max() > 1e-3


def test_openai_sdk_quantized_encoding_formats(api_server: ApiServer, v2: cohere.ClientV2) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=f"{api_server.url}/v3")
    cohere_types = v2.embed(
        model=EMBEDDER_ALIAS, texts=TEXTS[:2], input_type="search_query", embedding_types=TYPES
    )
    for kind in TYPES[1:]:
        answer = client.embeddings.create(
            model=EMBEDDER_ALIAS,
            input=TEXTS[:2],
            encoding_format=kind,
            extra_body={"input_type": "search_query"},
        )
        got = [[int(value) for value in item.embedding] for item in answer.data]
        assert got == getattr(cohere_types.embeddings, kind), kind
    decoded = client.embeddings.create(
        model=EMBEDDER_ALIAS, input=TEXTS[:2], extra_body={"input_type": "query"}
    )
    assert (
        np.abs(np.array(decoded.data[0].embedding) - np.array(cohere_types.embeddings.float_[0])).max() < 1e-6
    )


def test_int8_needs_normalized_vectors() -> None:
    vectors = np.array([[3.0, -0.5, 0.25]], dtype=np.float32)
    with pytest.raises(InvalidRequest, match="normalized"):
        quantize(vectors, "int8", normalized=False)
    assert quantize(vectors, "ubinary", normalized=False).tolist() == [[0b10100000]]
