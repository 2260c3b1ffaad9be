"""Fuzzing every documented route from the OpenAPI schema (schemathesis against the real server).

A fixed seed and example count keep `make test` short and repeatable; `make stress` runs the same
with many more examples. Every check schemathesis has that applies to a stateless API: no 5xx, every
status code, content type, header and body as the schema documents them, bad data refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from .conftest import ExportedModel, ServerProcess, add_model, write_config
from .stress_summary import summary

# The checks that do not apply: no resources are created, and no auth is configured here.
EXCLUDED_CHECKS = "positive_data_acceptance,ignored_auth,ensure_resource_availability,use_after_free"
EXAMPLES = int(os.environ.get("OVTEXT_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("OVTEXT_FUZZ_SEED", "20261130"))


def run_schemathesis(url: str, examples: int, seed: int, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
        "--max-examples", str(examples), "--seed", str(seed),
        "--generation-database", "none", "--workers", "1", "--no-color",
        "--report", "junit", "--report-junit-path", str(report),
    ]  # fmt: skip
    # Run in the report's folder: schemathesis keeps a cache in its working directory.
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=1200, cwd=report.parent
    )


def test_every_route_survives_schema_fuzzing(
    exported_models: dict[str, ExportedModel], tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    repo = tmp_path / "models"
    repo.mkdir()
    for name in ("test/xlmr", "test/minilm"):
        add_model(repo, exported_models[name])
    write_config(repo, ["test/xlmr", "test/minilm"])
    server = start_server(repo / "config.json")
    completed = run_schemathesis(server.url, EXAMPLES, SEED, tmp_path / "fuzz.xml")
    counted = re.search(r"(\d+) generated, (\d+) passed", completed.stdout)
    generated = counted.group(0) if counted else "no count"
    summary(f"fuzzing: {generated} ({EXAMPLES} examples per route, seed {SEED}); exit {completed.returncode}")
    assert completed.returncode == 0, completed.stdout[-6000:]
    assert "passed" in completed.stdout and " failures" not in completed.stdout
    # Alive and still right after the fuzzing.
    answer = httpx.post(
        f"{server.url}/v3/rerank",
        json={"model": "test/xlmr", "query": "q", "documents": ["a", "b"]},
        timeout=60,
    )
    assert answer.status_code == 200 and len(answer.json()["results"]) == 2
    assert "Traceback" not in server.log()
