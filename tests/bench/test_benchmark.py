"""The benchmark harness: the tiny configuration end to end (the session's exports, the real server),
a partial run, and its parts.

No assertion on speed: the machine is shared. What is asserted is what a wrong harness would get
wrong: every system ran every workload; each system's output, saved by the run, is compared here
with references computed in the test (transformers, sentence-transformers), and the figures the
run reports (accuracy, ratios, memory, targets) must agree with those outputs and with each other.
The two runs start in the background with the session (tests/bench/runs.py); these tests run last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from benchmark import analysis, report
from benchmark.config import FULL, TINY
from benchmark.peers import ST_STATIC_FILE
from benchmark.run import planned_rows
from benchmark.systems import SYSTEMS
from benchmark.workloads import RepeatPolicy, WorkloadSpec, generate
from export_models.pipeline import ACCURACY_FILE
from serving.repository.layout import Pooling, Task
from tests.support.exports import Exported, activation_quantizers
from tests.support.references import HFReranker, cosine_distance, sentence_embedder

from .runs import BENCH_EXPORTS, BENCH_MODELS, PAGE_TEXT, BenchRun, BenchRuns


def uses_benchmark_runs(test: Callable) -> Callable:
    """The marks of a test of the two runs: slow, their exports, and run last (started in the background)."""
    for mark in (
        pytest.mark.slow,
        pytest.mark.exports(*BENCH_EXPORTS),
        pytest.mark.background("benchmark_runs"),
    ):
        test = mark(test)
    return test


# fp32 exports pin f32: the server and the bare model match Hugging Face to float32 rounding
# (measured about 4e-7 on scores, 3e-8 in cosine distance); bf16 would be off by 1e-3 and 3e-5.
FP32_SCORE_TOLERANCE = 1e-5
FP32_COSINE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def runs(benchmark_runs: Future[BenchRuns]) -> BenchRuns:
    return benchmark_runs.result(timeout=3600)


@pytest.fixture(scope="module")
def tiny_run(runs: BenchRuns) -> BenchRun:
    """`python -m benchmark --tiny` on the session's exports, into a temp folder with its own table page."""
    return runs.tiny


@pytest.fixture(scope="module")
def references(tiny_run: BenchRun, xlmr_reranker_source: Path, minilm_source: Path) -> dict[str, np.ndarray]:
    """Each workload's answer computed here: transformers scores (rerank), sentence-transformers
    embeddings with the model's own pooling (embeddings)."""
    answers = {}
    for name, workload in tiny_run.workloads().items():
        if workload.spec.task is Task.RERANK:
            assert workload.query is not None
            answers[name] = HFReranker(xlmr_reranker_source).scores(workload.query, workload.texts)
        else:
            answers[name] = sentence_embedder(minilm_source).encode(workload.texts)
    return answers


def difference(task: Task, reference: np.ndarray, output: np.ndarray) -> float:
    """Largest score difference (rerank) or cosine distance (embeddings)."""
    if task is Task.RERANK:
        return float(np.abs(output - reference).max())
    return float(cosine_distance(output, reference).max())


