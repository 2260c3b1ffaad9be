"""ovtext-batch in-process: the server's answers, Parquet shards, resumption after a crash, clear refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.corpus import corpus_texts, rerank_rows, write_jsonl
from serving.jobs.corpus import (
    MANIFEST_FILE,
    ROW_COLUMN,
    CorpusError,
    CorpusTask,
    choose_model,
    load_model,
    read_output,
    run_block,
)
from serving.pipelines.embeddings import EmbeddingsParams
from serving.pipelines.framing import Overflow
from serving.pipelines.rerank import RerankParams
from serving.repository.layout import Task
from tools.server_process import ServerProcess

from .conftest import EMBEDDER, RERANKER

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = 300
QUERIES = 40


def run_batch(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving.jobs", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def summary(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TEXTS texts with an id and another column, as JSON Lines."""
    rows = [
        {"id": f"doc-{index}", "lang": "en", "text": text} for index, text in enumerate(corpus_texts(TEXTS))
    ]
    return write_jsonl(rows, tmp_path_factory.mktemp("corpus") / "corpus.jsonl")


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """QUERIES queries with 8 candidates each, as Parquet."""
    path = tmp_path_factory.mktemp("queries") / "queries.parquet"
    pq.write_table(pa.Table.from_pylist(rerank_rows(QUERIES, 8)), path)
    return path


@pytest.fixture(scope="module")
def server(deploy_repo: Path, tmp_path_factory: pytest.TempPathFactory):
    served = ServerProcess(deploy_repo / "config.json", tmp_path_factory.mktemp("server") / "server.log")
    served.wait_ready()
    yield served
    assert served.stop() == 0, served.log()[-3000:]


@pytest.fixture(scope="module")
def embedded(deploy_repo: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus embedded in-process, shards of 100 rows, with the progress bar on."""
    output = tmp_path_factory.mktemp("embedded") / "out.parquet"
    done = run_batch("embeddings", "--config_path", str(deploy_repo / "config.json"), "--model", EMBEDDER,
                     "--input", str(corpus), "--output", str(output), "--shard_rows", "100")  # fmt: skip
    report = summary(done)
    assert (report["rows"], report["shards"], report["shards_skipped"]) == (TEXTS, 3, 0)
    assert "items/s" in done.stderr  # the progress bar (tqdm writes it to stderr)
    return output


def test_embeddings_are_the_servers(embedded: Path, corpus: Path, server: ServerProcess) -> None:
    assert sorted(p.name for p in embedded.iterdir()) == [
        MANIFEST_FILE, "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]  # fmt: skip
    table = read_output(embedded)
    assert table.column_names == ["row", "id", "lang", "embedding"]  # the text itself is left out
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    assert table.column("row").to_pylist() == list(range(TEXTS))
    assert table.column("id").to_pylist() == [row["id"] for row in rows]
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    response = httpx.post(
        f"{server.url}/v3/embeddings", json={"model": EMBEDDER, "input": [row["text"] for row in rows]},
        timeout=300,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    served = np.array([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    assert vectors.dtype == np.float32 and vectors.shape == served.shape == (TEXTS, 384)
    np.testing.assert_allclose(vectors, served, rtol=0, atol=1e-6)


def test_rerank_scores_are_the_servers(
    deploy_repo: Path, queries: Path, server: ServerProcess, tmp_path: Path
) -> None:
    output = tmp_path / "scores.parquet"
    config = str(deploy_repo / "config.json")
    # No --model: the one reranker of the repository.
    done = run_batch("rerank", "--config_path", config, "--input", str(queries), "--output", str(output))
    report = summary(done)
    assert (report["rows"], report["shards"]) == (QUERIES, 1)
    table = read_output(output)
    assert table.column_names == ["row", "id", "query", "scores"]
    source = pq.read_table(queries).to_pylist()
    for row, scores in zip(source, table.column("scores").to_pylist(), strict=True):
        response = httpx.post(
            f"{server.url}/v3/rerank",
            json={"model": RERANKER, "query": row["query"], "documents": row["documents"]},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        expected = np.full(len(row["documents"]), np.nan)
        for result in response.json()["results"]:
            expected[result["index"]] = result["relevance_score"]
        # Rows padded to other widths in other batches than the server's: float noise of ~1e-6 (a
        # wrong model or framing moves scores by far more than 1e-5).
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)


def _run_rows(deploy_repo: Path, task: CorpusTask, model: str, block: pa.Table) -> pa.Table:
    loaded = load_model(choose_model(deploy_repo / "config.json", model, task.task, None), task.task)
    try:
        return run_block(loaded.servable, task, block.add_column(0, ROW_COLUMN, pa.array(range(len(block)))))
    finally:
        loaded.close()


def test_request_options_reach_the_pipeline_as_a_routes_do(
    deploy_repo: Path, corpus: Path, server: ServerProcess
) -> None:
    """The job passes the routes' params objects whole: options a route honours (TEI's normalize and
    truncate) give the server's answers here too, rather than being dropped on the way."""
    texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()[:12]]
    task = CorpusTask(Task.EMBEDDINGS, params=EmbeddingsParams(normalized=False))
    table = _run_rows(deploy_repo, task, EMBEDDER, pa.table({"text": texts}))
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    body: dict = {"model": EMBEDDER, "inputs": texts, "normalize": False}
    response = httpx.post(f"{server.url}/embed", json=body, timeout=120)
    assert response.status_code == 200, response.text
    served = np.array(response.json(), dtype=np.float32)
    assert not np.allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-3)  # not L2-normalized
    np.testing.assert_allclose(vectors, served, rtol=0, atol=1e-5)

    query, documents = "what is in the text?", [texts[0], " ".join(texts) * 4]  # the second is too long
    rows = pa.table({"query": [query], "documents": [documents]})
    for truncate, overflow in ((True, Overflow.CUT_RIGHT), (False, Overflow.REFUSE)):
        task = CorpusTask(Task.RERANK, params=RerankParams(raw_scores=True, overflow=overflow))
        body = {"model": RERANKER, "query": query, "texts": documents, "raw_scores": True}
        body["truncate"] = truncate
        response = httpx.post(f"{server.url}/rerank", json=body, timeout=120)
        if truncate:
            assert response.status_code == 200, response.text
            expected = [rank["score"] for rank in sorted(response.json(), key=lambda rank: rank["index"])]
            scores = _run_rows(deploy_repo, task, RERANKER, rows).column("scores").to_pylist()[0]
            np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
        else:
            assert response.status_code == 422 and "item 1" in response.json()["error"], response.text
            with pytest.raises(CorpusError, match="item 1 with the query has"):
                _run_rows(deploy_repo, task, RERANKER, rows)


