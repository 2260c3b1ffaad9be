"""Server tests: the session's fp32 exports, served by the real server process.

The shared read-only server (`server`, `client`) serves copies of the three fp32 exports and their
option variants (graph.pbtxt or subconfig.json rewritten, tests/support/repository.py). Tests that
change a repository or need other flags start servers of their own with `start_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.repository.layout import Pooling
from tests.support.exports import Exported, SessionExports
from tests.support.references import HFReranker, sentence_embedder
from tests.support.repository import (  # noqa: F401  (write_config: importable from here, see the end)
    assemble_repo,
    copy_model,
    edit_subconfig,
    set_graph_options,
    write_config,
)
from tests.support.server import (  # noqa: F401  (the names the earlier conftest offered)
    REPO_ROOT,
    ServerGroup,
    ServerProcess,
    free_port,
    scores_by_index,
    version_states,
    wait_until,
)

FP32_EXPORTS = (("cross-encoder", "fp32"), ("xlmr", "fp32"), ("minilm", "fp32"))

# fp32 exports pin INFERENCE_PRECISION_HINT f32, and then the server matches Hugging Face to float32
# rounding: measured here (AMD Zen 4, bf16-capable) 4e-7 on rerank scores and 3e-7 on embedding
# values. The same exports compiled at the plugin's default precision (bf16) are off by 6.5e-3 and
# 1.2e-3: this tolerance fails a server that drops plugin_config.
FP32_TOLERANCE = 1e-5
# Raw logits: about 5e-6 measured (the cross-encoder's logits reach 5); bf16 is off by 7.6e-2.
FP32_LOGIT_TOLERANCE = 1e-4

# A variant whose subconfig.json asks for bf16, the CPU plugin's own default where the CPU has it
# (the server computes f32 weights in f32 only when plugin_config names no precision).
UNPINNED = "test/minilm-bf16"
# Served name -> (session export, graph.pbtxt options rewritten in its copy).
MAIN_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "test/cross-encoder": ("cross-encoder", {}),
    "test/cross-encoder-doc40": ("cross-encoder", {"max_doc_length": 40}),
    "test/xlmr": ("xlmr", {}),
    "test/xlmr-few-chunks": ("xlmr", {"max_allowed_chunks": 3}),
    "test/minilm": ("minilm", {}),
    "test/minilm-truncate": ("minilm", {"truncate": True}),
    "test/minilm-cls": ("minilm", {"pooling": Pooling.CLS}),
    "test/minilm-last": ("minilm", {"pooling": Pooling.LAST}),
    "test/minilm-unnormalized": ("minilm", {"normalize_embeddings": False}),
    UNPINNED: ("minilm", {}),  # subconfig.json asks for bf16 (f32 where the CPU has no bf16)
}


@pytest.fixture(scope="session")
def server_exports(session_exports: SessionExports) -> dict[str, Exported]:
    """kind -> the session's fp32 export of it (exported two at a time when not there yet)."""
    return {e.kind: e for e in session_exports.get_all(FP32_EXPORTS)}


@pytest.fixture(scope="session")
def main_repo(server_exports: dict[str, Exported], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared server's repository folder (config.json and the MAIN_MODELS copies)."""
    root = tmp_path_factory.mktemp("main") / "models"
    assemble_repo(root, {name: server_exports[kind] for name, (kind, _) in MAIN_MODELS.items()})
    for name, (_, options) in MAIN_MODELS.items():
        if options:
            set_graph_options(root / name, **options)
    edit_subconfig(
        root / UNPINNED, lambda config: config["plugin_config"].update(INFERENCE_PRECISION_HINT="bf16")
    )
    assert '"bf16"' in (root / UNPINNED / "subconfig.json").read_text()
    return root


@pytest.fixture(scope="session")
def server(main_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server the read-only tests share: MAIN_MODELS, default flags."""
    group = ServerGroup(lambda: tmp_path_factory.mktemp("server-log"))
    yield group.start(main_repo / "config.json")
    problems = group.stop_all()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="session")
def hf_rerankers(server_exports: dict[str, Exported]) -> dict[str, HFReranker]:
    """The Hugging Face models behind the served rerankers, by served name."""
    return {
        "test/cross-encoder": HFReranker(server_exports["cross-encoder"].source),
        "test/xlmr": HFReranker(server_exports["xlmr"].source),
    }


@pytest.fixture(scope="session")
def sentence_transformer(minilm_source: Path) -> Any:
    """all-MiniLM-L6-v2 in sentence-transformers, as published (mean pooling, normalized)."""
    return sentence_embedder(minilm_source)


# ---- The earlier conftest's names, kept for tests written against it ---------------------------

ExportedModel = Exported


def add_model(repo: Path, exported: Exported, name: str | None = None) -> Path:
    """Copy an exported model folder into `repo` (under `name`); returns the new folder."""
    return copy_model(exported, repo, name)


@pytest.fixture(scope="session")
def exported_models(server_exports: dict[str, Exported], tmp_path_factory) -> dict[str, Exported]:
    """The fp32 exports by their earlier served names, with the two earlier option variants."""
    staging = tmp_path_factory.mktemp("variants")
    variants = {"test/xlmr-few-chunks": "xlmr", "test/minilm-truncate": "minilm"}
    models = {f"test/{kind}": exported for kind, exported in server_exports.items()}
    for name, kind in variants.items():
        copy_model(server_exports[kind], staging, name)
        models[name] = Exported(
            kind, "fp32", server_exports[kind].task, server_exports[kind].source, staging, name
        )
    set_graph_options(staging / "test/xlmr-few-chunks", max_allowed_chunks=3)
    set_graph_options(staging / "test/minilm-truncate", truncate=True)
    return models
