"""Session fixtures shared by every test folder: offline source models and the export command.

The models are built by export_models.demo_models (fixed seeds, no network) and cached in
.cache/fixtures/ (or $OVTEXT_FIXTURE_CACHE), so a second run reuses them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from export_models import demo_models

REPO_ROOT = Path(__file__).resolve().parent.parent
EXPORT_SCRIPT = REPO_ROOT / "export_models" / "export_model.py"

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


def export_command(
    task: str,
    source: Path | str,
    repo: Path,
    *extra_args: str,
    model_name: str | None = None,
    weight_format: str = "fp32",
) -> list[str]:
    """The export_model.py command line the run_export fixture runs."""
    command = [
        sys.executable,
        str(EXPORT_SCRIPT),
        task,
        "--source_model",
        str(source),
        "--weight-format",
        weight_format,
        "--config_file_path",
        str(Path(repo) / "config.json"),
        "--model_repository_path",
        str(repo),
    ]
    if model_name is not None:
        command += ["--model_name", model_name]
    return command + list(extra_args)


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
        command = export_command(
            task, source, repo, *extra_args, model_name=model_name, weight_format=weight_format
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)

    return run
