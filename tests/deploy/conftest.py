"""Fixtures of the deployment tests: one small repository (a reranker and an embedder, fp32).

The models come from the session's exports when the suite has them (a `session_exports`
fixture), else they are exported here with the shared `run_export` fixture. Servers are started
by tools/server_process.py, which takes any command line with the server's flags (the module, a
wheel's console script).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serving.repository.layout import Task

# name in the repository -> (task, source fixture, kind in the session's exports)
MODELS: dict[str, tuple[Task, str, str]] = {
    "test/cross-encoder": (Task.RERANK, "cross_encoder_source", "cross-encoder"),
    "test/minilm": (Task.EMBEDDINGS, "minilm_source", "minilm"),
}
RERANKER, EMBEDDER = "test/cross-encoder", "test/minilm"


def _model_folders(request: pytest.FixtureRequest, run_export: Callable[..., subprocess.CompletedProcess],
                   staging: Path) -> dict[str, Path]:  # fmt: skip
    """{name: exported model folder} for every model of MODELS."""
    try:
        session_exports = request.getfixturevalue("session_exports")
    except pytest.FixtureLookupError:
        session_exports = None
    if session_exports is not None:
        exported = session_exports.get_all([(kind, "fp32") for _, _, kind in MODELS.values()])
        return {name: item.model_dir for name, item in zip(MODELS, exported, strict=True)}
    sources = {name: Path(request.getfixturevalue(fixture)) for name, (_, fixture, _) in MODELS.items()}

    def export(name: str) -> Path:
        task = MODELS[name][0]
        repo = staging / name.replace("/", "_")
        done = run_export(task.value, sources[name], repo, model_name=name, weight_format="fp32")
        if done.returncode != 0:
            raise RuntimeError(f"export of {name} failed:\n{done.stdout}\n{done.stderr}")
        return repo / name

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(MODELS, pool.map(export, MODELS), strict=True))


@pytest.fixture(scope="session")
def deploy_repo(request: pytest.FixtureRequest, run_export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/config.json with test/cross-encoder (rerank) and test/minilm (embeddings), readable by
    any user (the image runs as uid 1000)."""
    root = tmp_path_factory.mktemp("deploy")
    folders = _model_folders(request, run_export, root / "staging")
    repo = root / "models"
    for name, folder in folders.items():
        shutil.copytree(folder, repo / name)
    config = {"model_config_list": [], "mediapipe_config_list": [{"name": n, "base_path": n} for n in MODELS]}
    (repo / "config.json").write_text(json.dumps(config, indent=1))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return repo
