"""Fuzzing every documented route from the OpenAPI schema (schemathesis against the real server),
and hostile bodies schemathesis does not make on every model route: document objects nested deep or
holding huge integers, control characters in every string field.

A fixed seed and example count keep `make test` short and repeatable; `make stress` runs the same
with many more examples. Every check schemathesis has that applies to a stateless API: no 5xx, every
status code, content type, header and body as the schema documents them, bad data refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.http.routes.cohere import EMBED_PATHS, RERANK_PATHS
from serving.http.routes.openai import EMBEDDINGS_PATHS

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


@pytest.fixture(scope="module")
def server(
    exported_models: dict[str, ExportedModel], tmp_path_factory, start_server: Callable[..., ServerProcess]
) -> ServerProcess:
    repo = tmp_path_factory.mktemp("fuzz") / "models"
    repo.mkdir()
    for name in ("test/xlmr", "test/minilm"):
        add_model(repo, exported_models[name])
    write_config(repo, ["test/xlmr", "test/minilm"])
    return start_server(repo / "config.json")


def test_every_route_survives_schema_fuzzing(server: ServerProcess, tmp_path: Path) -> None:
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


# ---- hostile bodies on every model route ------------------------------------------------------

RERANKER, EMBEDDER = "test/xlmr", "test/minilm"
TEI_RERANK = {"model": RERANKER, "query": "q", "texts": ["a", "b"], "return_text": True}
TEI_EMBED = {"model": EMBEDDER, "inputs": ["a"], "truncation_direction": "Left"}
TEI_SIMILARITY = {"model": EMBEDDER, "inputs": {"source_sentence": "a", "sentences": ["b"]}}
# A valid body for every POST route (each alias path too), the start of every hostile variant.
VALID_BODIES: list[tuple[str, dict[str, Any]]] = [
    *[(path, {"model": RERANKER, "query": "q", "documents": ["d", {"text": "t", "k": "v"}],
              "return_documents": True, "rank_fields": ["text", "k"]})
      for path in RERANK_PATHS],
    *[(path, {"model": EMBEDDER, "input": ["a", "b"], "user": "u", "input_type": "query"})
      for path in EMBEDDINGS_PATHS],
    *[(path, {"model": EMBEDDER, "texts": ["a"], "input_type": "search_query", "truncate": "END"})
      for path in EMBED_PATHS],
    ("/rerank", TEI_RERANK), ("/embed", TEI_EMBED), ("/similarity", TEI_SIMILARITY),
    *[(path, body) for path in ("/", "/invocations") for body in (TEI_RERANK, TEI_EMBED, TEI_SIMILARITY)],
    (f"/{RERANKER}/post", {"text_pairs": [["q", "d"], ["q", "e"]]}),
]  # fmt: skip
CONTROL_STRINGS = [
    "a\x00b",
    "line\nforged\r\nline",
    "\x1b[31mred\x1b[0m\x07",
    "\u202e\u2028\x7f\x85",
    "\ud800",
]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def string_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The path (keys and indexes) of every string in `value`, keys of objects included as ('key', k)."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, ("key", key))
            yield from string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, (*path, index))


def replaced(value: Any, path: tuple, text: str) -> Any:
    """`value` with the string (or the object key) at `path` replaced by `text`."""
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(head, tuple):  # an object key
        return {(text if key == head[1] else key): item for key, item in value.items()}
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = replaced(value[head], rest, text)
    return copy


def hostile_variants(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path in string_paths(body):
        for text in CONTROL_STRINGS:
            yield replaced(body, path, text)
    for extra in (10**30, -(10**30), nested(300), nested(900), {"a": nested(40)}):
        yield {**body, "extra": extra}
        for field in ("documents", "texts", "input", "inputs"):
            if isinstance(body.get(field), list):
                yield {**body, field: [*body[field], {"text": "a", "n": extra}]}
                yield {**body, field: [*body[field], extra]}
    for field in body:
        yield {**body, field: 10**30}
        yield {**body, field: nested(900)}


def test_hostile_bodies_on_every_model_route_are_client_errors(server: ServerProcess) -> None:
    """No 5xx, no traceback and no raw control character in the log, whatever the body holds."""
    failures = []
    sent = 0
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for path, body in VALID_BODIES:
            assert client.post(path, json=body).status_code == 200, (path, body)
            for variant in hostile_variants(body):
                # json.dumps writes a lone surrogate as the escape a client would send.
                response = client.post(
                    path, content=json.dumps(variant), headers={"Content-Type": "application/json"}
                )
                sent += 1
                if response.status_code >= 500:
                    failures.append(
                        (path, json.dumps(variant)[:200], response.status_code, response.text[:200])
                    )
    summary(f"hostile bodies: {sent} requests on {len(VALID_BODIES)} route bodies, {len(failures)} 5xx")
    assert not failures, failures[:10]
    log = server.log()
    assert "Traceback" not in log
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", log), "a raw control character reached the log"
