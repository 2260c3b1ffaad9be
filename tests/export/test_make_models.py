"""`make models` (python -m export_models.demo_models): the demo repository through the CLI's code path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from export_models.demo_models import DEMO_EMBEDDER_NAME, DEMO_RERANKER_NAME
from export_models.repository import servable_versions
from serving.repository.config import read_config, read_servable_spec
from serving.repository.layout import Task

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_demo_models(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export_models.demo_models", "--model_repository_path", str(repo)],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_demo_repository_is_servable_and_a_rerun_keeps_it(tmp_path: Path, cross_encoder_source: Path) -> None:
    repo = tmp_path / "models"
    first = run_demo_models(repo)
    assert first.returncode == 0, first.stderr
    specs = {entry.name: read_servable_spec(entry) for entry in read_config(repo / "config.json")}
    assert specs[DEMO_EMBEDDER_NAME].task is Task.EMBEDDINGS
    assert specs[DEMO_RERANKER_NAME].task is Task.RERANK
    assert servable_versions(repo / DEMO_EMBEDDER_NAME, Task.EMBEDDINGS) == [1]
    assert servable_versions(repo / DEMO_RERANKER_NAME, Task.RERANK) == [1]

    second = run_demo_models(repo)
    assert second.returncode == 0, second.stderr
    assert "skipping" in second.stderr
    assert servable_versions(repo / DEMO_RERANKER_NAME, Task.RERANK) == [1]  # no version pile-up
