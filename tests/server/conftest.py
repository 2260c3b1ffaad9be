"""Server tests: real exports of the shared fixture models, served by the real server process.

Each model is exported once per session (two exports at a time) into its own staging
repository with the shared `run_export` fixture; test repositories are assembled from those
folders. Servers run as `python -m serving ...` subprocesses on free loopback ports.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from serving.pipelines.scoring import relevance_logits
from serving.repository.layout import TOKENIZER_DIR, Task

REPO_ROOT = Path(__file__).resolve().parents[2]

# name in the test repositories -> (task, source fixture, extra export arguments)
EXPORTS: dict[str, tuple[Task, str, tuple[str, ...]]] = {
    "test/cross-encoder": (Task.RERANK, "cross_encoder_source", ()),
    "test/xlmr": (Task.RERANK, "xlmr_reranker_source", ()),
    "test/xlmr-few-chunks": (Task.RERANK, "xlmr_reranker_source", ("--max_allowed_chunks", "3")),
    "test/minilm": (Task.EMBEDDINGS, "minilm_source", ()),
    "test/minilm-truncate": (Task.EMBEDDINGS, "minilm_source", ("--truncate",)),
}


@dataclass(frozen=True)
class ExportedModel:
    name: str
    task: Task
    folder: Path  # <staging repo>/<name>: graph.pbtxt, subconfig.json, tokenizer/1, <task>/1
    source: Path

    def version_dirs(self, version: int = 1) -> tuple[Path, Path]:
        return self.folder / TOKENIZER_DIR / str(version), self.folder / self.task.model_dir / str(version)


@pytest.fixture(scope="session")
def exported_models(
    request: pytest.FixtureRequest, run_export: Callable[..., subprocess.CompletedProcess], tmp_path_factory
) -> dict[str, ExportedModel]:
    """Every model of EXPORTS exported (fp32) with export_models/export_model.py."""
    sources = {name: Path(request.getfixturevalue(fixture)) for name, (_, fixture, _) in EXPORTS.items()}
    staging = tmp_path_factory.mktemp("staging")

    def export(name: str) -> ExportedModel:
        task, _, extra = EXPORTS[name]
        repo = staging / name.replace("/", "_")
        done = run_export(task.value, sources[name], repo, *extra, model_name=name, weight_format="fp32")
        if done.returncode != 0:
            raise RuntimeError(f"export of {name} failed:\n{done.stdout}\n{done.stderr}")
        return ExportedModel(name=name, task=task, folder=repo / name, source=sources[name])

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(EXPORTS, pool.map(export, EXPORTS), strict=True))


def write_config(repo: Path, names: list[str]) -> None:
    """config.json as the export writes it (OVMS mediapipe_config_list), written atomically."""
    config = {"model_config_list": [], "mediapipe_config_list": [{"name": n, "base_path": n} for n in names]}
    temporary = repo / "config.json.tmp"
    temporary.write_text(json.dumps(config, indent=2))
    temporary.replace(repo / "config.json")


def add_model(repo: Path, exported: ExportedModel, name: str | None = None) -> Path:
    """Copy an exported model folder into `repo` (under `name`); returns the new folder."""
    target = repo / (name or exported.name)
    shutil.copytree(exported.folder, target)
    return target


def assemble_repo(root: Path, models: list[ExportedModel]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for model in models:
        add_model(root, model)
    write_config(root, [m.name for m in models])
    return root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`python -m serving` on a free loopback port, its output in a log file."""

    def __init__(self, config_path: Path, log_path: Path, *extra_args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [
            sys.executable, "-m", "serving",
            "--config_path", str(config_path),
            "--rest_port", str(self.port),
            "--host", "127.0.0.1",
            *extra_args,
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


@pytest.fixture(scope="session")
def start_server(tmp_path_factory) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers (stopped at the end of the session)."""
    started: list[ServerProcess] = []

    def start(config_path: Path, *extra_args: str) -> ServerProcess:
        log_path = tmp_path_factory.mktemp("server-log") / "server.log"
        server = ServerProcess(config_path, log_path, *extra_args)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    problems = []
    for server in started:
        code = server.stop()
        if code not in (0, -15):  # -15: uvicorn re-raises SIGTERM after its clean shutdown
            problems.append(f"server on port {server.port} exited with {code}:\n{server.log()[-3000:]}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def main_repo(exported_models: dict[str, ExportedModel], tmp_path_factory) -> Path:
    return assemble_repo(tmp_path_factory.mktemp("main") / "models", list(exported_models.values()))


@pytest.fixture(scope="session")
def server(main_repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """The server the read-only tests share: every exported model, default limits."""
    return start_server(main_repo / "config.json")


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


def wait_until(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def version_states(status: dict[str, Any], name: str) -> dict[int, tuple[str, str, str]]:
    """{version: (state, error_code, error_message)} of one model in GET /v1/config."""
    entries = status.get(name, {}).get("model_version_status", [])
    return {
        int(e["version"]): (e["state"], e["status"]["error_code"], e["status"]["error_message"])
        for e in entries
    }


def scores_by_index(response: dict[str, Any], count: int) -> np.ndarray:
    scores = np.full(count, np.nan)
    for result in response["results"]:
        scores[result["index"]] = result["relevance_score"]
    return scores


# ---- Hugging Face references (tests may use torch; the server may not) ----------------------


class HFReranker:
    def __init__(self, source: Path) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModelForSequenceClassification.from_pretrained(source).eval()

    def _logits(self, batch: Any) -> np.ndarray:
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.model.config.type_vocab_size == 1:
            inputs.pop("token_type_ids", None)  # XLM-R: one token type
        with self.torch.no_grad():
            return relevance_logits(self.model(**inputs).logits.double().numpy())  # 1 or 2 labels

    def chunk_windows(self, query: str, document: str, max_length: int) -> Any:
        """Hugging Face's own chunking: the query in every window, the document split (stride 0)."""
        return self.tokenizer(
            [query], [document], truncation="only_second", max_length=max_length, stride=0,
            return_overflowing_tokens=True, padding=True, return_tensors="pt",
        )  # fmt: skip

    def window_logits(self, query: str, document: str, max_length: int) -> np.ndarray:
        return self._logits(self.chunk_windows(query, document, max_length))

    def logits(self, query: str, documents: list[str]) -> np.ndarray:
        return self._logits(
            self.tokenizer([query] * len(documents), documents, padding=True, return_tensors="pt")
        )

    def scores(self, query: str, documents: list[str]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(query, documents)))

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="session")
def hf_rerankers(exported_models: dict[str, ExportedModel]) -> dict[str, HFReranker]:
    return {
        name: HFReranker(model.source)
        for name, model in exported_models.items()
        if model.task is Task.RERANK and name in ("test/cross-encoder", "test/xlmr")
    }


@pytest.fixture(scope="session")
def sentence_transformer(minilm_source: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_source), device="cpu")
