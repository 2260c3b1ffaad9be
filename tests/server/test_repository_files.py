"""The files the server reads for a model: parsed once until they change, refused over their size
limit, and refused when they resolve outside the repository and the allowed model roots; and no
error quotes a file's content or the server's absolute paths.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openvino as ov
import pytest

from serving.registry import ModelRegistry
from serving.repository.files import SIZE_LIMITS
from serving.repository.layout import ALIASES_FILE, GRAPH_FILE, SUBCONFIG_FILE
from tests.support.exports import Exported
from tests.support.repository import copy_model, write_config
from tests.support.server import ServerProcess, embeddings_of, wait_until

SECRET = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI-fake-secret-K7MDENG"
# A "file" the server must never read: it holds a fake secret, in a form the graph parser chokes on.
SECRET_TEXT = f"{SECRET}\npassword: 'hunter2-fake-secret'\n"
LEAKS = (SECRET, "wJalrXUtnFEMI", "hunter2")


def pad_graph(folder: Path, size: int) -> None:
    """graph.pbtxt grown to `size` bytes with a comment: still the same, valid graph."""
    path = folder / GRAPH_FILE
    text = path.read_text()
    path.write_text(text + "#" + "x" * (size - len(text.encode()) - 2) + "\n")
    assert path.stat().st_size == size


def settle(*paths: Path) -> None:
    """Modification times a minute back: files written just now are parsed again until their
    timestamps are old enough to tell a later write apart (RepositoryFiles' racy check)."""
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))


def pad_json(path: Path, size: int) -> None:
    """A JSON file grown to `size` bytes with trailing spaces: still the same, valid JSON."""
    text = path.read_text()
    path.write_text(text + " " * (size - len(text.encode())))


# ---- parsed once --------------------------------------------------------------------------------


def test_big_legal_files_are_parsed_once_until_they_change(
    exported: Callable[..., Exported], tmp_path
) -> None:
    root = tmp_path / "models"
    folder = copy_model(exported("minilm"), root, "big")
    pad_graph(folder, SIZE_LIMITS["graph.pbtxt"] - 1000)  # just under the limits: legal
    pad_json(folder / SUBCONFIG_FILE, SIZE_LIMITS["subconfig.json"] - 1000)
    aliases = {"big": [f"alias-{i}" for i in range(150_000)]}  # about 2 MB
    (root / ALIASES_FILE).write_text(json.dumps({"aliases": aliases}))
    config = write_config(root, ["big"])
    settle(config, root / ALIASES_FILE, folder / GRAPH_FILE, folder / SUBCONFIG_FILE)
    registry = ModelRegistry(config, poll_interval=3600, settle_seconds=0, core=ov.Core())
    try:
        registry.reload(force=True)
        assert registry.is_model_ready("big") and registry.canonical("alias-149999") == "big"
        # config.json, aliases.json, graph.pbtxt, subconfig.json: each parsed once.
        assert registry.files.parses == 4
        for _ in range(5):
            registry.reload()
        assert registry.files.parses == 4
        aliases["big"].append("one-more")
        (root / ALIASES_FILE).write_text(json.dumps({"aliases": aliases}))
        settle(root / ALIASES_FILE)
        registry.reload()
        assert registry.files.parses == 5 and registry.canonical("one-more") == "big"
    finally:
        registry.stop()


# ---- a server with files too big and files outside the repository ------------------------------

GOOD = "good/minilm"
ALLOWED = "allowed/minilm"