@uses_benchmark_runs
def test_tiny_run_measures_every_system_on_every_workload(tiny_run: BenchRun) -> None:
    results = tiny_run.results()
    rows = results["results"]
    assert not [row for row in rows if row["error"]]
    names = tuple(workload.name for workload in TINY.workloads)
    expected = set(planned_rows(TINY, SYSTEMS, names))
    assert {(row["workload"], row["system"], row["concurrency"]) for row in rows} == expected
    # What the plan must hold: the static int8 export on R1, R2, R3 and E1 (server and bare model
    # but on R3); R3 at 32 clients with and without cross-request batching, against HF; both of
    # sentence-transformers' OpenVINO paths where the model fits them (not the 130-position XLM-R).
    for workload in ("R1", "R2", "E1"):
        assert {(workload, "server-int8-static", 1), (workload, "ov-int8-static", 1)} <= expected
    r3_servers = {s for w, s, c in expected if (w, c) == ("R3", 32)}
    assert r3_servers >= {"server-int8-static", "server-int8-static-per-request", "server-fp16-per-request"}
    assert ("R3", "hf-fp32", 1) in expected
    assert {concurrency for workload, _, concurrency in expected if workload == "R3"} == {1, 32}
    assert {("E1", "st-openvino", 1), ("E1", "st-openvino-static", 1)} <= expected
    assert ("R1", "st-openvino-static", 1) not in expected and ("R1", "st-openvino", 1) in expected
    workloads = {w["name"]: w for w in results["workloads"]}
    for row in rows:
        workload = workloads[row["workload"]]
        assert row["requests"] >= 1
        assert row["items_per_s"] > 0 and row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]
        assert row["p99_ms"] >= row["p95_ms"]
        if row["workload"] == "R3":  # a fixed number of requests, whatever the clients
            assert row["requests"] == 64 and workload["clients"] == 32
        # tokens/s and docs/s describe the same requests.
        assert row["tokens_per_s"] == pytest.approx(
            row["items_per_s"] * workload["tokens_per_request"] / workload["items"], rel=1e-6
        )


@uses_benchmark_runs
def test_the_hf_reference_is_the_models_own_answer(tiny_run: BenchRun, references) -> None:
    """The HF fp32 row, the base of every accuracy figure, equals transformers and sentence-
    transformers computed here: the embedder's pooling is the model's own, not the export's."""
    for name, workload in tiny_run.workloads().items():
        output = tiny_run.output(name, "hf-fp32", 1)
        tolerance = FP32_SCORE_TOLERANCE if workload.spec.task is Task.RERANK else FP32_COSINE_TOLERANCE
        assert difference(workload.spec.task, references[name], output) < tolerance, name


@uses_benchmark_runs
def test_accuracy_figures_match_the_outputs(tiny_run: BenchRun, references) -> None:
    """Every row's max diff and Spearman, recomputed from its saved output against the references
    computed here; the fp32 exports (f32 pinned) match them to float32 rounding."""
    workloads = tiny_run.workloads()
    for row in tiny_run.results()["results"]:
        workload = workloads[row["workload"]]
        task = workload.spec.task
        output = tiny_run.output(row["workload"], row["system"], row["concurrency"])
        reference = references[row["workload"]]
        own = difference(task, reference, output)
        assert row["max_diff"] == pytest.approx(own, abs=2e-6), row
        if row["system"] in ("server-fp32", "ov-fp32"):
            assert own < (FP32_SCORE_TOLERANCE if task is Task.RERANK else FP32_COSINE_TOLERANCE), row
        if task is Task.RERANK and row["workload"] == "R1":
            assert row["spearman"] == pytest.approx(spearmanr(reference, output).statistic, abs=1e-3), row


@uses_benchmark_runs
def test_ratios_and_memory_describe_the_rows(tiny_run: BenchRun, exported: Callable[..., Exported]) -> None:
    rows = tiny_run.results()["results"]
    by_key = {(r["workload"], r["system"], r["concurrency"]): r for r in rows}
    for row in rows:
        reference = by_key[(row["workload"], "hf-fp32", 1)]
        if row["workload"] == "R2":  # latency: the p50 ratio
            assert row["vs_hf"] == pytest.approx(reference["p50_ms"] / row["p50_ms"], rel=1e-6)
        else:
            assert row["vs_hf"] == pytest.approx(row["items_per_s"] / reference["items_per_s"], rel=1e-6)
        # A server against the bare model of the same export, where that ran the workload (not R3).
        bare = by_key.get((row["workload"], "ov-" + row["weight_format"], 1))
        if row["system"].startswith("server-") and row["workload"] != "R3":
            assert row["efficiency"] == pytest.approx(row["items_per_s"] / bare["items_per_s"], rel=1e-6)
        else:
            assert row["efficiency"] is None
    # Peak RSS is the serving process's: the server holding the fp32 MiniLM holds about 3x the
    # int8 weights more (a harness measuring itself, or in the wrong unit, would not show it).
    fp32_mb, int8_mb = (exported("minilm", f).model_bin.stat().st_size / 2**20 for f in ("fp32", "int8"))
    server_fp32, server_int8 = (by_key[("E1", f"server-{f}", 1)]["peak_rss_mb"] for f in ("fp32", "int8"))
    assert server_fp32 - server_int8 > 0.5 * (fp32_mb - int8_mb), (server_fp32, server_int8)
    assert 0.5 * fp32_mb < by_key[("E1", "hf-fp32", 1)]["peak_rss_mb"] < 20_000  # torch holds the weights


