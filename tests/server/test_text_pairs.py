"""The text_pairs API (POST /{model}/post) of the widely copied FastAPI bge-reranker service: its own
client code as its README gives it, pairs with different queries, raw logits against Hugging Face;
and the parser of the Python-literal string form on its own (no server needed)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from serving.http.routes.text_pairs import parse_text_pairs

from .api_families import AUTH, CROSS, CROSS_ALIASES, EMBEDDER, ApiServer, api_server
from .conftest import HFReranker

__all__ = ["api_server"]  # the shared server fixture, imported for pytest

PANDA = (
    "The giant panda (Ailuropoda melanoleuca), sometimes called a panda bear or simply panda, "
    "is a bear species endemic to China."
)
# The service's README example, byte for byte: text_pairs is a string in Python literal syntax.
SEED_TEXT_PAIRS = f"""[['what is panda?', 'hi'],['what is panda?', '{PANDA}']]"""


@pytest.fixture(scope="module")
def http(api_server: ApiServer) -> httpx.Client:
    with httpx.Client(base_url=api_server.url, headers=AUTH, timeout=60) as client:
        yield client


def test_the_services_own_client_code(http: httpx.Client, hf_rerankers: dict[str, HFReranker]) -> None:
    data = {"text_pairs": SEED_TEXT_PAIRS}
    # requests.post(url, data=json.dumps(data), headers={'Content-Type': 'application/json'})
    response = http.post(
        f"/{CROSS}/post", content=json.dumps(data), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"text_pairs", "rerank_scores", "scores", "request_time", "response_time", "code"}
    assert body["text_pairs"] == [["what is panda?", "hi"], ["what is panda?", PANDA]]
    expected = hf_rerankers[CROSS].logits("what is panda?", ["hi", PANDA])
    assert np.abs(np.array(body["rerank_scores"]) - expected).max() < 1e-4  # raw logits, in order
    assert body["scores"] == body["rerank_scores"] and body["code"] == 200
    assert len(body["request_time"]) == len("2023-12-22 17:07:54") <= len(body["response_time"])


def test_pairs_with_different_queries(http: httpx.Client, hf_rerankers: dict[str, HFReranker]) -> None:
    hf = hf_rerankers[CROSS]
    pairs = [
        ["what is panda?", PANDA],
        ["stock prices", "The stock market closed higher on Tuesday."],
        ["what is panda?", "hi"],
        ["stock prices", PANDA],
        ["", "an empty query still scores"],
    ]
    body = http.post(f"/{CROSS_ALIASES[1]}/post", json={"text_pairs": pairs}).json()  # alias with a '/'
    expected = [float(hf.logits(query, [document])[0]) for query, document in pairs]
    assert np.abs(np.array(body["scores"]) - expected).max() < 1e-4
    assert body["text_pairs"] == pairs


def test_long_documents_are_cut_as_hugging_face_truncates(
    http: httpx.Client, hf_rerankers: dict[str, HFReranker]
) -> None:
    long_document = "Pandas eat bamboo in the mountain forests of China. " * 80  # ~900 tokens
    body = http.post(f"/{CROSS}/post", json={"text_pairs": [["what is panda?", long_document]]}).json()
    hf = hf_rerankers[CROSS]
    window = hf.window_logits("what is panda?", long_document, 512)[0]  # truncation="only_second"
    assert abs(body["scores"][0] - window) < 1e-4


BAD = [
    ({"text_pairs": "[['a', 'b']"}, 400, "text_pairs"),
    ({"text_pairs": "__import__('os').system('true')"}, 400, "text_pairs"),
    ({"text_pairs": "[['a', 'b', 'c']]"}, 400, "text_pairs"),
    ({"text_pairs": [["a"]]}, 400, "text_pairs"),
    ({"text_pairs": []}, 400, "text_pairs"),
    ({"text_pairs": "[]"}, 400, "text_pairs"),
    ({"text_pairs": [["a", 5]]}, 400, "text_pairs"),
    ({"pairs": [["a", "b"]]}, 400, "text_pairs"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD)
def test_bad_text_pairs(http: httpx.Client, body: dict, status: int, field: str) -> None:
    response = http.post(f"/{CROSS}/post", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"].startswith(f"{field}"), response.json()


def test_model_in_the_path(http: httpx.Client) -> None:
    pairs = {"text_pairs": [["q", "d"]]}
    missing = http.post("/no/such-model/post", json=pairs)
    assert missing.status_code == 404 and "no/such-model" in missing.json()["error"]
    embedder = http.post(f"/{EMBEDDER}/post", json=pairs)
    assert embedder.status_code == 400 and embedder.json()["error"].startswith("model:")


# ---- the parser ---------------------------------------------------------------------------------


def test_parser_reads_python_literals() -> None:
    assert parse_text_pairs(SEED_TEXT_PAIRS) == [["what is panda?", "hi"], ["what is panda?", PANDA]]
    text = r"""[("it's", "say \"hi\""), ['tab\there', u'caf\u00e9'], [r'\d+', "\\"],]"""
    assert parse_text_pairs(text) == [["it's", 'say "hi"'], ["tab\there", "café"], ["\\d+", "\\"]]
    assert parse_text_pairs(" [ ] ") == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[",
        "[['a', 'b']] trailing",
        "[['a', 'b', 'c']]",
        "[('a', 'b']]",
        "[['a' 'b', 'c']]",  # implicit concatenation
        "[['''a''', 'b']]",
        "[[b'a', 'b']]",
        "[['a', 1]]",
        "[['a\n', 'b']]",  # a string across lines
        "[['a\\x', 'b']]",  # a bad escape
        "__import__('os')",
        "[[f'{1}', 'b']]",
        "{'a': 'b'}",
    ],
)
def test_parser_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_text_pairs(text)


def test_parser_has_no_expensive_inputs() -> None:
    # Deep nesting, an unclosed 1 MB string, 200k escaped quotes: each refused by one forward scan.
    for text in ("[" * 100_000, "[['" + "a" * 1_000_000, "[['" + "\\'" * 200_000):
        with pytest.raises(ValueError):
            parse_text_pairs(text)