@pytest.fixture(scope="module")
def layout(exported: Callable[..., Exported], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A repository whose models try every way out, and a folder outside it holding a secret."""
    top = tmp_path_factory.mktemp("files")
    root, outside, elsewhere = top / "models", top / "outside", top / "elsewhere"
    minilm = exported("minilm")
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET_TEXT)
    (outside / GRAPH_FILE).write_text(SECRET_TEXT)
    copy_model(minilm, root, GOOD)
    copy_model(minilm, elsewhere, ALLOWED)  # served through --allowed_model_root
    pad_graph(copy_model(minilm, root, "big-graph"), SIZE_LIMITS["graph.pbtxt"] + 1)
    pad_json(copy_model(minilm, root, "big-subconfig") / SUBCONFIG_FILE, 2 * SIZE_LIMITS["subconfig.json"])
    linked = copy_model(minilm, root, "linked-graph")
    (linked / GRAPH_FILE).unlink()
    (linked / GRAPH_FILE).symlink_to(outside / "secret.txt")
    # A version folder linked outside: the IR files would be read from there.
    linked_version = copy_model(minilm, root, "linked-version")
    shutil.move(linked_version / "embeddings" / "1", outside / "version-1")
    (linked_version / "embeddings" / "1").symlink_to(outside / "version-1")
    # A ConfigMap-style link inside the repository stays allowed: it resolves inside.
    copy_model(minilm, root, "..data/minilm")
    (root / "configmap").symlink_to(root / "..data" / "minilm")
    write_config(
        root,
        [
            GOOD,
            "big-graph",
            "big-subconfig",
            "linked-graph",
            "linked-version",
            "etc",
            "escape",
            "configmap",
            ALLOWED,
        ],
        base_paths={"etc": "/etc", "escape": "../outside", ALLOWED: str(elsewhere / ALLOWED)},
    )
    # config.json as a Kubernetes ConfigMap mounts it: a link into `..data` (the repository is
    # still the folder the link is in).
    (root / "config.json").rename(root / "..data" / "config.json")
    (root / "config.json").symlink_to(Path("..data") / "config.json")
    return {"root": root, "outside": outside, "elsewhere": elsewhere}


@pytest.fixture(scope="module")
def http(layout: dict[str, Path], start_server: Callable[..., ServerProcess]) -> Iterator[httpx.Client]:
    server = start_server(
        layout["root"] / "config.json",
        "--poll_interval",
        "0.2",
        "--allowed_model_root",
        str(layout["elsewhere"]),
    )
    server.wait_ready(models=[GOOD, ALLOWED, "configmap"])
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def error_of(http: httpx.Client, name: str) -> str:
    """The model's configuration error, or its version's load error, from /v1/config."""
    entry = http.get("/v1/config").json()[name]
    if "error" in entry:
        return entry["error"]
    return next(
        s["status"]["error_message"]
        for s in entry["model_version_status"]
        if s["status"]["error_code"] != "OK"
    )


def assert_discreet(message: str, layout: dict[str, Path]) -> None:
    """No secret, and no absolute path of the server's."""
    for leak in (*LEAKS, str(layout["root"]), str(layout["outside"]), "/tmp/"):
        assert leak not in message, (leak, message)


def embed(http: httpx.Client, model: str) -> httpx.Response:
    return http.post("/v3/embeddings", json={"model": model, "input": ["a short text"]})


def test_files_over_their_limit_are_refused_with_the_reason(http: httpx.Client, layout) -> None:
    graph = wait_until(lambda: http.get("/v1/config").json()["big-graph"].get("error"))
    assert graph.startswith("big-graph/graph.pbtxt: ") and "over the 1.0 MiB limit" in graph, graph
    subconfig = error_of(http, "big-subconfig")
    assert subconfig.startswith("big-subconfig/subconfig.json: 2.0 MiB, over the 1.0 MiB limit"), subconfig
    assert embed(http, "big-graph").status_code == 503
    response = embed(http, GOOD)
    assert response.status_code == 200 and embeddings_of(response.json()).shape == (1, 384)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("etc", "config.json: mediapipe_config_list[5]: base_path"),
        ("escape", "config.json: mediapipe_config_list[6]: base_path"),
        ("linked-graph", "config.json: mediapipe_config_list[3]: graph_path 'linked-graph/graph.pbtxt'"),
        ("linked-version", "linked-version/embeddings/1/model.xml: resolves outside"),
    ],
)
def test_files_outside_the_repository_are_refused_without_quoting_them(
    http: httpx.Client, layout: dict[str, Path], name: str, named: str
) -> None:
    message = wait_until(lambda: error_of(http, name) if name in http.get("/v1/config").json() else None)
    assert message.startswith(named) and "resolves outside the model repository" in message, message
    assert_discreet(message, layout)
    assert embed(http, name).status_code == 503


def test_allowed_roots_and_links_inside_the_repository_serve(http: httpx.Client) -> None:
    for name in (ALLOWED, "configmap", GOOD):
        response = embed(http, name)
        assert response.status_code == 200, response.text


def test_a_parse_error_names_line_and_kind_never_the_text(layout: dict[str, Path], tmp_path: Path) -> None:
    from serving.repository.config import ConfigError, parse_graph

    graph = tmp_path / GRAPH_FILE
    graph.write_text(SECRET_TEXT)
    with pytest.raises(ConfigError) as raised:
        parse_graph(graph)
    assert str(raised.value).startswith("graph.pbtxt: line 1, column ")
    assert_discreet(str(raised.value), layout)
