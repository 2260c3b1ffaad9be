"""compare_results.py against the real server: PASS, FAIL, and the cases where the check cannot run.

What the tool prints is checked against what the test computes itself: the Hugging Face scores
and embeddings (transformers, sentence-transformers), and the server's answers to the same request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.exports import Exported
from tests.support.references import HFReranker, cosine_distance, sentence_embedder
from tests.support.repository import assemble_repo
from tests.support.server import ServerProcess, embeddings_of, free_port, scores_by_index

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPARE_SCRIPT = REPO_ROOT / "export_models" / "compare_results.py"
PYTHON_SCRIPT = (sys.executable, str(COMPARE_SCRIPT))  # the command the reference demo documents
CONSOLE_SCRIPT = str(Path(sys.executable).parent / "ovtext-compare")
# Two servers, one model per task each (the tool then picks the model of the task by itself):
# served name -> the session's export.
FP32 = {"demo/cross-encoder": ("cross-encoder", "fp32"), "demo/minilm": ("minilm", "fp32")}
REDUCED = {"demo/cross-encoder-fp16": ("cross-encoder", "fp16"), "demo/minilm-int8": ("minilm", "int8")}
pytestmark = [pytest.mark.slow, pytest.mark.exports(*FP32.values(), *REDUCED.values())]
QUERY = "what is the giant panda?"
DOCUMENTS = ["The giant panda is a bear species endemic to China.", "Coffee is a drink brewed from beans."]
# Printed arrays carry float32's 7-8 significant digits.
PRINTED = 1e-6


@dataclass(frozen=True)
class Served:
    config_path: Path
    server: ServerProcess

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v3"

    def args(self, *extra: str) -> list[str]:
        return ["--base_url", self.base_url, "--config_path", str(self.config_path), *extra]

    def scores(self, model: str, query: str, documents: Sequence[str]) -> np.ndarray:
        body = {"model": model, "query": query, "documents": list(documents)}
        return scores_by_index(
            httpx.post(f"{self.base_url}/rerank", json=body, timeout=60).json(), len(documents)
        )

    def embeddings(self, model: str, inputs: Sequence[str]) -> np.ndarray:
        body = {"model": model, "input": list(inputs)}
        return embeddings_of(httpx.post(f"{self.base_url}/embeddings", json=body, timeout=60).json())


def serve(
    models: dict[str, tuple[str, str]], exported: Callable[..., Exported], start_server, folder: Path
) -> Served:
    config_path = assemble_repo(folder / "models", {name: exported(*key) for name, key in models.items()})
    return Served(config_path, start_server(config_path))


@pytest.fixture(scope="module")
def served(
    exported: Callable[..., Exported], start_server: Callable[..., ServerProcess], tmp_path_factory
) -> Served:
    """The fp32 exports: PASS and FAIL."""
    return serve(FP32, exported, start_server, tmp_path_factory.mktemp("compare-fp32"))


@pytest.fixture(scope="module")
def served_reduced(
    exported: Callable[..., Exported], start_server: Callable[..., ServerProcess], tmp_path_factory
) -> Served:
    """fp16 and int8 exports: the default tolerances of the reduced precisions."""
    return serve(REDUCED, exported, start_server, tmp_path_factory.mktemp("compare-reduced"))


@pytest.fixture(scope="module")
def hf(cross_encoder_source: Path) -> HFReranker:
    return HFReranker(cross_encoder_source)


def compare(*args: str, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """The command users run, from the repository root."""
    return subprocess.run(
        [*command, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
        timeout=600,
    )


def input_args(inputs: Sequence[str]) -> list[str]:
    return [arg for text in inputs for arg in ("--input", text)]


EMBEDDING_INPUTS = ["hello", "farewell, and thanks for all the fish"]
# A document whose answer comes after the first 16 tokens of the pair.
CUT_DOCUMENTS = ["Coffee is a drink. The giant panda is a bear species endemic to China.", "a bear"]


@pytest.fixture(scope="module")
def runs(
    served: Served, served_reduced: Served, xlmr_reranker_source: Path, tmp_path_factory
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Every command line of this module, run two at a time (each starts torch and loads a model on one
    core) while the tests compute their own references."""
    missing = tmp_path_factory.mktemp("no-model") / "missing-model"
    down = f"http://127.0.0.1:{free_port()}/v3"
    commands: dict[str, tuple[list[str], Sequence[str]]] = {
        "rerank": ([*rerank_args(), *served.args()], PYTHON_SCRIPT),
        "embeddings": ([*input_args(EMBEDDING_INPUTS), *served.args()], PYTHON_SCRIPT),
        "fp16": ([*rerank_args(), *served_reduced.args()], (CONSOLE_SCRIPT,)),
        "int8": ([*input_args(["hello", "farewell"]), *served_reduced.args()], (CONSOLE_SCRIPT,)),
        "max_length": (
            [*rerank_args(CUT_DOCUMENTS), *served.args("--max_length", "16", "--tolerance", "1")],
            PYTHON_SCRIPT,
        ),
        "other_reference": (
            [*rerank_args(), *served.args("--hf_model", str(xlmr_reranker_source))],
            PYTHON_SCRIPT,
        ),
        "zero_tolerance": ([*rerank_args(), *served.args("--tolerance", "0")], PYTHON_SCRIPT),
        "server_down": (
            ["--query", "hello", "--document", "welcome", "--base_url", down, "--hf_model", "unused"],
            PYTHON_SCRIPT,
        ),
        "unknown_model": ([*rerank_args(), *served.args("--model_name", "no/such-model")], PYTHON_SCRIPT),
        "unloadable_reference": ([*rerank_args(), *served.args("--hf_model", str(missing))], PYTHON_SCRIPT),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            name: pool.submit(compare, *args, command=command) for name, (args, command) in commands.items()
        }


