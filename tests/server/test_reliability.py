"""The server-side defects of the reliability review, each proven on a real server: costs checked
before the work, client input that used to give a 500, non-finite model output, a served version
whose files change or fail to reload, unreadable configuration files, messages without the
server's paths."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from serving.repository.layout import GRAPH_FILE, MODEL_BIN, MODEL_XML, TOKENIZER_DIR

from .conftest import ExportedModel, ServerProcess, add_model, version_states, wait_until, write_config

NAN_MODEL = "broken/nan-reranker"
CROSS = "test/cross-encoder"
MINILM = "test/minilm"
# A document with the trigger word twice makes the NaN model's logit sqrt(1.5 - 2).
TRIGGER = "zebra"


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def trigger_id(tokenizer_xml: Path) -> int:
    from serving.pipelines.blocking import run_blocking
    from serving.pipelines.tokenize import Tokenizer

    core = ov.Core()
    tokenizer = Tokenizer(core, core.read_model(tokenizer_xml), "test")
    ids = run_blocking(tokenizer.tokenize([TRIGGER])).row(0)
    tokenizer.close()
    assert len(ids) == 1, ids
    return int(ids[0])


def write_nan_reranker(folder: Path, token_id: int) -> None:
    """A one-logit 'reranker' IR that computes sqrt(1.5 - count(token_id)): NaN past one occurrence."""
    input_ids = ops.parameter([-1, -1], ov.Type.i64, name="input_ids")
    attention_mask = ops.parameter([-1, -1], ov.Type.i64, name="attention_mask")
    hits = ops.convert(ops.equal(input_ids, ops.constant(np.int64(token_id))), ov.Type.f32)
    count = ops.reduce_sum(hits, ops.constant(np.array([1], dtype=np.int64)), keep_dims=True)
    masked = ops.multiply(ops.convert(attention_mask, ov.Type.f32), ops.constant(np.float32(0.0)))
    zero = ops.reduce_sum(masked, ops.constant(np.array([1], dtype=np.int64)), keep_dims=True)
    logit = ops.add(ops.sqrt(ops.subtract(ops.constant(np.float32(1.5)), count)), zero)
    logit.output(0).set_names({"logits"})
    model = ov.Model([logit], [input_ids, attention_mask], "nan-reranker")
    for name in (MODEL_XML, MODEL_BIN):
        (folder / name).unlink()
    ov.save_model(model, folder / MODEL_XML, compress_to_fp16=False)


@pytest.fixture(scope="module")
def repo(exported_models: dict[str, ExportedModel], tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability") / "models"
    root.mkdir()
    add_model(root, exported_models[CROSS])
    add_model(root, exported_models[MINILM])
    # The BERT vocabulary has "zebra" as one token, which no warm-up text contains.
    nan_folder = add_model(root, exported_models[CROSS], NAN_MODEL)
    write_nan_reranker(nan_folder / "rerank" / "1", trigger_id(nan_folder / TOKENIZER_DIR / "1" / MODEL_XML))
    write_config(root, [CROSS, MINILM, NAN_MODEL])
    return root


@pytest.fixture(scope="module")
def live(repo: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(repo / "config.json", "--poll_interval", "0.3")


@pytest.fixture(scope="module")
def http(live: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=120) as client:
        yield client


def test_a_request_far_over_the_chunk_limit_is_refused_before_the_work(
    live: ServerProcess, http: httpx.Client
) -> None:
    """1000 punctuation documents and a long query (9.9 MB): once +500 MB and 2 s before the 400."""
    http.post("/v3/rerank", json={"model": CROSS, "query": "warm", "documents": ["up"]})
    before = peak_rss_kb(live.process.pid)
    body = {"model": CROSS, "query": " ".join(["panda"] * 498), "documents": ["!" * 9_900] * 1000}
    response = http.post("/v3/rerank", json=body)
    assert response.status_code == 400, response.text
    assert "max_allowed_chunks" in response.json()["error"]
    grown_mb = (peak_rss_kb(live.process.pid) - before) / 1024
    assert grown_mb < 150, f"peak memory grew by {grown_mb:.0f} MB for a request refused by its counts"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v3/rerank",
            {"model": CROSS, "query": "q", "documents": ["d"], "max_chunks_per_doc": 10**30},
            "max_chunks",
        ),
        ("/v3/rerank", {"model": CROSS, "query": "q", "documents": ["d"], "top_n": 10**30}, "top_n"),
        (
            "/v3/rerank",
            {"model": CROSS, "query": "q", "documents": ["d"], "max_tokens_per_doc": -(10**30)},
            "max_tok",
        ),
        ("/v3/embeddings", {"model": MINILM, "input": [[1, 10**30]]}, "input"),
        ("/v3/embeddings", {"model": MINILM, "input": [10**30]}, "input"),
        ("/v3/embeddings", {"model": MINILM, "input": [[-5]]}, "input"),
        ("/v3/embeddings", {"model": MINILM, "input": "x", "dimensions": 10**30}, "dimensions"),
    ],
)
def test_huge_integers_are_a_400(http: httpx.Client, path: str, body: dict, field: str) -> None:
    response = http.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(field)


def test_lone_surrogates_are_echoed_as_replacement_characters(http: httpx.Client) -> None:
    # json.dumps writes "\ud800" as the escape a client would send.
    unknown = http.post(
        "/v3/rerank", content=json.dumps({"model": "a\ud800b", "query": "q", "documents": ["d"]})
    )
    assert unknown.status_code == 404
    assert "a\ufffdb" in unknown.json()["error"]
    body = {"model": CROSS, "query": "q", "documents": ["x\ud800y", "plain"], "return_documents": True}
    answered = http.post("/v3/rerank", content=json.dumps(body))
    assert answered.status_code == 200, answered.text
    texts = {r["index"]: r["document"]["text"] for r in answered.json()["results"]}
    assert texts == {0: "x\ufffdy", 1: "plain"}
    # pydantic refuses a lone surrogate in a plain string field: a client error all the same.
    query = http.post("/v3/rerank", content=json.dumps({**body, "query": "q\udc00"}))
    assert query.status_code == 400 and query.json()["error"].startswith("query")


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/v1/rerank", "/v3/rerank"])
@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ('"n": 123456789012345678901234567890', "integer beyond 64 bits"),
        ('"n": -9223372036854775809', "integer beyond 64 bits"),
        (f'"n": {nested_list(300)}', "levels deep"),
        (f'"n": {nested_list(900)}', "levels deep"),
        ('"n": ' + '{"a": ' * 40 + "1" + "}" * 40, "levels deep"),
    ],
)
def test_a_document_object_that_cannot_be_echoed_is_a_400_naming_it(
    live: ServerProcess, http: httpx.Client, path: str, extra: str, reason: str
) -> None:
    """/v1/rerank echoes documents by default: an object the encoder cannot write was a 500."""
    body = f'{{"model": "{CROSS}", "query": "q", "documents": ["fine", {{"text": "a", {extra}}}]}}'
    response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("documents: item 1") and reason in response.json()["error"]
    assert "Traceback" not in live.log()


def test_what_a_document_object_may_hold_is_echoed(http: httpx.Client) -> None:
    document = {"text": "a", "n": 2**63 - 1, "low": -(2**63), "deep": [[[[{"k": [1, 2.5, None]}]]]]}
    response = http.post("/v1/rerank", json={"model": CROSS, "query": "q", "documents": [document]})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["document"] == document


@pytest.mark.parametrize("path", ["/", "/invocations", "/v3/rerank", "/v3/embeddings", "/embed"])
def test_json_nested_past_the_parser_is_a_client_error(
    live: ServerProcess, http: httpx.Client, path: str
) -> None:
    for body in (f'{{"inputs": {nested_list(5000)}}}', f'{{"texts": ["a"], "query": {nested_list(5000)}}}'):
        response = http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        assert "RecursionError" not in response.text
    assert "Traceback" not in live.log()


def test_client_text_reaches_the_log_escaped_and_bounded(live: ServerProcess, http: httpx.Client) -> None:
    forged = "x\n2026-01-01 00:00:00,000 INFO serving.http: forged line\x1b[31m\x00"
    for name in (forged, "m" * 1_000_000):
        response = http.post("/v3/rerank", json={"model": name, "query": "q", "documents": ["d"]})
        assert response.status_code == 404
    log = live.log()
    assert "forged line" in log and "\x1b" not in log and "\x00" not in log
    assert not any(line.startswith("2026-01-01") for line in log.splitlines())
    assert "x\\x0a2026-01-01" in log and "\\x1b[31m\\x00" in log
    assert max(len(line) for line in log.splitlines()) < 2000
    assert "more characters]" in log


def test_redoc_and_the_oauth2_page_are_gone_and_slashes_are_not_redirected(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200 and http.get("/openapi.json").status_code == 200
    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert http.get(path).status_code == 404, path
    slashed = http.post(
        "/v3/rerank/",
        json={"model": CROSS, "query": "q", "documents": ["d"]},
        headers={"Host": "attacker.example"},
        follow_redirects=False,
    )
    assert slashed.status_code == 404, slashed.headers
    assert "location" not in slashed.headers
    assert "trailing slash" in slashed.json()["error"]


def test_similarity_takes_max_inputs_sentences_beside_its_source(http: httpx.Client) -> None:
    def post(count: int) -> httpx.Response:
        inputs = {"source_sentence": "a", "sentences": ["b"] * count}
        return http.post("/similarity", json={"model": MINILM, "inputs": inputs})

    assert post(2048).status_code == 200
    over = post(2049)
    assert over.status_code == 422, over.text
    assert over.json()["error"].startswith("inputs.sentences: 2049 items")


def test_non_finite_model_output_is_an_error_never_nan(http: httpx.Client) -> None:
    fine = http.post("/v3/rerank", json={"model": NAN_MODEL, "query": "q", "documents": ["one zebra", "cat"]})
    assert fine.status_code == 200
    assert all(np.isfinite(r["relevance_score"]) for r in fine.json()["results"])
    broken = {"model": NAN_MODEL, "query": "q", "documents": [f"{TRIGGER} {TRIGGER}", "cat"]}
    for raw in (False, True):
        response = http.post("/v3/rerank", json={**broken, "raw_scores": raw})
        assert response.status_code == 500, response.text
        assert "non-finite" in response.json()["error"]
        assert "NaN" not in response.text


def test_a_failed_request_does_not_fail_the_others_in_its_batch(
    http: httpx.Client, live: ServerProcess
) -> None:
    """Concurrent NaN and normal requests: the normal ones are answered, and the model serves after."""
    results: dict[str, list[int]] = {"good": [], "bad": []}

    def send(kind: str) -> None:
        documents = [f"{TRIGGER} {TRIGGER}"] if kind == "bad" else ["cat", "dog"]
        with httpx.Client(base_url=live.url, timeout=60) as client:
            for _ in range(10):
                response = client.post(
                    "/v3/rerank", json={"model": NAN_MODEL, "query": "q", "documents": documents}
                )
                results[kind].append(response.status_code)

    threads = [threading.Thread(target=send, args=(kind,)) for kind in ("good", "bad", "good", "bad")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results["good"]) == {200} and set(results["bad"]) == {500}


def test_messages_name_files_relative_to_the_repository(repo: Path, http: httpx.Client) -> None:
    broken = repo / "broken-graph"
    shutil.copytree(repo / MINILM, broken)
    (broken / GRAPH_FILE).write_text("node {")
    names = [CROSS, MINILM, NAN_MODEL, "broken-graph"]
    write_config(repo, names)
    try:
        status = wait_until(lambda: http.get("/v1/config").json().get("broken-graph", {}).get("error"))
        assert "broken-graph/graph.pbtxt" in status and str(repo) not in status
        unavailable = http.post("/v3/embeddings", json={"model": "broken-graph", "input": "x"})
        assert unavailable.status_code == 503 and str(repo) not in unavailable.text
    finally:
        write_config(repo, [CROSS, MINILM, NAN_MODEL])
        shutil.rmtree(broken)


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"model_config_list": [], "mediapipe_config_list": []}).encode("utf-16"),
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["utf-16", "deeply-nested"],
)
def test_an_unreadable_config_json_is_a_400_on_reload_and_everything_keeps_serving(
    repo: Path, http: httpx.Client, content: bytes
) -> None:
    config = repo / "config.json"
    good = config.read_bytes()
    try:
        config.write_bytes(content)
        response = http.post("/v1/config/reload")
        assert response.status_code == 400, response.text
        assert http.post("/v3/embeddings", json={"model": MINILM, "input": "still here"}).status_code == 200
    finally:
        config.write_bytes(good)
    assert http.post("/v1/config/reload").status_code == 200


def test_a_deeply_nested_graph_fails_that_model_alone(repo: Path, http: httpx.Client) -> None:
    nested = repo / "nested"
    shutil.copytree(repo / MINILM, nested)
    (nested / GRAPH_FILE).write_text("node " + "{ a " * 50_000 + "}" * 50_000)
    write_config(repo, [CROSS, MINILM, NAN_MODEL, "nested"])
    try:
        response = http.post("/v1/config/reload")
        assert response.status_code == 200, response.text
        assert "nested too deeply" in response.json()["nested"]["error"]
        assert http.post("/v3/embeddings", json={"model": MINILM, "input": "x"}).status_code == 200
    finally:
        write_config(repo, [CROSS, MINILM, NAN_MODEL])
        shutil.rmtree(nested)


# ---- versions whose files change under a served model -------------------------------------------

VERSIONED = "versioned/xlmr"


@pytest.fixture
def versioned(repo: Path, exported_models: dict[str, ExportedModel], http: httpx.Client) -> Iterator[Path]:
    """VERSIONED with versions 2 and 3 (3 served), added to the running server's repository."""
    folder = repo / VERSIONED
    source = exported_models["test/xlmr"]
    for version in (2, 3):
        for kind, src in zip((TOKENIZER_DIR, "rerank"), source.version_dirs(1), strict=True):
            shutil.copytree(src, folder / kind / str(version))
    for name in ("graph.pbtxt", "subconfig.json"):
        shutil.copy(source.model_dir / name, folder / name)
    write_config(repo, [CROSS, MINILM, NAN_MODEL, VERSIONED])
    wait_until(
        lambda: version_states(http.get("/v1/config").json(), VERSIONED).get(3, ("",))[0] == "AVAILABLE"
    )
    yield folder
    write_config(repo, [CROSS, MINILM, NAN_MODEL])
    wait_until(lambda: VERSIONED not in {m["id"] for m in http.get("/v3/models").json()["data"]})
    shutil.rmtree(folder)


