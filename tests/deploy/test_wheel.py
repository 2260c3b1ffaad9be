"""`pip install .` (no extras) is a serving install: a fresh venv from the wheel serves, without torch.

The wheel is built from this checkout (`pip wheel --no-deps`), installed into a new venv with its
base dependencies only (pip's cache makes this about half a minute once `make install` has run),
and its `ovtext-serve` console script serves a rerank and an embeddings request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from tools.server_process import ServerProcess

from .conftest import EMBEDDER, RERANKER

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "optimum", "nncf", "pyarrow", "ray")


# The venv's processes see neither this checkout nor anything PYTHONPATH adds.
ISOLATED = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def pip(*arguments: str, python: Path | str = sys.executable, cwd: Path = REPO_ROOT) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *arguments],
        cwd=cwd, env=ISOLATED, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"pip {' '.join(arguments)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the sources, so the build leaves nothing (build/, *.egg-info) in the checkout.
    source = root / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".cache", "models", "work", "dist", "build", "*.egg-info", "__pycache__", "tests"
    ))  # fmt: skip
    pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(root / "dist"), str(source))
    (built,) = (root / "dist").glob("ovtext-*.whl")
    return built


def test_the_wheel_holds_what_users_run_and_not_the_builders_of_test_models(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if name.endswith(".py")}
    assert packages == {"export_models", "serving"}, packages  # not benchmark/, tools/, tests/
    for task in ("rerank", "embeddings"):
        for purpose in ("calibration", "evaluation"):  # what --quantization static reads
            assert f"export_models/data/{task}-{purpose}.jsonl" in names


def test_the_base_install_serves_without_torch(deploy_repo: Path, wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip("install", "--quiet", str(wheel), python=python, cwd=tmp_path)

    probe = (
        "import importlib.util as u, sys, serving; print(serving.__file__); "
        "print([m for m in sys.argv[1:] if u.find_spec(m)])"
    )
    done = subprocess.run(
        [python, "-c", probe, *HEAVY], cwd=tmp_path, env=ISOLATED, capture_output=True, text=True, check=True
    )
    location, importable = done.stdout.strip().splitlines()
    assert location.startswith(str(venv)), location  # the installed wheel, not this checkout
    assert importable == "[]", f"importable in the serving install: {importable}"

    server = ServerProcess(
        deploy_repo / "config.json", tmp_path / "server.log",
        command=[str(venv / "bin" / "ovtext-serve")], env=ISOLATED, cwd=tmp_path,
    )  # fmt: skip
    try:
        server.wait_ready()
        rerank = httpx.post(
            f"{server.url}/v3/rerank",
            json={"model": RERANKER, "query": "welcome", "documents": ["good morning", "farewell"]},
            timeout=60,
        )
        assert rerank.status_code == 200, rerank.text
        scores = sorted(rerank.json()["results"], key=lambda result: result["index"])
        assert [r["index"] for r in scores] == [0, 1] and all(0 < r["relevance_score"] < 1 for r in scores)
        embeddings = httpx.post(
            f"{server.url}/v3/embeddings", json={"model": EMBEDDER, "input": "hello"}, timeout=60
        )
        assert embeddings.status_code == 200, embeddings.text
        vector = np.array(embeddings.json()["data"][0]["embedding"])
        assert vector.shape == (384,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    finally:
        code = server.stop()
    assert code == 0, server.log()[-3000:]

    # The corpus job's console script is installed too, and names the extra it needs.
    done = subprocess.run(
        [venv / "bin" / "ovtext-batch", "embeddings", "--config_path", str(deploy_repo / "config.json"),
         "--input", str(deploy_repo / "config.json"), "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=ISOLATED, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "Error: this needs pyarrow: pip install 'ovtext[batch]'" in done.stderr