def printed_array(stdout: str, label: str) -> np.ndarray:
    match = re.search(rf"^{re.escape(label)}: \[([^\]]*)\]$", stdout, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{stdout}"
    return np.array([float(value) for value in match.group(1).split()])


def printed_verdict(stdout: str, what: str) -> tuple[float, float, str]:
    """(largest difference, tolerance, PASS or FAIL) as printed."""
    match = re.search(rf"^{what}: (\S+) \(tolerance (\S+)\)\n(PASS|FAIL)$", stdout, re.MULTILINE)
    assert match, f"no '{what}' verdict in:\n{stdout}"
    return float(match.group(1)), float(match.group(2)), match.group(3)


def rerank_args(documents: Sequence[str] = DOCUMENTS, query: str = QUERY) -> list[str]:
    return ["--query", query, *(arg for document in documents for arg in ("--document", document))]


def test_rerank_pass_prints_the_reference_demo_format(runs, served: Served, hf: HFReranker) -> None:
    result = runs["rerank"].result()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # The seed's lines, in the seed's order, then the verdict.
    assert lines[0] == f"query {QUERY}"
    assert lines[1] == f"documents {DOCUMENTS!r}"
    assert re.fullmatch(r"HF Duration: \d+\.\d{3} ms", lines[2])
    assert re.fullmatch(r"Server Duration: \d+\.\d{3} ms", lines[3])
    assert lines[4].startswith("HF reranking: [") and lines[5].startswith("Server reranking: [")
    expected, server = hf.scores(QUERY, DOCUMENTS), served.scores("demo/cross-encoder", QUERY, DOCUMENTS)
    assert np.abs(printed_array(result.stdout, "HF reranking") - expected).max() < PRINTED
    assert np.abs(printed_array(result.stdout, "Server reranking") - server).max() < PRINTED
    largest, tolerance, verdict = printed_verdict(result.stdout, "Largest absolute difference")
    assert largest == pytest.approx(np.abs(expected - server).max(), abs=PRINTED)
    assert (tolerance, verdict) == (1e-3, "PASS")  # the fp32 default


def test_embeddings_pass(runs, served: Served, minilm_source: Path) -> None:
    inputs = EMBEDDING_INPUTS
    result = runs["embeddings"].result()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(sentence-transformers)" in result.stdout  # the model prescribes its pooling: ST is the reference
    distance = cosine_distance(
        sentence_embedder(minilm_source).encode(inputs), served.embeddings("demo/minilm", inputs)
    )
    assert np.abs(printed_array(result.stdout, "Cosine similarity") - (1 - distance)).max() < PRINTED
    largest, tolerance, verdict = printed_verdict(result.stdout, "Largest cosine distance")
    assert largest == pytest.approx(distance.max(), abs=PRINTED)
    assert (tolerance, verdict) == (1e-4, "PASS")


@pytest.mark.parametrize(
    ("run", "what", "tolerance"),
    [("fp16", "Largest absolute difference", 2e-2), ("int8", "Largest cosine distance", 1e-2)],
)
def test_default_tolerance_follows_the_weight_format(runs, run: str, what: str, tolerance: float) -> None:
    """Run as the installed `ovtext-compare`: the export's weight format (read from the repository)
    sets the tolerance, and the fp16 / int8 exports pass it."""
    result = runs[run].result()
    assert result.returncode == 0, result.stdout + result.stderr
    largest, printed_tolerance, verdict = printed_verdict(result.stdout, what)
    # The tolerance printed is the weight format's, read from the repository. How far fp16 weights
    # move the scores depends on the CPU (decompressed to f32, or run in bf16), so no floor on it.
    assert printed_tolerance == tolerance and verdict == "PASS"
    assert largest <= tolerance


def test_max_length_cuts_the_reference_pairs(runs, hf: HFReranker) -> None:
    """--max_length 16: Hugging Face scores the pairs cut to 16 tokens, which leaves the long
    document's answer out (the server still scores the whole document: the tool says why)."""
    documents = CUT_DOCUMENTS
    result = runs["max_length"].result()
    assert result.returncode == 0, result.stdout + result.stderr
    printed = printed_array(result.stdout, "HF reranking")
    assert np.abs(printed - hf.scores(QUERY, documents, max_length=16)).max() < PRINTED
    assert hf.scores(QUERY, documents)[0] - printed[0] > 0.5  # uncut, the document answers the query
    assert "note: documents [0] exceed 16 tokens" in result.stdout


def test_a_different_reference_model_fails(runs, xlmr_reranker_source: Path) -> None:
    result = runs["other_reference"].result()
    assert result.returncode == 1, result.stdout + result.stderr
    expected = HFReranker(xlmr_reranker_source).scores(QUERY, DOCUMENTS)  # the model it was told to use
    assert np.abs(printed_array(result.stdout, "HF reranking") - expected).max() < PRINTED
    assert result.stdout.splitlines()[-1] == "FAIL"


def test_zero_tolerance_passes_only_bit_identical_scores(runs, served: Served, hf: HFReranker) -> None:
    difference = np.abs(
        hf.scores(QUERY, DOCUMENTS) - served.scores("demo/cross-encoder", QUERY, DOCUMENTS)
    ).max()
    assert difference < 1e-5  # fp32: within rounding of torch (bit-identical or not, by CPU and batch)
    result = runs["zero_tolerance"].result()
    printed_difference, tolerance, verdict = printed_verdict(result.stdout, "Largest absolute difference")
    assert tolerance == 0.0 and printed_difference < 1e-5
    # Any difference at all fails (exit 1); only bit-identical float32 scores pass.
    assert (verdict, result.returncode) == (("FAIL", 1) if printed_difference > 0 else ("PASS", 0)), (
        result.stdout + result.stderr
    )


def test_server_down_is_a_clear_error(runs) -> None:
    result = runs["server_down"].result()
    assert result.returncode == 2
    assert "cannot reach the server" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_is_a_clear_error(runs) -> None:
    result = runs["unknown_model"].result()
    assert result.returncode == 2
    assert "'no/such-model' is not served" in result.stderr and "demo/cross-encoder" in result.stderr
    assert "Traceback" not in result.stderr


def test_unloadable_reference_is_a_clear_error(runs) -> None:
    result = runs["unloadable_reference"].result()
    assert result.returncode == 2
    assert "cannot load the reference model" in result.stderr
    assert "Traceback" not in result.stderr