def static_accuracy_reports(exported: Callable[..., Exported]) -> dict[str, dict[str, object]]:
    """The benchmark model key -> the accuracy.json its static int8 session export wrote."""
    reports = {}
    for model_key, kind in BENCH_MODELS.items():
        folder = exported(kind, "int8-static").version_dirs()[1]
        reports[model_key] = json.loads((folder / ACCURACY_FILE).read_text())
    return reports


@uses_benchmark_runs
def test_targets_follow_from_the_rows(tiny_run: BenchRun, exported: Callable[..., Exported]) -> None:
    results = tiny_run.results()
    by_key = {(r["workload"], r["system"], r["concurrency"]): r for r in results["results"]}

    def row(workload: str, system: str, clients: int = 1) -> dict:
        return by_key[(workload, system, clients)]

    def speed(workload: str, system: str) -> float:  # higher is better: docs/s, or 1 / p50 (R2)
        found = row(workload, system)
        return 1 / found["p50_ms"] if workload == "R2" else found["items_per_s"]

    r1 = max(r["vs_hf"] for (w, s, _), r in by_key.items() if (w, s) == ("R1", "server-int8"))
    r2 = row("R2", "server-int8")["p50_ms"] / row("R2", "hf-fp32")["p50_ms"]
    efficiency = min(
        max(r["efficiency"] for (w, s, _), r in by_key.items() if (w, s) == (workload, system))
        for workload in ("R1", "E1")
        for system in ("server-fp32", "server-fp16", "server-int8", "server-int8-static")
    )
    # Ours at our fastest export against the faster of sentence-transformers' OpenVINO paths that ran.
    versus_peers = min(
        max(speed(w, s) for s in ("server-fp16", "server-int8", "server-int8-static"))
        / max(speed(w, s) for s in ("st-openvino", "st-openvino-static") if (w, s, 1) in by_key)
        for w in ("R1", "R2", "E1")
    )
    batching, alone = row("R3", "server-int8-static", 32), row("R3", "server-int8-static-per-request", 32)
    r3 = batching["items_per_s"] / alone["items_per_s"]
    r3_met = r3 >= TINY.target_r3_batching and batching["p99_ms"] <= alone["p99_ms"]
    # Accuracy: the export's own report, read here from the session's export. The tiny run's only
    # real model is the MiniLM embedder; the rerank figures fall back to the random-weight XLM-R.
    metrics = {key: report["metrics"] for key, report in static_accuracy_reports(exported).items()}
    targets = {target["name"]: target for target in results["targets"]}
    for name, value, threshold, higher_is_better in (
        ("R1: int8 server docs/s vs HF fp32", r1, TINY.target_r1_speedup, True),
        ("R2: int8 server p50 latency / HF fp32", r2, TINY.target_r2_latency_ratio, False),
        (
            "server efficiency (best concurrency, every export, R1 and E1)",
            efficiency,
            TINY.target_efficiency,
            True,
        ),
        ("R1: static int8 server docs/s vs HF fp32", row("R1", "server-int8-static")["vs_hf"],
         TINY.target_static_r1_speedup, True),
        ("R1: static int8 server docs/s vs the fp16 server", speed("R1", "server-int8-static")
         / speed("R1", "server-fp16"), TINY.target_static_vs_fp16_r1, True),
        ("E1: static int8 server inputs/s vs the fp16 server", speed("E1", "server-int8-static")
         / speed("E1", "server-fp16"), TINY.target_static_vs_fp16_e1, True),
        ("R2: static int8 server p50 latency / HF fp32", row("R2", "server-int8-static")["p50_ms"]
         / row("R2", "hf-fp32")["p50_ms"], TINY.target_r2_latency_ratio, False),
        ("ours (fastest export, 1 client) vs sentence-transformers openvino plain and static int8, "
         "worst of R1, R2, E1", versus_peers, TINY.target_vs_peers, True),
        ("static int8 vs fp32 on the real models (export report): NDCG@10",
         metrics["reranker"]["ndcg@10"], TINY.target_static_ndcg, True),
        ("static int8 vs fp32 on the real models (export report): Spearman per query",
         metrics["reranker"]["spearman_mean"], TINY.target_static_spearman, True),
        ("static int8 vs fp32 on the real models (export report): lowest cosine",
         metrics["embedder"]["cosine_min"], TINY.target_static_cosine, True),
    ):  # fmt: skip
        target = targets.pop(name)
        assert target["value"] == pytest.approx(value, rel=1e-6), name
        assert target["met"] is (value >= threshold if higher_is_better else value <= threshold), name
    target = targets.pop(
        "R3: cross-request batching docs/s vs per-request batches (static int8), p99 no worse"
    )
    assert target["value"] == pytest.approx(r3, rel=1e-6) and target["met"] is r3_met
    assert not targets


