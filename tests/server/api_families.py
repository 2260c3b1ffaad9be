"""The one server the API-family tests share (TEI, text_pairs, Cohere embed, aliases and defaults).

Its repository: the cross-encoder and the tiny XLM-R reranker of the session exports, under
aliases; and an embedder exported here for real with `--alias` and `--prompt`, as version 2 of a
model that had another alias (the export replaces it). The server requires an
API key and has a default model per task. Imported by each test module; the first one builds it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ExportedModel, ServerProcess, add_model

KEY = "api-families-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CROSS = "test/cross-encoder"
XLMR = "test/xlmr"
EMBEDDER = "prompted/minilm"
CROSS_ALIASES = ["ms-marco-tiny", "org/short"]
XLMR_ALIASES = ["xlmr"]
EMBEDDER_OLD_ALIASES = ["old-name"]
EMBEDDER_ALIAS = "all-minilm-l6-v2"
PROMPTS = {"query": "query: ", "document": "passage: "}


@dataclass(frozen=True)
class ApiServer:
    server: ServerProcess
    repo: Path
    export: subprocess.CompletedProcess

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def config_path(self) -> Path:
        return self.repo / "config.json"


_built: dict[str, ApiServer] = {}


def write_config_with_aliases(repo: Path, entries: dict[str, list[str]]) -> None:
    """config.json with these entries, and their aliases in aliases.json (as `--alias` writes them)."""
    config = {
        "model_config_list": [],
        "mediapipe_config_list": [{"name": name, "base_path": name} for name in entries],
    }
    (repo / "config.json").write_text(json.dumps(config, indent=2))
    (repo / "aliases.json").write_text(json.dumps({"aliases": entries}, indent=2))


@pytest.fixture(scope="session")
def api_server(
    exported_models: dict[str, ExportedModel],
    minilm_source: Path,
    run_export: Callable[..., subprocess.CompletedProcess],
    start_session_server: Callable[..., ServerProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> ApiServer:
    if "server" in _built:
        return _built["server"]
    repo = tmp_path_factory.mktemp("api-families") / "models"
    repo.mkdir()
    add_model(repo, exported_models[CROSS])
    add_model(repo, exported_models[XLMR])
    # Version 1 of the embedder: the plain MiniLM export, under an alias the next export replaces.
    shutil.copytree(exported_models["test/minilm"].model_dir, repo / EMBEDDER)
    write_config_with_aliases(
        repo, {CROSS: CROSS_ALIASES, XLMR: XLMR_ALIASES, EMBEDDER: EMBEDDER_OLD_ALIASES}
    )
    prompts = [f"--prompt={name}={text}" for name, text in PROMPTS.items()]
    export = run_export(
        "embeddings", minilm_source, repo, "--alias", EMBEDDER_ALIAS, *prompts, model_name=EMBEDDER
    )
    assert export.returncode == 0, export.stderr
    server = start_session_server(
        repo / "config.json",
        "--api_key", KEY,
        "--default_rerank_model", CROSS,
        "--default_embeddings_model", EMBEDDER_ALIAS,
    )  # fmt: skip
    _built["server"] = ApiServer(server, repo, export)
    return _built["server"]
