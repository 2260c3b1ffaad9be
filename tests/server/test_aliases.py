"""Short names: `--alias` at export, aliases.json beside config.json, requests and /v3/models by alias.

config.json keeps only the keys OpenVINO Model Server accepts (its schema refuses any other), so a
repository with aliases still loads there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from serving.repository.config import ConfigError, read_config

from .api_families import (
    AUTH,
    CROSS,
    CROSS_ALIASES,
    EMBEDDER,
    EMBEDDER_ALIAS,
    XLMR,
    XLMR_ALIASES,
    ApiServer,
    api_server,
)

__all__ = ["api_server"]  # the shared server fixture, imported for pytest

OVMS_MEDIAPIPE_KEYS = {"name", "base_path", "graph_path", "subconfig"}  # OVMS's schema, nothing else


@pytest.fixture(scope="module")
def http(api_server: ApiServer) -> httpx.Client:
    with httpx.Client(base_url=api_server.url, headers=AUTH, timeout=60) as client:
        yield client


def test_export_writes_its_alias_beside_config_json(api_server: ApiServer) -> None:
    aliases = json.loads((api_server.repo / "aliases.json").read_text())["aliases"]
    # The export replaced the model's earlier alias and kept the other models' ones.
    assert aliases == {CROSS: CROSS_ALIASES, XLMR: XLMR_ALIASES, EMBEDDER: [EMBEDDER_ALIAS]}
    config = json.loads(api_server.config_path.read_text())
    for entry in config["mediapipe_config_list"]:
        assert set(entry) <= OVMS_MEDIAPIPE_KEYS, entry


def test_models_list_their_aliases(http: httpx.Client) -> None:
    models = {m["id"]: m for m in http.get("/v3/models").json()["data"]}
    assert models[CROSS]["aliases"] == CROSS_ALIASES
    assert models[EMBEDDER]["aliases"] == [EMBEDDER_ALIAS]
    assert "old-name" not in json.dumps(models)


def test_a_request_by_alias_answers_as_the_model(http: httpx.Client) -> None:
    request = {"query": "what is panda?", "documents": ["hi", "The giant panda is a bear."]}
    by_name = http.post("/v3/rerank", json={"model": CROSS, **request})
    by_alias = http.post("/v3/rerank", json={"model": CROSS_ALIASES[0], **request})
    assert by_name.status_code == by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["results"] == by_name.json()["results"]
    assert by_alias.headers["x-model-version"] == by_name.headers["x-model-version"]
    unknown = http.post("/v3/rerank", json={"model": "old-name", **request})
    assert unknown.status_code == 404, unknown.text


def test_an_alias_taken_by_another_model_is_refused_at_export(
    api_server: ApiServer, minilm_source: Path, run_export: Callable
) -> None:
    before = {p.name: p.read_bytes() for p in api_server.repo.glob("*.json")}
    result = run_export(
        "embeddings", minilm_source, api_server.repo, "--alias", XLMR_ALIASES[0], model_name="another"
    )
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"'{XLMR_ALIASES[0]}'" in last_line and f"'{XLMR}'" in last_line, result.stderr
    assert {p.name: p.read_bytes() for p in api_server.repo.glob("*.json")} == before
    assert not (api_server.repo / "another").exists()


def test_the_server_refuses_an_alias_given_to_two_models(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mediapipe_config_list": [{"name": "a"}, {"name": "b"}]}))
    (tmp_path / "aliases.json").write_text(json.dumps({"aliases": {"a": ["short"], "b": ["short"]}}))
    with pytest.raises(ConfigError, match="alias 'short' of 'b' is also an alias of 'a'"):
        read_config(config)
    (tmp_path / "aliases.json").write_text(json.dumps({"aliases": {"a": ["b"]}}))
    with pytest.raises(ConfigError, match="alias 'b' of 'a' is also the name of 'b'"):
        read_config(config)
    (tmp_path / "aliases.json").write_text(json.dumps({"aliases": {"a": "short"}}))
    with pytest.raises(ConfigError, match="list of non-empty strings"):
        read_config(config)