@uses_benchmark_runs
def test_the_static_int8_rows_carry_their_exports_accuracy_report(
    tiny_run: BenchRun, exported: Callable[..., Exported]
) -> None:
    """Beside the static int8 rows: the export's own report against its fp32 IR, as the export
    wrote it (results.json and the table); and sentence-transformers' static int8 peer ran on a
    model with quantized activations (its own export), not on the plain one."""
    reports = static_accuracy_reports(exported)
    results = tiny_run.results()
    assert {key: models["int8-static"] for key, models in results["exports"].items()} == reports
    parts = re.split(r"^\*\*(\S+)\*\*", (tiny_run.out_dir / "results.md").read_text(), flags=re.MULTILINE)
    tables = dict(zip(parts[1::2], parts[2::2], strict=True))  # workload -> its title, table and notes
    assert set(tables) == {w.name for w in TINY.workloads}
    for workload in TINY.workloads:
        line = report.describe_export_report("int8-static", reports[workload.model_key])
        assert line in tables[workload.name], workload.name

    peer = tiny_run.work_dir / "st-static" / "embedder" / ST_STATIC_FILE
    assert activation_quantizers(peer) > 0


@uses_benchmark_runs
def test_tiny_run_writes_the_page_table_and_the_chart(tiny_run: BenchRun) -> None:
    tiny_run.results()  # the run succeeded
    page = (tiny_run.out_dir / "benchmark.md").read_text()
    before, _, rest = page.partition(report.TABLE_START)
    block, _, after = rest.partition(report.TABLE_END)
    assert before == PAGE_TEXT.partition(report.TABLE_START)[0]
    assert after == PAGE_TEXT.partition(report.TABLE_END)[2]
    assert "stale table" not in block
    for spec in SYSTEMS:
        assert f"| {spec.label} |" in block
    assert "| p99 ms |" in block
    for workload in TINY.workloads:
        assert f"**{workload.name}**" in block
    assert block.count("(target ") == len(tiny_run.results()["targets"])
    assert (tiny_run.out_dir / "results.md").read_text().strip() in block

    chart = (tiny_run.out_dir / "chart.png").read_bytes()
    assert chart[:8] == b"\x89PNG\r\n\x1a\n" and len(chart) > 20_000


