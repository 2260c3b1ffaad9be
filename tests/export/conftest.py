"""Exports shared by the export tests: each (model, weight format) is exported once per session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops: needed to read tokenizer IRs)
import pytest

from serving.repository.layout import (
    MODEL_BIN,
    MODEL_XML,
    TOKENIZER_DIR,
    ModelInfo,
    Task,
    TokenizerInfo,
    read_model_info,
    read_tokenizer_info,
)

# kind -> (task, name of the session fixture giving the HF source folder)
SOURCES: dict[str, tuple[Task, str]] = {
    "cross-encoder": (Task.RERANK, "cross_encoder_source"),
    "xlmr": (Task.RERANK, "xlmr_reranker_source"),
    "minilm": (Task.EMBEDDINGS, "minilm_source"),
}


@dataclass(frozen=True)
class Exported:
    """One successful export into the shared session repository (version 1)."""

    repo: Path
    model_name: str
    task: Task
    weight_format: str
    source: Path

    @property
    def model_dir(self) -> Path:
        return self.repo / self.model_name

    @property
    def model_xml(self) -> Path:
        return self.model_dir / self.task.model_dir / "1" / MODEL_XML

    @property
    def model_bin(self) -> Path:
        return self.model_dir / self.task.model_dir / "1" / MODEL_BIN

    @property
    def tokenizer_xml(self) -> Path:
        return self.model_dir / TOKENIZER_DIR / "1" / MODEL_XML

    def tokenizer_info(self) -> TokenizerInfo:
        return read_tokenizer_info(ov.Core().read_model(self.tokenizer_xml))

    def model_info(self) -> ModelInfo:
        return read_model_info(ov.Core().read_model(self.model_xml))


ExportedFactory = Callable[..., Exported]


@pytest.fixture(scope="session")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-repo")


@pytest.fixture(scope="session")
def exported(request: pytest.FixtureRequest, shared_repo: Path, run_export) -> ExportedFactory:
    """exported(kind, weight_format="fp32") -> Exported, running the CLI the first time only."""
    done: dict[tuple[str, str], Exported] = {}

    def get(kind: str, weight_format: str = "fp32") -> Exported:
        key = (kind, weight_format)
        if key not in done:
            task, source_fixture = SOURCES[kind]
            source = request.getfixturevalue(source_fixture)
            model_name = f"test/{kind}-{weight_format}"
            result = run_export(
                task.value, source, shared_repo, model_name=model_name, weight_format=weight_format
            )
            assert result.returncode == 0, result.stderr
            done[key] = Exported(shared_repo, model_name, task, weight_format, source)
        return done[key]

    return get
