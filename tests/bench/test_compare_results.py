"""compare_results.py against the real server: PASS, FAIL, and the cases where the check cannot run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmark.server_process import ServerProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPARE_SCRIPT = REPO_ROOT / "export_models" / "compare_results.py"
RERANKER = "demo/cross-encoder"
EMBEDDER = "demo/minilm"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served_repository(
    tmp_path_factory: pytest.TempPathFactory, run_export, cross_encoder_source: Path, minilm_source: Path
) -> Iterator[tuple[Path, str]]:
    """fp32 exports of the demo cross-encoder and MiniLM, served by the real server.

    Yields (config.json, the server's /v3 URL).
    """
    repository = tmp_path_factory.mktemp("compare-repo")
    for task, source, name in (
        ("rerank", cross_encoder_source, RERANKER),
        ("embeddings", minilm_source, EMBEDDER),
    ):
        completed = run_export(task, source, repository, model_name=name, weight_format="fp32")
        assert completed.returncode == 0, completed.stderr
    config_path = repository / "config.json"
    with ServerProcess(config_path, [RERANKER, EMBEDDER], repository / "server.log") as server:
        yield config_path, server.base_url


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    """The command users run, from the repository root."""
    return subprocess.run(
        [sys.executable, str(COMPARE_SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
        timeout=600,
    )


def printed_array(stdout: str, label: str) -> np.ndarray:
    match = re.search(rf"^{re.escape(label)}: \[([^\]]*)\]$", stdout, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{stdout}"
    return np.array([float(value) for value in match.group(1).split()])


def test_rerank_pass_prints_the_reference_demo_format(served_repository: tuple[Path, str]) -> None:
    config_path, base_url = served_repository
    documents = [
        "The giant panda is a bear species endemic to China.",
        "Coffee is a drink brewed from beans.",
    ]
    result = compare(
        "--query",
        "what is the giant panda?",
        "--document",
        documents[0],
        "--document",
        documents[1],
        "--base_url",
        base_url,
        "--config_path",
        str(config_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # The seed's lines, in the seed's order, then the verdict.
    assert lines[0] == "query what is the giant panda?"
    assert lines[1] == f"documents {documents!r}"
    assert re.fullmatch(r"HF Duration: \d+\.\d{3} ms", lines[2])
    assert re.fullmatch(r"Server Duration: \d+\.\d{3} ms", lines[3])
    assert lines[4].startswith("HF reranking: [") and lines[5].startswith("Server reranking: [")
    hf_scores, server_scores = (
        printed_array(result.stdout, "HF reranking"),
        printed_array(result.stdout, "Server reranking"),
    )
    assert len(hf_scores) == len(server_scores) == 2
    largest = float(
        re.search(
            r"^Largest absolute difference: (\S+) \(tolerance 0.001\)$", result.stdout, re.MULTILINE
        ).group(1)
    )
    assert largest == pytest.approx(np.max(np.abs(hf_scores - server_scores)), abs=1e-6)
    assert lines[-1] == "PASS"
    # The fine-tuned cross-encoder ranks the relevant document first, on both sides.
    assert hf_scores[0] > hf_scores[1] and server_scores[0] > server_scores[1]


def test_embeddings_pass(served_repository: tuple[Path, str]) -> None:
    config_path, base_url = served_repository
    result = compare(
        "--input",
        "hello",
        "--input",
        "farewell, and thanks for all the fish",
        "--base_url",
        base_url,
        "--config_path",
        str(config_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cosine = printed_array(result.stdout, "Cosine similarity")
    assert len(cosine) == 2 and np.all(cosine > 1 - 1e-4)
    assert "sentence-transformers" in result.stdout  # the model prescribes its pooling: ST is the reference
    assert result.stdout.splitlines()[-1] == "PASS"


def test_a_different_reference_model_fails(
    served_repository: tuple[Path, str], xlmr_reranker_source: Path
) -> None:
    config_path, base_url = served_repository
    result = compare(
        "--query",
        "what is the giant panda?",
        "--document",
        "The giant panda is a bear.",
        "--document",
        "Coffee is a drink.",
        "--base_url",
        base_url,
        "--config_path",
        str(config_path),
        "--hf_model",
        str(xlmr_reranker_source),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "FAIL"


def test_zero_tolerance_fails_exactly_when_scores_differ(served_repository: tuple[Path, str]) -> None:
    config_path, base_url = served_repository
    result = compare(
        "--query",
        "hello",
        "--document",
        "welcome",
        "--document",
        "farewell",
        "--base_url",
        base_url,
        "--config_path",
        str(config_path),
        "--tolerance",
        "0",
    )
    largest = float(re.search(r"^Largest absolute difference: (\S+)", result.stdout, re.MULTILINE).group(1))
    assert result.returncode == (1 if largest > 0 else 0), result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == ("FAIL" if largest > 0 else "PASS")


def test_server_down_is_a_clear_error() -> None:
    result = compare(
        "--query",
        "hello",
        "--document",
        "welcome",
        "--base_url",
        f"http://127.0.0.1:{free_port()}/v3",
        "--hf_model",
        "unused",
    )
    assert result.returncode == 2
    assert "cannot reach the server" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_is_a_clear_error(served_repository: tuple[Path, str]) -> None:
    config_path, base_url = served_repository
    result = compare(
        "--query",
        "hello",
        "--document",
        "welcome",
        "--base_url",
        base_url,
        "--config_path",
        str(config_path),
        "--model_name",
        "no/such-model",
    )
    assert result.returncode == 2
    assert "'no/such-model' is not served" in result.stderr and RERANKER in result.stderr
    assert "Traceback" not in result.stderr


def test_unloadable_reference_is_a_clear_error(served_repository: tuple[Path, str], tmp_path: Path) -> None:
    config_path, base_url = served_repository
    result = compare(
        "--query",
        "hello",
        "--document",
        "welcome",
        "--base_url",
        base_url,
        "--config_path",
        str(config_path),
        "--hf_model",
        str(tmp_path / "missing-model"),
    )
    assert result.returncode == 2
    assert "cannot load the reference model" in result.stderr
    assert "Traceback" not in result.stderr