@uses_benchmark_runs
def test_a_partial_run_and_an_export_with_the_wrong_pooling(runs: BenchRuns, minilm_source: Path) -> None:
    """--systems/--workloads run only those (and the HF reference), write into the work folder and
    leave docs/benchmark.md alone; the HF reference keeps the model's own pooling, so the server serving an
    export whose graph says CLS shows a large accuracy error instead of agreeing with it."""
    run = runs.partial
    rows = run.results()["results"]
    assert {(r["workload"], r["system"], r["concurrency"]) for r in rows} == {
        ("E1", "hf-fp32", 1),
        ("E1", "server-fp32", 1),
        ("E1", "server-fp32", 4),
    }
    assert runs.page_after == runs.page_before
    texts = run.workloads()["E1"].texts
    model_pooling = sentence_embedder(minilm_source).encode(texts)
    assert difference(Task.EMBEDDINGS, model_pooling, run.output("E1", "hf-fp32", 1)) < FP32_COSINE_TOLERANCE
    served = run.output("E1", "server-fp32", 1)
    cls_pooling = sentence_embedder(minilm_source, Pooling.CLS).encode(texts)
    assert difference(Task.EMBEDDINGS, cls_pooling, served) < FP32_COSINE_TOLERANCE  # served as exported
    assert min(r["max_diff"] for r in rows if r["system"] == "server-fp32") > 0.05  # and the figure says so


def test_the_full_run_plans_static_int8_r3_and_both_peers() -> None:
    """The full run's plan (run by `make bench`, not here): static int8 on every workload of the
    three models, R3 and R3-ce at 32 clients with and without cross-request batching, both of
    sentence-transformers' OpenVINO paths."""
    workloads = {spec.name: spec for spec in FULL.workloads}
    rows = set(planned_rows(FULL, SYSTEMS, tuple(workloads)))
    assert {"R1", "R2", "R3", "E1", "R1-ce", "R2-ce", "R3-ce"} <= set(workloads)
    for name, spec in workloads.items():
        clients = 32 if name.startswith("R3") else 1
        assert (name, "server-int8-static", clients) in rows and (name, "hf-fp32", 1) in rows
        if name.startswith("R3"):
            assert (spec.n_items, spec.min_tokens, spec.max_tokens, spec.clients) == (8, 30, 120, 32)
            assert spec.repeat.min_requests == spec.repeat.max_requests == 256  # a fixed request count
            servers = {s for w, s, c in rows if (w, c) == (name, 32)}
            assert servers >= {"server-int8-static", "server-int8-static-per-request", "server-fp16"}
            assert "server-fp16-per-request" in servers
            assert {c for w, _, c in rows if w == name} == {1, 32}
        else:
            for system in ("ov-int8-static", "st-openvino", "st-openvino-static"):
                assert (name, system, 1) in rows
    assert {w for w, s, _ in rows if s.endswith("-per-request")} == {"R3", "R3-ce"}


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
    assert analysis.accuracy(Task.RERANK, reference, reference) == (0.0, pytest.approx(1.0))
    swapped = np.array([0.9, 0.1, 0.29, 0.3])
    max_diff, spearman = analysis.accuracy(Task.RERANK, reference, swapped)
    assert max_diff == pytest.approx(0.21) and spearman == pytest.approx(0.8)

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8))
    distance, rank = analysis.accuracy(Task.EMBEDDINGS, vectors, vectors * 3.0)  # same directions
    assert distance == pytest.approx(0.0, abs=1e-12) and rank == pytest.approx(1.0)
    distance, _ = analysis.accuracy(Task.EMBEDDINGS, vectors, -vectors)
    assert distance == pytest.approx(2.0)


def test_a_page_without_markers_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "benchmark.md"
    page.write_text("# no markers\n")
    with pytest.raises(RuntimeError, match="markers"):
        report.update_page(page, "table")
    assert page.read_text() == "# no markers\n"
