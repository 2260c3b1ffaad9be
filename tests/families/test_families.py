"""Each model family, exported with the real CLI and served by the real server, against the original
model run in transformers by its own recipe (the model cards' code, written out here on purpose
rather than taken from export_models/hf_reference.py, so a mistake there cannot hide).

Tolerances (fp32 exports pin f32 inference): rerank scores within 1e-4, embeddings within 1e-5
cosine distance. int8 exports must load and keep the order.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openvino as ov
import pytest
import torch
from scipy.stats import spearmanr

from .conftest import Exported

pytestmark = pytest.mark.slow

SCORE_TOLERANCE = 1e-4
COSINE_TOLERANCE = 1e-5

QUERY = "what is the giant panda?"
DOCUMENTS = [
    "The giant panda is a bear species endemic to China.",
    "Coffee is a drink brewed from roasted coffee beans.",
    "熊猫吃竹子。",
    "x",
    "  Giant pandas eat bamboo 🐼 for most of the day, 12 to 14 hours.\n",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris. " * 12,  # much longer than the rest
]
LONG_TEXT = "The Eiffel Tower is a wrought-iron lattice tower in Paris. " * 6
TEXTS = [
    "A man is eating food.",
    "Café crème, naïve façade.",
    "パンダは中国に住むクマの一種です。",
    "🐼 x",
    "y",
]


def rerank(client: httpx.Client, model: str, query: str = QUERY, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/v3/rerank", json={"model": model, "query": query, "documents": DOCUMENTS, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


def served_scores(body: dict[str, Any]) -> np.ndarray:
    scores = np.full(len(DOCUMENTS), np.nan)
    for result in body["results"]:
        scores[result["index"]] = result["relevance_score"]
    return scores


def embed(client: httpx.Client, model: str, texts: list[str], **extra: Any) -> tuple[np.ndarray, dict]:
    response = client.post("/v3/embeddings", json={"model": model, "input": texts, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    return np.array([item["embedding"] for item in body["data"]]), body


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return float(np.max(1.0 - (a * b).sum(-1)))


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float64)))


def report(family: str, figure: str, value: float) -> None:
    print(f"{family}: {figure} {value:.2e}")


# ---- the model cards' recipes (each model loaded once per session) ----------------------------


@functools.cache
def load(kind: str, source: Path, padding_side: str | None = None, trust_remote_code: bool = False) -> Any:
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    if kind == "tokenizer":
        extra = {"padding_side": padding_side} if padding_side else {}
        return AutoTokenizer.from_pretrained(source, **extra)
    if kind == "causal-lm":
        return AutoModelForCausalLM.from_pretrained(source).eval()
    if kind == "model":
        return AutoModel.from_pretrained(source).eval()
    if kind == "cross-encoder":
        return CrossEncoder(str(source), device="cpu", trust_remote_code=trust_remote_code)
    assert kind == "sentence-transformer"
    return SentenceTransformer(str(source), device="cpu")


def qwen3_reranker_card(
    source: Path, query: str, documents: list[str], instruction: str | None = None
) -> np.ndarray:
    """Qwen/Qwen3-Reranker-0.6B's model card: left padding, yes/no logits at the last position."""
    tokenizer = load("tokenizer", source, padding_side="left")
    model = load("causal-lm", source)
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    max_length = 8192
    prefix = (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
        'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    )
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    pairs = [f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" for doc in documents]
    inputs = tokenizer(
        pairs,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
    )
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
    true_vector = batch_scores[:, token_true_id]
    false_vector = batch_scores[:, token_false_id]
    batch_scores = torch.nn.functional.log_softmax(torch.stack([false_vector, true_vector], dim=1), dim=1)
    return batch_scores[:, 1].exp().double().numpy()


def mxbai_rerank_v2_card(
    source: Path, query: str, documents: list[str], instruction: str | None = None
) -> np.ndarray:
    """mixedbread-ai/mxbai-rerank (mxbai_rerank_v2.py): pieces tokenized one by one, left padding,
    sigmoid(logit("1") - logit("0")) at the last position."""
    tokenizer = load("tokenizer", source, padding_side="left")
    model = load("causal-lm", source)

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    task = (
        "You are a search relevance expert who evaluates how well documents match search queries. For each "
        "query-document pair, carefully analyze the semantic relationship between them, then provide your "
        "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
    )
    prefix = (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n"
    )
    suffix = "<|im_end|>\n<|im_start|>assistant\n"
    rows = []
    for document in documents:
        query_prompt = f"query: {query}"
        if instruction:
            query_prompt = f"instruction: {instruction}\n" + query_prompt
        body = ids(query_prompt) + ids("\n") + ids(f"document: {document}")
        rows.append({"input_ids": ids(prefix) + body + ids("\n") + ids(task) + ids(suffix)})
    inputs = tokenizer.pad(rows, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[:, -1, :]
    yes, no = ids("1")[0], ids("0")[0]
    return sigmoid((logits[:, yes] - logits[:, no]).double().numpy())


def cross_encoder(
    source: Path, query: str, documents: list[str], trust_remote_code: bool = False
) -> np.ndarray:
    model = load("cross-encoder", source, trust_remote_code=trust_remote_code)
    return np.asarray(
        model.predict([(query, d) for d in documents], batch_size=len(documents)), dtype=np.float64
    )


def qwen3_embedding_card(source: Path, texts: list[str], padding_side: str) -> np.ndarray:
    """Qwen/Qwen3-Embedding-0.6B's model card (transformers): last-token pooling, L2."""

    def last_token_pool(last_hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
        if left_padding:
            return last_hidden_states[:, -1]
        sequence_lengths = attention_mask.sum(dim=1) - 1
        batch_size = last_hidden_states.shape[0]
        return last_hidden_states[torch.arange(batch_size), sequence_lengths]

    tokenizer = load("tokenizer", source, padding_side=padding_side)
    model = load("model", source)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=8192, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**batch)
    embeddings = last_token_pool(outputs.last_hidden_state, batch["attention_mask"])
    return torch.nn.functional.normalize(embeddings, p=2, dim=1).numpy()


def sentence_transformer(source: Path, texts: list[str], **encode: Any) -> np.ndarray:
    model = load("sentence-transformer", source)
    return np.asarray(model.encode(texts, convert_to_numpy=True, **encode))


# ---- rerankers -------------------------------------------------------------------------------


def test_qwen3_reranker_matches_its_model_card(family_client, family_exports) -> None:
    source = family_exports["qwen3-reranker"].source
    expected = qwen3_reranker_card(source, QUERY, DOCUMENTS)
    body = rerank(family_client, "qwen3-reranker")
    got = served_scores(body)
    report("qwen3-reranker", "max |score diff|", np.abs(got - expected).max())
    assert np.abs(got - expected).max() < SCORE_TOLERANCE
    assert np.ptp(expected) > 0.05  # the replica's scores spread: the comparison means something
    # usage: the whole template (prefix, instruction, query, document, suffix) is fed to the model
    assert body["usage"]["prompt_tokens"] > 40 * len(DOCUMENTS)


def test_qwen3_reranker_instruction_per_request(family_client, family_exports) -> None:
    source = family_exports["qwen3-reranker"].source
    instruction = "Find documents about animals"
    expected = qwen3_reranker_card(source, QUERY, DOCUMENTS, instruction)
    got = served_scores(rerank(family_client, "qwen3-reranker", instruction=instruction))
    assert np.abs(got - expected).max() < SCORE_TOLERANCE
    default = served_scores(rerank(family_client, "qwen3-reranker"))
    assert np.abs(got - default).max() > 1e-3  # the instruction reaches the model


def test_qwen3_reranker_seq_cls_takes_the_same_template(family_client, family_exports) -> None:
    """The *-seq-cls replica is the causal replica with the yes - no row as its head."""
    source = family_exports["qwen3-reranker"].source
    expected = qwen3_reranker_card(source, QUERY, DOCUMENTS)
    got = served_scores(rerank(family_client, "qwen3-reranker-seq-cls"))
    report("qwen3-reranker-seq-cls", "max |score diff|", np.abs(got - expected).max())
    assert np.abs(got - expected).max() < SCORE_TOLERANCE


def test_qwen3_reranker_ir_is_a_one_logit_classifier(family_exports) -> None:
    model = ov.Core().read_model(family_exports["qwen3-reranker"].folder / "rerank" / "1" / "model.xml")
    assert [o.get_partial_shape()[1].get_length() for o in model.outputs] == [1]
    assert sorted(i.get_any_name() for i in model.inputs) == ["attention_mask", "input_ids"]


def test_qwen3_reranker_long_document_is_chunked_inside_the_template(family_client, family_exports) -> None:
    """A document over the limit: its first chunk scores as the model card's truncated pair."""
    response = family_client.post(
        "/v3/rerank",
        json={
            "model": "qwen3-reranker",
            "query": QUERY,
            "documents": [DOCUMENTS[-1] * 4],
            "max_tokens_per_doc": 100,
            "max_chunks_per_doc": 1,
        },
    )
    assert response.status_code == 200, response.text
    tokenizer = load("tokenizer", family_exports["qwen3-reranker"].source)
    first_100 = tokenizer.decode(
        tokenizer(" " + DOCUMENTS[-1] * 4, add_special_tokens=False)["input_ids"][:100]
    )
    expected = qwen3_reranker_card(family_exports["qwen3-reranker"].source, QUERY, [first_100[1:]])
    assert abs(response.json()["results"][0]["relevance_score"] - expected[0]) < SCORE_TOLERANCE


@pytest.mark.parametrize("instruction", [None, "Retrieve passages about animals"])
def test_mxbai_rerank_v2_matches_its_library(family_client, family_exports, instruction) -> None:
    source = family_exports["mxbai-rerank-v2"].source
    expected = mxbai_rerank_v2_card(source, QUERY, DOCUMENTS, instruction)
    extra = {"instruction": instruction} if instruction else {}
    got = served_scores(rerank(family_client, "mxbai-rerank-v2", **extra))
    report(f"mxbai-rerank-v2 (instruction {instruction!r})", "max |score diff|", np.abs(got - expected).max())
    assert np.abs(got - expected).max() < SCORE_TOLERANCE


@pytest.mark.parametrize("name", ["deberta-v2", "modernbert-reranker"])
def test_cross_encoders_match_sentence_transformers(family_client, family_exports, name) -> None:
    """DeBERTa-v2 (no token_type_ids) and ModernBERT (torch.export; documents of very unequal lengths
    in one batch, which without the mask fix give NaN)."""
    expected = cross_encoder(family_exports[name].source, QUERY, DOCUMENTS)
    got = served_scores(rerank(family_client, name))
    report(name, "max |score diff|", np.abs(got - expected).max())
    assert np.abs(got - expected).max() < SCORE_TOLERANCE


def test_deberta_v2_ir_has_no_token_type_ids(family_exports) -> None:
    model = ov.Core().read_model(family_exports["deberta-v2"].folder / "rerank" / "1" / "model.xml")
    assert sorted(i.get_any_name() for i in model.inputs) == ["attention_mask", "input_ids"]


def test_custom_code_runs_the_models_own_code(family_client, family_exports) -> None:
    expected = cross_encoder(family_exports["custom-code"].source, QUERY, DOCUMENTS, trust_remote_code=True)
    got = served_scores(rerank(family_client, "custom-code"))
    report("custom-code", "max |score diff|", np.abs(got - expected).max())
    assert np.abs(got - expected).max() < SCORE_TOLERANCE


def test_int8_reranker_keeps_the_order(family_client, family_exports) -> None:
    """int8 through the torch.export route (NNCF weight compression of the converted IR)."""
    expected = cross_encoder(family_exports["modernbert-reranker"].source, QUERY, DOCUMENTS)
    got = served_scores(rerank(family_client, "modernbert-reranker-int8"))
    correlation = float(spearmanr(expected, got).statistic)
    report("modernbert-reranker int8", "max |score diff|", np.abs(got - expected).max())
    report("modernbert-reranker int8", "Spearman", correlation)
    assert np.argmax(got) == np.argmax(expected)
    assert correlation >= 0.9


def test_instruction_to_a_model_without_one_is_refused(family_client) -> None:
    response = family_client.post(
        "/v3/rerank", json={"model": "deberta-v2", "query": "q", "documents": ["d"], "instruction": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("instruction:")


# ---- embedders -------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_qwen3_embedding_matches_its_model_card(family_client, family_exports, padding_side) -> None:
    source = family_exports["qwen3-embedding"].source
    task = "Given a web search query, retrieve relevant passages that answer the query"
    queries = [f"Instruct: {task}\nQuery:{text}" for text in TEXTS]
    expected = qwen3_embedding_card(source, queries + TEXTS, padding_side)
    got_queries, body = embed(family_client, "qwen3-embedding", TEXTS, input_type="query")
    got_documents, _ = embed(family_client, "qwen3-embedding", TEXTS, input_type="search_document")
    distance = cosine_distance(np.vstack([got_queries, got_documents]), expected)
    report(f"qwen3-embedding ({padding_side} padding)", "max cosine distance", distance)
    assert distance < COSINE_TOLERANCE
    tokenizer = load("tokenizer", source)
    assert body["usage"]["prompt_tokens"] == sum(len(tokenizer(q)["input_ids"]) for q in queries)


def test_qwen3_embedding_matches_sentence_transformers_prompts(family_client, family_exports) -> None:
    expected = sentence_transformer(family_exports["qwen3-embedding"].source, TEXTS, prompt_name="query")
    got, _ = embed(family_client, "qwen3-embedding", TEXTS, prompt_name="query")
    assert cosine_distance(got, expected) < COSINE_TOLERANCE


def test_int8_embedder_keeps_the_order(family_client, family_exports) -> None:
    documents = DOCUMENTS[:5]
    reference = sentence_transformer(family_exports["qwen3-embedding"].source, documents)
    query = sentence_transformer(family_exports["qwen3-embedding"].source, [QUERY], prompt_name="query")
    got_documents, _ = embed(family_client, "qwen3-embedding-int8", documents)
    got_query, _ = embed(family_client, "qwen3-embedding-int8", [QUERY], input_type="query")
    expected = reference @ query[0]
    got = got_documents @ got_query[0]
    shift = float(np.abs(got - expected).max())
    report("qwen3-embedding int8", "max cosine distance", cosine_distance(got_documents, reference))
    report("qwen3-embedding int8", "max similarity shift", shift)
    assert cosine_distance(got_documents, reference) < 1e-2 and cosine_distance(got_query, query) < 1e-2
    # The order is held through the shift: no two documents further apart than 4e-2 can swap. A
    # random-weight replica's similarities can lie closer than int8's rounding (which depends on the
    # CPU), so an exact order is not asked of them.
    assert shift < 2e-2


@pytest.mark.parametrize("name", ["mpnet", "modernbert-embed"])
def test_embedders_match_sentence_transformers(family_client, family_exports, name) -> None:
    texts = [*TEXTS, LONG_TEXT]  # one input over a hundred tokens longer than the others
    expected = sentence_transformer(family_exports[name].source, texts)
    got, _ = embed(family_client, name, texts)
    report(name, "max cosine distance", cosine_distance(got, expected))
    assert cosine_distance(got, expected) < COSINE_TOLERANCE


@pytest.mark.parametrize("dimensions", [None, 64])
def test_nomic_layer_norm_then_matryoshka(family_client, family_exports, dimensions) -> None:
    """nomic-embed-text-v1.5's model card: mean pooling, layer norm, the first N dimensions, L2."""
    pooled = sentence_transformer(
        family_exports["nomic-embed-v1.5"].source, TEXTS, prompt_name="search_query"
    )
    normed = torch.nn.functional.layer_norm(torch.from_numpy(pooled), normalized_shape=(pooled.shape[1],))
    expected = torch.nn.functional.normalize(normed[:, : dimensions or pooled.shape[1]], p=2, dim=1).numpy()
    extra = {"dimensions": dimensions} if dimensions else {}
    got, _ = embed(family_client, "nomic-embed-v1.5", TEXTS, input_type="search_query", **extra)
    report(
        f"nomic-embed-v1.5 (dimensions {dimensions})", "max cosine distance", cosine_distance(got, expected)
    )
    assert got.shape == expected.shape
    assert cosine_distance(got, expected) < COSINE_TOLERANCE
    assert np.abs(got - expected).max() < 1e-4  # normalized: the values themselves, not only the direction


def test_long_context_xlmr_takes_8192_tokens(family_client, family_exports) -> None:
    source = family_exports["xlm-roberta-long"].source
    tokenizer = load("tokenizer", source)
    words = "panda bamboo China mountain "
    per_block = len(tokenizer(words, add_special_tokens=False)["input_ids"])
    text = words * (8190 // per_block)
    text += "panda " * (8190 - len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    assert len(tokenizer(text)["input_ids"]) == 8192
    expected = sentence_transformer(source, [text, "short"])
    got, body = embed(family_client, "xlm-roberta-long", [text, "short"])
    report("xlm-roberta-long (8192 tokens)", "max cosine distance", cosine_distance(got, expected))
    assert cosine_distance(got, expected) < COSINE_TOLERANCE
    assert body["usage"]["prompt_tokens"] == 8192 + len(tokenizer("short")["input_ids"])
    longer = text + " bamboo panda"
    assert len(tokenizer(longer)["input_ids"]) > 8192
    too_long = family_client.post("/v3/embeddings", json={"model": "xlm-roberta-long", "input": [longer]})
    assert too_long.status_code == 400 and "8192" in too_long.json()["error"]


@pytest.mark.parametrize(
    ("input_type", "prefix"),
    [
        ("query", "query: "),
        ("search_query", "query: "),
        ("document", "passage: "),
        ("search_document", "passage: "),
    ],
)
def test_e5_prompts_given_at_export(family_client, family_exports, input_type, prefix) -> None:
    source = family_exports["xlm-roberta-e5"].source
    expected = sentence_transformer(source, [prefix + text for text in TEXTS])
    got, body = embed(family_client, "xlm-roberta-e5", TEXTS, input_type=input_type)
    report(f"e5 ({input_type})", "max cosine distance", cosine_distance(got, expected))
    assert cosine_distance(got, expected) < COSINE_TOLERANCE
    tokenizer = load("tokenizer", source)
    assert body["usage"]["prompt_tokens"] == sum(len(tokenizer(prefix + t)["input_ids"]) for t in TEXTS)


def test_prompt_prepended_to_token_id_inputs(family_client, family_exports) -> None:
    tokenizer = load("tokenizer", family_exports["xlm-roberta-e5"].source)
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in TEXTS[:2]]
    prompt_ids = tokenizer("query: ", add_special_tokens=False)["input_ids"]
    from_ids, _ = embed(family_client, "xlm-roberta-e5", ids, input_type="query")
    joined, _ = embed(family_client, "xlm-roberta-e5", [prompt_ids + row for row in ids])
    assert np.abs(from_ids - joined).max() < 1e-6


def test_model_list_shows_prompts_and_instructions(family_client) -> None:
    cards = {card["id"]: card for card in family_client.get("/v3/models").json()["data"]}
    assert cards["xlm-roberta-e5"]["prompts"] == {"query": "query: ", "document": "passage: "}
    assert cards["nomic-embed-v1.5"]["prompts"]["search_document"] == "search_document: "
    assert cards["qwen3-embedding"]["prompts"]["query"].startswith("Instruct: Given a web search query")
    assert cards["qwen3-reranker"]["instruction"].startswith("Given a web search query")
    assert cards["mpnet"]["prompts"] is None and cards["mxbai-rerank-v2"]["instruction"] is None


def test_prompt_choice_errors(family_client) -> None:
    unknown = family_client.post(
        "/v3/embeddings", json={"model": "xlm-roberta-e5", "input": "x", "prompt_name": "nope"}
    )
    assert unknown.status_code == 400
    assert (
        unknown.json()["error"] == "prompt_name: 'nope' is not one of this model's prompts (query, document)"
    )
    unmatched = family_client.post(
        "/v3/embeddings", json={"model": "xlm-roberta-e5", "input": "x", "input_type": "clustering"}
    )
    assert unmatched.status_code == 400 and unmatched.json()["error"].startswith("input_type:")
    # A model without prompts takes any input_type (Cohere clients always send one) and embeds the text.
    plain, _ = embed(family_client, "mpnet", ["x"])
    typed, _ = embed(family_client, "mpnet", ["x"], input_type="search_query")
    assert np.array_equal(plain, typed)


def test_export_records_the_recipe(family_exports: dict[str, Exported]) -> None:
    from serving.repository.layout import read_model_info

    def info(name: str, task: str):
        return read_model_info(ov.Core().read_model(family_exports[name].folder / task / "1" / "model.xml"))

    assert (info("qwen3-reranker", "rerank").family, info("qwen3-reranker", "rerank").conversion) == (
        "qwen3-reranker",
        "causal-lm-to-classifier",
    )
    assert info("nomic-embed-v1.5", "embeddings").post_pooling == ["layer_norm"]
    assert info("modernbert-embed", "embeddings").conversion == "torch-export"
    assert info("mpnet", "embeddings").family == "mpnet"


# ---- compare_results.py follows the same recipes -----------------------------------------------

COMPARE_SCRIPT = Path(__file__).resolve().parents[2] / "export_models" / "compare_results.py"
SEED_LINES = (
    "query ", "documents ", "inputs ", "HF Duration: ", "Server Duration: ", "HF reranking: ",
    "Server reranking: ", "Cosine similarity: ", "Largest absolute difference: ", "Largest cosine distance: ",
    "PASS",
)  # fmt: skip


@pytest.mark.parametrize(
    ("model", "arguments"),
    [
        ("qwen3-reranker", ("--query", QUERY, *(a for d in DOCUMENTS[:3] for a in ("--document", d)))),
        ("qwen3-embedding", ("--prompt_name", "query", *(a for t in TEXTS for a in ("--input", t)))),
    ],
)
def test_compare_results_checks_a_family_by_its_recipe(family_server, model, arguments) -> None:
    """PASS at fp32 tolerances, and nothing printed but the seed's lines (no transformers load report)."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(COMPARE_SCRIPT), "--base_url", family_server.base_url,
         "--config_path", str(family_server.config_path), "--model_name", model, *arguments],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "PASS"
    assert all(line.startswith(SEED_LINES) for line in lines), done.stdout
    assert "LOAD REPORT" not in done.stdout + done.stderr and "UNEXPECTED" not in done.stdout + done.stderr