def _shard_files(output: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in output.glob("part-*.parquet")}


def test_resumes_after_a_crash_without_redoing_finished_shards(
    deploy_repo: Path, corpus: Path, embedded: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.parquet"
    arguments = [
        "embeddings", "--config_path", str(deploy_repo / "config.json"), "--model", EMBEDDER,
        "--input", str(corpus), "--output", str(output), "--shard_rows", "10", "--no_progress",
    ]  # fmt: skip
    job = subprocess.Popen(
        [sys.executable, "-m", "serving.jobs", *arguments], cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(output.glob("part-*.parquet")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    before = _shard_files(output)
    assert 0 < len(before) < TEXTS // 10, f"{len(before)} shards written before the kill"

    done = run_batch(*arguments)
    report = summary(done)
    assert report["shards_skipped"] == len(before)
    assert report["rows_computed"] == TEXTS - 10 * len(before)
    after = _shard_files(output)
    assert len(after) == TEXTS // 10
    assert {name: after[name] for name in before} == before  # the same files, untouched
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]  # no temporary file left
    resumed, whole = read_output(output), read_output(embedded)
    assert resumed.column("id").equals(whole.column("id"))
    np.testing.assert_allclose(
        np.stack(resumed.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(whole.column("embedding").to_numpy(zero_copy_only=False)),
        rtol=0, atol=1e-6,
    )  # fmt: skip
    # A finished job run again computes nothing.
    again = summary(run_batch(*arguments))
    assert (again["shards_skipped"], again["rows_computed"]) == (TEXTS // 10, 0)


def test_refusals_are_one_line(deploy_repo: Path, corpus: Path, embedded: Path, tmp_path: Path) -> None:
    config = str(deploy_repo / "config.json")

    def refused(*arguments: str) -> str:
        done = run_batch(*arguments, "--no_progress", timeout=300)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
        return line

    common = ["--config_path", config, "--input", str(corpus)]
    # The output folder of another job: refused before any model is compiled.
    line = refused(
        "embeddings", *common, "--model", EMBEDDER, "--output", str(embedded), "--shard_rows", "50"
    )
    assert "holds another job (shard_rows: was 100, now 50)" in line
    line = refused("embeddings", *common, "--model", RERANKER, "--output", str(tmp_path / "a"))
    assert "'test/cross-encoder' is a rerank model, not embeddings" in line
    line = refused("embeddings", *common, "--model", "nope", "--output", str(tmp_path / "b"))
    assert "has no model 'nope'" in line
    line = refused(
        "embeddings", *common, "--model", EMBEDDER, "--version", "7", "--output", str(tmp_path / "c")
    )
    assert "has no complete version 7 (versions: [1])" in line
    line = refused(
        "embeddings", *common, "--model", EMBEDDER, "--text_column", "body", "--output", str(tmp_path / "d")
    )
    assert "no column 'body' (columns: id, lang, text)" in line
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": null}\n')
    line = refused("embeddings", "--config_path", config, "--input", str(broken), "--model", EMBEDDER,
                   "--output", str(tmp_path / "e"))  # fmt: skip
    assert "row 1: 'text' is null" in line
    not_empty = tmp_path / "taken"
    not_empty.mkdir()
    (not_empty / "notes.txt").write_text("mine")
    line = refused("embeddings", *common, "--model", EMBEDDER, "--output", str(not_empty))
    assert "exists and is not the output of a corpus job" in line
    # The pipeline's own limits hold: the server's 400 becomes a one-line error naming the rows.
    long_text = tmp_path / "long.jsonl"
    long_text.write_text(json.dumps({"text": "word " * 2000}) + "\n")
    line = refused("embeddings", "--config_path", config, "--input", str(long_text), "--model", EMBEDDER,
                   "--output", str(tmp_path / "f"))  # fmt: skip
    assert "rows 0-0:" in line and "the limit is 256" in line


def test_the_batch_extra_is_needed_and_named(deploy_repo: Path, corpus: Path, tmp_path: Path) -> None:
    """Without pyarrow (the serving install), ovtext-batch says which extra to install."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "pyarrow.py").write_text("raise ImportError('pyarrow is not installed')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-m", "serving.jobs", "embeddings", "--config_path", str(deploy_repo / "config.json"),
        "--input", str(corpus), "--output", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert "Error: this needs pyarrow: pip install 'ovtext[batch]'" in done.stderr