def served_version(http: httpx.Client, name: str) -> int | None:
    for card in http.get("/v3/models").json()["data"]:
        if card["id"] == name:
            return card["version"]
    return None


def test_a_served_version_whose_files_change_keeps_serving(
    versioned: Path, http: httpx.Client, live: ServerProcess
) -> None:
    """While version 3's files keep changing, 3 serves; 2 is never loaded in its place."""
    log_start = len(live.log())
    model_bin = versioned / "rerank" / "3" / MODEL_BIN
    seen: set[int | None] = set()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        os.utime(model_bin)  # a copy still going on, as far as the server can tell
        seen.add(served_version(http, VERSIONED))
        time.sleep(0.1)
    assert seen == {3}
    assert f"loaded {VERSIONED}:2" not in live.log()[log_start:]
    # Once the files settle, version 3 is rebuilt from them.
    wait_until(lambda: live.log()[log_start:].count(f"loaded {VERSIONED}:3") == 1)
    assert served_version(http, VERSIONED) == 3


def test_a_failed_rebuild_is_retried_on_reload(
    versioned: Path, http: httpx.Client, live: ServerProcess
) -> None:
    """Version 3's model.xml is broken in place: 3 keeps serving its earlier files, /v1/config says why;
    a retry with the same file signature happens on POST /v1/config/reload."""
    model_xml = versioned / "rerank" / "3" / MODEL_XML
    good = model_xml.read_bytes()
    broken = b"<net>" + b" " * (len(good) - 5)  # same size: only the mtime tells it changed
    model_xml.write_bytes(broken)

    def failed() -> str | None:
        state, code, message = version_states(http.get("/v1/config").json(), VERSIONED)[3]
        return (
            message if "changed files failed" in message and state == "AVAILABLE" and code == "OK" else None
        )

    wait_until(failed)
    assert (
        http.post("/v3/rerank", json={"model": VERSIONED, "query": "q", "documents": ["d"]}).status_code
        == 200
    )
    # The good content back with the broken file's size and mtime: polling sees no change.
    mtime = model_xml.stat().st_mtime_ns
    model_xml.write_bytes(good)
    os.utime(model_xml, ns=(mtime, mtime))
    time.sleep(1.0)
    assert failed() is not None
    log_start = len(live.log())
    status = http.post("/v1/config/reload")
    assert status.status_code == 200
    assert version_states(status.json(), VERSIONED)[3] == ("AVAILABLE", "OK", "OK")
    assert f"loaded {VERSIONED}:3" in live.log()[log_start:]


def test_a_served_model_bin_overwritten_in_place_does_not_crash_the_server(
    versioned: Path, http: httpx.Client, live: ServerProcess
) -> None:
    """`cp new/model.bin 3/model.bin` truncates the served file first: a memory-mapped model would
    die of SIGBUS on its next inference. The server reads weights into memory instead."""
    body = {"model": VERSIONED, "query": "what is a panda?", "documents": ["a bear", "a car"]}
    expected = http.post("/v3/rerank", json=body).json()["results"]
    model_bin = versioned / "rerank" / "3" / MODEL_BIN
    content = model_bin.read_bytes()
    with model_bin.open("r+b") as handle:
        handle.truncate(0)
        assert http.post("/v3/rerank", json=body).status_code == 200
        handle.write(content[: len(content) // 2])
        handle.flush()
        assert http.post("/v3/rerank", json=body).status_code == 200
        handle.write(content[len(content) // 2 :])
    assert live.process.poll() is None
    log_start = len(live.log())
    wait_until(lambda: f"loaded {VERSIONED}:3" in live.log()[log_start:] or None)
    assert http.post("/v3/rerank", json=body).json()["results"] == expected
