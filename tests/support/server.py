"""Servers the tests start (tools/server_process.py), and what tests read from them."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tools.server_process import MODULE_COMMAND, REPO_ROOT, ServerProcess, free_port  # noqa: F401  (used from here)

CONSOLE_SCRIPT_COMMAND = (str(Path(sys.executable).parent / "ovtext-serve"),)


class ServerGroup:
    """Servers started by one fixture; `stop_all` stops them and tells which did not exit cleanly."""

    def __init__(self, log_dir: Callable[[], Path]) -> None:
        self._log_dir = log_dir
        self.started: list[ServerProcess] = []

    def start(
        self, config_path: Path, *extra_args: str, wait: bool = True, command: Sequence[str] = MODULE_COMMAND
    ) -> ServerProcess:
        server = ServerProcess(config_path, self._log_dir() / "server.log", *extra_args, command=command)
        self.started.append(server)
        if wait:
            server.wait_ready()
        return server

    def stop_all(self) -> list[str]:
        problems = []
        for server in self.started:
            code = server.stop()
            if code not in (0, -15):  # -15: uvicorn re-raises SIGTERM after its clean shutdown
                problems.append(f"server on port {server.port} exited with {code}:\n{server.log()[-3000:]}")
        return problems


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
    """relevance_score of each document, in request order (NaN where a result is missing)."""
    scores = np.full(count, np.nan)
    for result in response["results"]:
        scores[result["index"]] = result["relevance_score"]
    return scores


def embeddings_of(response: dict[str, Any]) -> np.ndarray:
    """The vectors of an embeddings response (float encoding), in input order."""
    data = sorted(response["data"], key=lambda item: item["index"])
    return np.array([item["embedding"] for item in data], dtype=np.float64)


def metric_samples(text: str, metric: str, **labels: str) -> list[float]:
    """Values of the samples of `metric` in a /metrics scrape that carry all `labels`."""
    values = []
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name == metric and all(f'{key}="{value}"' in rest for key, value in labels.items()):
            values.append(float(line.rsplit(" ", 1)[1]))
    return values


def metric_value(text: str, metric: str, **labels: str) -> float:
    """The one sample of `metric` with these labels; 0 when the series does not exist yet."""
    values = metric_samples(text, metric, **labels)
    assert len(values) <= 1, f"{metric} {labels}: {len(values)} samples"
    return values[0] if values else 0.0
