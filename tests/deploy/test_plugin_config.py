"""--plugin_config / OVTEXT_PLUGIN_CONFIG: OpenVINO properties set by the operator for every CPU model.

The Kubernetes Deployment ties INFERENCE_NUM_THREADS to the container's CPU limit through it.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tools.server_process import ServerProcess

from .conftest import EMBEDDER, RERANKER


def start(repo: Path, log_path: Path, plugin_config: str) -> ServerProcess:
    served = ServerProcess(
        repo / "config.json", log_path, env={**os.environ, "OVTEXT_PLUGIN_CONFIG": plugin_config}
    )
    served.wait_ready()
    return served


def test_properties_reach_every_cpu_model(deploy_repo: Path, tmp_path: Path) -> None:
    # The exports write NUM_STREAMS 1; the operator's 2 wins: two infer requests per model.
    server = start(deploy_repo, tmp_path / "two.log", '{"NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": "2"}')
    try:
        response = httpx.post(
            f"{server.url}/v3/rerank", json={"model": RERANKER, "query": "q", "documents": ["d"]}, timeout=60
        )
        assert response.status_code == 200, response.text
    finally:
        assert server.stop() == 0
    log = server.log()
    for name, task in ((RERANKER, "rerank"), (EMBEDDER, "embeddings")):
        assert f"loaded {name}:1 ({task} on CPU, 2 infer requests)" in log, log


def test_a_wrong_property_fails_the_models_with_the_reason(deploy_repo: Path, tmp_path: Path) -> None:
    server = start(deploy_repo, tmp_path / "wrong.log", '{"NUM_STREAMS": "many"}')
    try:
        status = httpx.get(f"{server.url}/v1/config", timeout=30).json()
    finally:
        assert server.stop() == 0
    (version,) = status[RERANKER]["model_version_status"]
    assert version["state"] == "LOADING" and version["status"]["error_code"] == "UNKNOWN"
    assert "cannot compile the model on target_device 'CPU'" in version["status"]["error_message"]
    assert "many" in version["status"]["error_message"]
