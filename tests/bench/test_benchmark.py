"""The benchmark harness: the tiny configuration end to end (real exports, real server), and its parts.

No assertion on speed: the machine is shared. What is asserted is that every system ran every
workload, that the figures are consistent with each other, and that the outputs are written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark import report
from benchmark.config import TINY
from benchmark.run import planned_rows
from benchmark.systems import SYSTEMS
from benchmark.workloads import RepeatPolicy, WorkloadSpec, generate
from serving.repository.layout import Task

REPO_ROOT = Path(__file__).resolve().parents[2]
# Exports are cached here between sessions (re-done when the source or the export code changes).
TINY_WORK_DIR = REPO_ROOT / ".cache" / "bench-tiny"

TinyRun = tuple[subprocess.CompletedProcess[str], Path]  # the finished command, its output folder

README_TEXT = f"""# Title

Intro that must stay.

{report.README_START}
stale table
{report.README_END}

## After the table

Must stay too.
"""


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, xlmr_reranker_source: Path, minilm_source: Path
) -> TinyRun:
    """`python -m benchmark --tiny` once, writing into a temp folder with its own README."""
    out_dir = tmp_path_factory.mktemp("bench-out")
    readme = out_dir / "README.md"
    readme.write_text(README_TEXT)
    completed = subprocess.run(
        [sys.executable, "-m", "benchmark", "--tiny", "--work_dir", str(TINY_WORK_DIR),
         "--out_dir", str(out_dir), "--readme", str(readme), "--reranker_source", str(xlmr_reranker_source),
         "--embedder_source", str(minilm_source)],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False, timeout=1800,
    )  # fmt: skip
    return completed, out_dir


@pytest.mark.slow
def test_tiny_run_measures_every_system_on_every_workload(tiny_run: TinyRun) -> None:
    completed, out_dir = tiny_run
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((out_dir / "results.json").read_text())
    rows = results["results"]
    assert not [row for row in rows if row["error"]]

    expected = set(planned_rows(TINY, SYSTEMS, tuple(w.name for w in TINY.workloads)))
    assert {(row["workload"], row["system"], row["concurrency"]) for row in rows} == expected
    assert ("R3", "server-int8-static-per-request", 32) in expected  # R3: 32 clients, both batchings
    assert {system for workload, system, _ in expected if workload == "E1"} >= {
        "st-openvino-static", "server-int8-static", "ov-int8-static"
    }  # fmt: skip

    workloads = {w["name"]: w for w in results["workloads"]}
    for row in rows:
        workload = workloads[row["workload"]]
        assert row["requests"] >= 1
        assert row["items_per_s"] > 0 and row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]
        # tokens/s and docs/s describe the same requests.
        assert row["tokens_per_s"] == pytest.approx(
            row["items_per_s"] * workload["tokens_per_request"] / workload["items"], rel=1e-6
        )
        assert row["peak_rss_mb"] > 10 and row["p99_ms"] >= row["p95_ms"]
        if row["system"] == "hf-fp32":
            assert row["vs_hf"] == pytest.approx(1.0) and row["max_diff"] == 0.0
        bare = ("ov-" + row["weight_format"]) if row["system"].startswith("server-") else None
        if bare and (row["workload"], bare, 1) in expected:
            assert row["efficiency"] > 0
        else:
            assert row["efficiency"] is None

    # fp32 exports pin f32 inference: the server and the bare model match Hugging Face.
    for row in rows:
        if row["system"] in ("server-fp32", "ov-fp32"):
            limit = 1e-3 if workloads[row["workload"]]["task"] == "rerank" else 1e-4
            assert row["max_diff"] <= limit, row
        if row["system"] in ("server-fp32", "ov-fp32") and row["workload"] != "R2":
            assert row["spearman"] > 0.99, row

    assert [target["name"] for target in results["targets"]] == [
        "R1: int8 server docs/s vs HF fp32",
        "R2: int8 server p50 latency / HF fp32",
        "server efficiency (best concurrency, every export, R1 and E1)",
        "R1: static int8 server docs/s vs HF fp32",
        "R1: static int8 server docs/s vs the fp16 server",
        "E1: static int8 server inputs/s vs the fp16 server",
        "R2: static int8 server p50 latency / HF fp32",
        "ours (fastest export, 1 client) vs sentence-transformers openvino plain and static int8, "
        "worst of R1, R2, E1",
        "R3: cross-request batching docs/s vs per-request batches (static int8), p99 no worse",
        "static int8 vs fp32 on the real models (export report): NDCG@10",
        "static int8 vs fp32 on the real models (export report): Spearman per query",
        "static int8 vs fp32 on the real models (export report): lowest cosine",
    ]
    for target in results["targets"]:
        assert target["value"] is not None and target["met"] in (True, False)
    # The static int8 exports' own accuracy reports are in the results and beside their tables.
    assert results["exports"]["reranker"]["int8-static"]["passed"]
    assert results["exports"]["embedder"]["int8-static"]["metrics"]["cosine_min"] > 0.9


@pytest.mark.slow
def test_tiny_run_writes_the_readme_table_and_the_chart(tiny_run: TinyRun) -> None:
    completed, out_dir = tiny_run
    assert completed.returncode == 0, completed.stderr[-4000:]
    readme = (out_dir / "README.md").read_text()
    before, _, rest = readme.partition(report.README_START)
    block, _, after = rest.partition(report.README_END)
    assert before == README_TEXT.partition(report.README_START)[0]
    assert after == README_TEXT.partition(report.README_END)[2]
    assert "stale table" not in block
    for spec in SYSTEMS:
        assert f"| {spec.label} |" in block
    for workload in TINY.workloads:
        assert f"**{workload.name}**" in block
    results = json.loads((out_dir / "results.json").read_text())
    assert block.count("(target ") == len(results["targets"])
    assert block.count("export's accuracy against its fp32 IR") == 4  # R1, R2, R3 (reranker), E1
    assert (out_dir / "results.md").read_text().strip() in block

    chart = (out_dir / "chart.png").read_bytes()
    assert chart[:8] == b"\x89PNG\r\n\x1a\n" and len(chart) > 20_000


def test_workload_lengths_hit_their_targets(minilm_source: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_source)
    spec = WorkloadSpec("X", "test", Task.RERANK, "reranker", n_items=30, min_tokens=20, max_tokens=200,
                        repeat=RepeatPolicy(1, 0.0, 1), seed=7)  # fmt: skip
    workload = generate(spec, tokenizer)
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in workload.texts]
    assert lengths == workload.text_tokens
    # Never over the target, short of it by at most one word's tokens.
    for target, length in zip(workload.target_tokens, lengths, strict=True):
        assert 0 <= target - length <= 6
    assert all(20 <= target <= 200 for target in workload.target_tokens)
    assert max(lengths) - min(lengths) > 100  # mixed lengths, not one size
    pair_lengths = [len(ids) for ids in tokenizer([workload.query] * 30, workload.texts)["input_ids"]]
    assert workload.item_tokens == pair_lengths
    assert generate(spec, tokenizer) == workload  # seeded: the same texts every run


def test_accuracy_figures() -> None:
    reference = np.array([0.9, 0.1, 0.5, 0.3])
    assert report.accuracy(Task.RERANK, reference, reference) == (0.0, pytest.approx(1.0))
    swapped = np.array([0.9, 0.1, 0.29, 0.3])
    max_diff, spearman = report.accuracy(Task.RERANK, reference, swapped)
    assert max_diff == pytest.approx(0.21) and spearman == pytest.approx(0.8)

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8))
    distance, rank = report.accuracy(Task.EMBEDDINGS, vectors, vectors * 3.0)  # same directions
    assert distance == pytest.approx(0.0, abs=1e-12) and rank == pytest.approx(1.0)
    distance, _ = report.accuracy(Task.EMBEDDINGS, vectors, -vectors)
    assert distance == pytest.approx(2.0)


def test_readme_without_markers_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(RuntimeError, match="markers"):
        report.update_readme(readme, "table")
    assert readme.read_text() == "# no markers\n"
