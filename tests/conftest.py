"""Session fixtures shared by every test folder: offline source models and the export command.

The models are built by export_models.demo_models (fixed seeds, no network) and cached in
.cache/fixtures/ (or $OVTEXT_FIXTURE_CACHE), so a second run reuses them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from export_models import demo_models
from export_models.cli import export_command_line

REPO_ROOT = Path(__file__).resolve().parent.parent

# No model hub is reachable here: anything that tries to download must fail fast.
os.environ["HF_HUB_OFFLINE"] = "1"

RunExport = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def minilm_source() -> Path:
    """HF folder of the real sentence-transformers/all-MiniLM-L6-v2."""
    return demo_models.minilm_source()


@pytest.fixture(scope="session")
def cross_encoder_source() -> Path:
    """HF folder of the fine-tuned MiniLM cross-encoder (BertForSequenceClassification, 1 label)."""
    return demo_models.cross_encoder_source()


@pytest.fixture(scope="session")
def xlmr_reranker_source() -> Path:
    """HF folder of the tiny XLMRobertaForSequenceClassification with a Unigram/Metaspace tokenizer."""
    return demo_models.xlmr_reranker_source()


@pytest.fixture(scope="session")
def run_export() -> RunExport:
    """Run `python export_models/export_model.py <task> ...` from the repo root, offline."""

    def run(
        task: str,
        source: Path | str,
        repo: Path,
        *extra_args: str,
        model_name: str | None = None,
        weight_format: str = "fp32",
    ) -> subprocess.CompletedProcess:
        command = export_command_line(
            task, source, repo, *extra_args, model_name=model_name, weight_format=weight_format
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)

    return run
