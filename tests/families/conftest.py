"""Model families: every replica exported once per session with the real CLI and served by one
real server.

The replicas (tools/replicas.py) are built offline and cached like the other fixture
models ($OVTEXT_FIXTURE_CACHE). Exports run two at a time, each into its own repository; the
served repository's config.json points at all of them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from serving.repository.layout import Task
from tools import replicas
from tools.server_process import ServerProcess


@dataclass(frozen=True)
class FamilyExport:
    """What to export: a replica, the task, the weight format and extra CLI options."""

    replica: str
    task: Task
    weight_format: str = "fp32"
    options: tuple[str, ...] = ()


# Served model name -> export. One int8 export per task kind checks that int8 loads and keeps the order.
EXPORTS: dict[str, FamilyExport] = {
    "qwen3-reranker": FamilyExport("qwen3-reranker", Task.RERANK),
    "qwen3-reranker-seq-cls": FamilyExport("qwen3-reranker-seq-cls", Task.RERANK),
    "mxbai-rerank-v2": FamilyExport("mxbai-rerank-v2", Task.RERANK),
    "deberta-v2": FamilyExport("deberta-v2", Task.RERANK),
    "modernbert-reranker": FamilyExport("modernbert-reranker", Task.RERANK),
    "modernbert-reranker-int8": FamilyExport("modernbert-reranker", Task.RERANK, "int8"),
    "custom-code": FamilyExport("custom-code", Task.RERANK, options=("--trust_remote_code",)),
    "qwen3-embedding": FamilyExport("qwen3-embedding", Task.EMBEDDINGS),
    "qwen3-embedding-int8": FamilyExport("qwen3-embedding", Task.EMBEDDINGS, "int8"),
    "mpnet": FamilyExport("mpnet", Task.EMBEDDINGS),
    "nomic-embed-v1.5": FamilyExport("nomic-embed-v1.5", Task.EMBEDDINGS),
    "modernbert-embed": FamilyExport("modernbert-embed", Task.EMBEDDINGS),
    "xlm-roberta-long": FamilyExport("xlm-roberta-long", Task.EMBEDDINGS),
    "xlm-roberta-e5": FamilyExport(
        "xlm-roberta-e5",
        Task.EMBEDDINGS,
        options=("--prompt", "query=query: ", "--prompt", "document=passage: "),
    ),
}


@dataclass(frozen=True)
class Exported:
    name: str
    source: Path
    folder: Path  # the model folder (graph.pbtxt, subconfig.json, tokenizer/1, <task>/1)
    seconds: float
    stdout: str


@pytest.fixture(scope="session")
def replica() -> Callable[[str], Path]:
    """replica(name) -> the HF folder of that family replica (built on first use, cached)."""
    return replicas.replica_source


@pytest.fixture(scope="session")
def family_exports(
    run_export: Callable[..., subprocess.CompletedProcess], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Exported]:
    staging = tmp_path_factory.mktemp("family-exports")
    sources = {name: replicas.replica_source(export.replica) for name, export in EXPORTS.items()}

    def export(name: str) -> Exported:
        spec = EXPORTS[name]
        repo = staging / name
        started = time.monotonic()
        done = run_export(
            spec.task.value,
            sources[name],
            repo,
            *spec.options,
            model_name=name,
            weight_format=spec.weight_format,
        )
        if done.returncode != 0:
            raise RuntimeError(f"export of {name} failed:\n{done.stdout}\n{done.stderr}")
        return Exported(name, sources[name], repo / name, time.monotonic() - started, done.stdout)

    with ThreadPoolExecutor(max_workers=2) as pool:
        exported = dict(zip(EXPORTS, pool.map(export, EXPORTS), strict=True))
    for item in exported.values():
        print(f"export {item.name}: {item.seconds:.1f} s")
    return exported


@pytest.fixture(scope="session")
def family_server(
    family_exports: dict[str, Exported], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for every family export (config.json points at each export's folder)."""
    root = tmp_path_factory.mktemp("family-repo")
    entries = [{"name": name, "base_path": str(item.folder)} for name, item in family_exports.items()]
    config_path = root / "config.json"
    config_path.write_text(json.dumps({"model_config_list": [], "mediapipe_config_list": entries}))
    with ServerProcess(config_path, root / "server.log", models=list(family_exports)) as server:
        yield server


@pytest.fixture(scope="session")
def family_client(family_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=family_server.url, timeout=300) as client:
        yield client
