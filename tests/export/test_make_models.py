"""`make models` (python -m tools.demo_models): the demo repository, served and scored."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from export_models.repository import servable_versions
from serving.repository.config import read_config, read_servable_spec
from serving.repository.layout import Task
from tests.support.exports import Exported
from tests.support.references import HFReranker, cosine_distance, sentence_embedder
from tests.support.repository import copy_model, write_config
from tests.support.server import ServerProcess, embeddings_of, scores_by_index
from tools.demo_models import DEMO_EMBEDDER_NAME, DEMO_RERANKER_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
# compare_results' defaults for int8 exports (the demo models are int8).
INT8_RERANK_TOLERANCE = 5e-2
INT8_EMBEDDINGS_TOLERANCE = 1e-2


def run_demo_models(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.demo_models", "--model_repository_path", str(repo)],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_models_exports_what_is_missing_and_serves_the_demo_pair(
    tmp_path: Path,
    exported: Callable[..., Exported],
    start_server: Callable[..., ServerProcess],
    cross_encoder_source: Path,
    minilm_source: Path,
) -> None:
    repo = tmp_path / "models"
    # The embedder is already there (the session's int8 export of the same model, as an earlier
    # `make models` would have written it): the command exports the reranker only, and a run after
    # it would skip both (docs/export.md: running it again skips models that are already there).
    copy_model(exported("minilm", "int8"), repo, DEMO_EMBEDDER_NAME)
    write_config(repo, [DEMO_EMBEDDER_NAME])
    first = run_demo_models(repo)
    assert first.returncode == 0, first.stderr
    assert f"{DEMO_EMBEDDER_NAME}: already exported" in first.stderr
    assert f"Exported {DEMO_RERANKER_NAME} version 1" in first.stdout
    specs = {entry.name: read_servable_spec(entry) for entry in read_config(repo / "config.json")}
    assert specs[DEMO_EMBEDDER_NAME].task is Task.EMBEDDINGS
    assert specs[DEMO_RERANKER_NAME].task is Task.RERANK
    assert servable_versions(repo / DEMO_RERANKER_NAME, Task.RERANK) == [1]

    # What `make serve` serves: a rerank request as in the docs scores like the Hugging Face models.
    server = start_server(repo / "config.json")
    query = "what is the giant panda?"
    documents = [
        "The giant panda is a bear species endemic to China.",
        "Coffee is a drink brewed from beans.",
    ]
    body = {"model": DEMO_RERANKER_NAME, "query": query, "documents": documents}
    answer = httpx.post(f"{server.url}/v3/rerank", json=body, timeout=60).json()
    assert [result["index"] for result in answer["results"]] == [0, 1]  # the fine-tuned model ranks
    expected = HFReranker(cross_encoder_source).scores(query, documents)
    assert np.abs(scores_by_index(answer, 2) - expected).max() < INT8_RERANK_TOLERANCE

    inputs = ["hello", "farewell"]
    body = {"model": DEMO_EMBEDDER_NAME, "input": inputs}
    vectors = embeddings_of(httpx.post(f"{server.url}/v3/embeddings", json=body, timeout=60).json())
    reference = sentence_embedder(minilm_source).encode(inputs)
    assert cosine_distance(vectors, reference).max() < INT8_EMBEDDINGS_TOLERANCE
