"""From measurements to figures: ratios, efficiency, accuracy, targets; results JSON, docs table, chart."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmark.config import EXPORTS_BY_KEY, BenchConfig
from benchmark.measure import Measurement
from benchmark.models import PreparedModel
from benchmark.systems import REFERENCE_SYSTEM, SYSTEMS_BY_KEY, Kind
from benchmark.worker import output_path
from benchmark.workloads import Workload
from serving.repository.layout import Task

TABLE_START = "<!-- bench:start -->"
TABLE_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Row:
    """One line of the table: a system at one concurrency on one workload."""

    workload: str
    system: str
    label: str
    kind: str
    weight_format: str
    concurrency: int
    requests: int
    items_per_s: float | None
    tokens_per_s: float | None
    p50_ms: float | None
    p95_ms: float | None
    peak_rss_mb: float | None
    p99_ms: float | None
    vs_hf: float | None  # speed-up over HF fp32: docs/s ratio (throughput workloads) or p50 ratio (latency)
    efficiency: float | None  # server docs/s / bare OpenVINO docs/s, same export
    max_diff: float | None  # rerank: largest |score - HF score|; embeddings: largest cosine distance to HF
    spearman: float | None  # rerank: of the document scores; embeddings: of all pairwise similarities
    error: str | None = None


@dataclass(frozen=True)
class TargetCheck:
    name: str
    value: float | None
    threshold: float
    higher_is_better: bool
    met: bool | None
    note: str


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _pairwise_similarities(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarities = unit @ unit.T
    return similarities[np.triu_indices(len(vectors), k=1)]


def accuracy(task: Task, reference: np.ndarray, output: np.ndarray) -> tuple[float, float | None]:
    """(largest difference, Spearman) of one system's output against the HF fp32 output."""
    if task is Task.RERANK:
        return float(np.max(np.abs(output - reference))), _spearman(reference, output)
    cosine = np.sum(reference * output, axis=1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(output, axis=1)
    )
    return max(0.0, float(np.max(1.0 - cosine))), _spearman(
        _pairwise_similarities(reference), _pairwise_similarities(output)
    )


def build_rows(workloads: list[Workload], measurements: list[Measurement], outputs_dir: Path) -> list[Row]:
    rows = []
    by_key = {(m.workload, m.row_key): m for m in measurements}
    for workload in workloads:
        reference = by_key.get((workload.name, f"{REFERENCE_SYSTEM}@c1"))
        reference_output = None
        if reference is not None and not reference.error:
            reference_output = np.load(output_path(outputs_dir, workload.name, reference.row_key))
        for measurement in (m for m in measurements if m.workload == workload.name):
            spec = SYSTEMS_BY_KEY[measurement.system]
            vs_hf = efficiency = max_diff = spearman = None
            ok = not measurement.error
            if ok and reference is not None and not reference.error:
                if workload.spec.primary == "latency":
                    vs_hf = _ratio(reference.latency_percentile(50), measurement.latency_percentile(50))
                else:
                    vs_hf = _ratio(measurement.items_per_s, reference.items_per_s)
            if ok and spec.kind is Kind.SERVER:
                bare = by_key.get((workload.name, f"ov-{spec.weight_format}@c1"))
                if bare is not None and not bare.error:
                    efficiency = _ratio(measurement.items_per_s, bare.items_per_s)
            if ok and reference_output is not None:
                output = np.load(output_path(outputs_dir, workload.name, measurement.row_key))
                max_diff, spearman = accuracy(workload.spec.task, reference_output, output)
            rows.append(
                Row(
                    workload=workload.name,
                    system=spec.key,
                    label=spec.label,
                    kind=spec.kind.value,
                    weight_format=spec.weight_format,
                    concurrency=measurement.concurrency,
                    requests=measurement.requests,
                    items_per_s=measurement.items_per_s,
                    tokens_per_s=measurement.tokens_per_s,
                    p50_ms=measurement.latency_percentile(50),
                    p95_ms=measurement.latency_percentile(95),
                    peak_rss_mb=measurement.peak_rss_mb,
                    p99_ms=measurement.latency_percentile(99),
                    vs_hf=vs_hf,
                    efficiency=efficiency,
                    max_diff=max_diff,
                    spearman=spearman,
                    error=measurement.error,
                )
            )
    return rows


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def _find(rows: list[Row], workload: str, system: str, concurrency: int | None = None) -> list[Row]:
    return [
        r
        for r in rows
        if r.workload == workload
        and r.system == system
        and not r.error
        and (concurrency is None or r.concurrency == concurrency)
    ]


ExportReports = dict[str, dict[str, dict[str, object]]]  # model key -> export key -> accuracy.json


def export_reports(models: dict[str, PreparedModel]) -> ExportReports:
    return {key: dict(model.accuracy) for key, model in models.items() if model.accuracy}


def check_targets(
    config: BenchConfig, rows: list[Row], exports: ExportReports | None = None
) -> list[TargetCheck]:
    """The issues' targets, each with the evidence that says why when it is missed."""
    checks = []

    servers = _find(rows, "R1", "server-int8")
    best = max(servers, key=lambda r: r.vs_hf or 0.0, default=None)
    bare = next(iter(_find(rows, "R1", "ov-int8")), None)
    value = best.vs_hf if best else None
    note = ""
    if best and value is not None:
        note = f"int8 server at concurrency {best.concurrency}: {best.items_per_s:.1f} docs/s"
        if bare and bare.vs_hf is not None:
            note += f"; the bare int8 model (the ceiling) reaches {bare.vs_hf:.2f}x"
            if value < config.target_r1_speedup:
                if bare.vs_hf < config.target_r1_speedup:
                    note += ", so the int8 model's compute on this CPU is the limit, not the server"
                note += f"; the server keeps {best.efficiency or 0:.0%} of the ceiling"
    checks.append(_check("R1: int8 server docs/s vs HF fp32", value, config.target_r1_speedup, True, note))

    server = next(iter(_find(rows, "R2", "server-int8", 1)), None)
    reference = next(iter(_find(rows, "R2", REFERENCE_SYSTEM, 1)), None)
    bare = next(iter(_find(rows, "R2", "ov-int8")), None)
    value = _ratio(server.p50_ms, reference.p50_ms) if server and reference else None
    note = ""
    if server and reference and server.p50_ms is not None and reference.p50_ms is not None:
        note = f"p50 {server.p50_ms:.1f} ms vs HF {reference.p50_ms:.1f} ms"
        if bare and bare.p50_ms is not None:
            note += (
                f"; the bare int8 model takes {bare.p50_ms:.1f} ms, so HTTP + JSON + scheduling cost "
                f"{server.p50_ms - bare.p50_ms:.1f} ms per request"
            )
    checks.append(
        _check("R2: int8 server p50 latency / HF fp32", value, config.target_r2_latency_ratio, False, note)
    )

    efficiencies = []
    for workload in ("R1", "E1"):
        for system in ("server-fp32", "server-fp16", "server-int8", "server-int8-static"):
            candidates = _find(rows, workload, system)
            top = max(candidates, key=lambda r: r.efficiency or 0.0, default=None)
            if top and top.efficiency is not None:
                efficiencies.append((top.efficiency, workload, top))
    note = ""
    value = None
    if efficiencies:
        value, workload, worst = min(efficiencies, key=lambda item: item[0])
        bare = next(iter(_find(rows, workload, f"ov-{worst.weight_format}")), None)
        note = f"lowest: {worst.label} on {workload} at concurrency {worst.concurrency}"
        if bare and bare.p50_ms is not None and worst.p50_ms is not None and worst.concurrency == 1:
            note += f"; {worst.p50_ms - bare.p50_ms:.1f} ms per request more than the bare model"
        note += "; all: " + ", ".join(f"{w} {r.weight_format} {e:.0%}" for e, w, r in efficiencies)
    checks.append(
        _check(
            "server efficiency (best concurrency, every export, R1 and E1)",
            value,
            config.target_efficiency,
            True,
            note,
        )
    )
    return checks + static_int8_checks(config, rows, exports or {})


def _one(rows: list[Row], workload: str, system: str, concurrency: int = 1) -> Row | None:
    return next(iter(_find(rows, workload, system, concurrency)), None)


def _speed(row: Row | None, latency: bool) -> float | None:
    """Higher is better: docs/s, or 1 / p50 for a latency workload."""
    if row is None:
        return None
    if latency:
        return 1.0 / row.p50_ms if row.p50_ms else None
    return row.items_per_s


def static_int8_checks(config: BenchConfig, rows: list[Row], exports: ExportReports) -> list[TargetCheck]:
    """Issue 13: static int8 against HF and fp16, against sentence-transformers' OpenVINO paths,
    cross-request batching against per-request batches, and static int8's accuracy."""
    checks = []
    static, fp16 = _one(rows, "R1", "server-int8-static"), _one(rows, "R1", "server-fp16")
    bare = _one(rows, "R1", "ov-int8-static")
    note = ""
    if static and static.vs_hf is not None:
        note = f"{static.items_per_s:.1f} docs/s at 1 client"
        if bare and bare.vs_hf is not None:
            note += f"; the bare static int8 model reaches {bare.vs_hf:.2f}x"
    checks.append(
        _check(
            "R1: static int8 server docs/s vs HF fp32",
            static.vs_hf if static else None,
            config.target_static_r1_speedup,
            True,
            note,
        )
    )
    for workload, target in (
        ("R1", config.target_static_vs_fp16_r1),
        ("E1", config.target_static_vs_fp16_e1),
    ):
        static, fp16 = _one(rows, workload, "server-int8-static"), _one(rows, workload, "server-fp16")
        value = _ratio(static.items_per_s, fp16.items_per_s) if static and fp16 else None
        note = f"{static.items_per_s:.1f} vs {fp16.items_per_s:.1f} /s at 1 client" if value else ""
        unit = "docs" if workload == "R1" else "inputs"
        checks.append(
            _check(f"{workload}: static int8 server {unit}/s vs the fp16 server", value, target, True, note)
        )

    server, reference = _one(rows, "R2", "server-int8-static"), _one(rows, "R2", REFERENCE_SYSTEM)
    bare = _one(rows, "R2", "ov-int8-static")
    value = _ratio(server.p50_ms, reference.p50_ms) if server and reference else None
    note = ""
    if value is not None and server and reference:
        note = f"p50 {server.p50_ms:.1f} ms vs HF {reference.p50_ms:.1f} ms"
        if bare and bare.p50_ms is not None and server.p50_ms is not None:
            note += f"; the bare static int8 model takes {bare.p50_ms:.1f} ms (the server adds "
            note += f"{server.p50_ms - bare.p50_ms:.1f} ms)"
    checks.append(
        _check(
            "R2: static int8 server p50 latency / HF fp32", value, config.target_r2_latency_ratio, False, note
        )
    )

    # Against the peers: our fastest export at 1 client (what --weight-format auto would keep).
    ratios = []
    for workload in ("R1", "R2", "E1"):
        latency = workload == "R2"
        ours = [
            r for s in ("server-fp16", "server-int8", "server-int8-static") if (r := _one(rows, workload, s))
        ]
        theirs = [r for s in ("st-openvino", "st-openvino-static") if (r := _one(rows, workload, s))]
        if not ours or not theirs:
            continue
        best = max(ours, key=lambda r: _speed(r, latency) or 0.0)
        peer = max(theirs, key=lambda r: _speed(r, latency) or 0.0)
        ratio = _ratio(_speed(best, latency), _speed(peer, latency))
        if ratio is not None:
            ratios.append((ratio, f"{workload} {best.label} / {peer.label} {ratio:.2f}x"))
    value = min(ratios)[0] if ratios else None
    checks.append(
        _check(
            "ours (fastest export, 1 client) vs sentence-transformers openvino plain and static int8, "
            "worst of R1, R2, E1",
            value,
            config.target_vs_peers,
            True,
            "; ".join(text for _, text in ratios),
        )
    )

    for workload in ("R3", "R3-ce"):
        batching = max(_find(rows, workload, "server-int8-static"), key=lambda r: r.concurrency, default=None)
        alone = max(
            _find(rows, workload, "server-int8-static-per-request"), key=lambda r: r.concurrency, default=None
        )
        if workload == "R3-ce" and batching is None:
            continue
        value = _ratio(batching.items_per_s, alone.items_per_s) if batching and alone else None
        check = _check(
            f"{workload}: cross-request batching docs/s vs per-request batches (static int8), p99 no worse",
            value, config.target_r3_batching, True, "",
        )  # fmt: skip
        if value is not None and batching and alone and batching.p99_ms and alone.p99_ms:
            p99_ratio = batching.p99_ms / alone.p99_ms
            note = (
                f"{batching.items_per_s:.1f} vs {alone.items_per_s:.1f} docs/s at {batching.concurrency} "
                f"clients; p99 {batching.p99_ms:.0f} vs {alone.p99_ms:.0f} ms ({p99_ratio:.2f}x)"
            )
            check = TargetCheck(
                check.name, value, check.threshold, True, bool(check.met) and p99_ratio <= 1.0, note
            )
        checks.append(check)

    real = {model.key for model in config.models if model.real_weights}
    figures: dict[str, list[tuple[float, str]]] = {"ndcg@10": [], "spearman_mean": [], "cosine_min": []}
    for model_key, reports in exports.items():
        metrics = reports.get("int8-static", {}).get("metrics")
        for name in figures:
            if isinstance(metrics, dict) and name in metrics:
                figures[name].append((float(metrics[name]), model_key))
    for name, label, target in (
        ("ndcg@10", "NDCG@10", config.target_static_ndcg),
        ("spearman_mean", "Spearman per query", config.target_static_spearman),
        ("cosine_min", "lowest cosine", config.target_static_cosine),
    ):
        # The real models' figures; where none has this figure, the random-weight ones, said so.
        chosen = [item for item in figures[name] if item[1] in real] or figures[name]
        note = ", ".join(f"{model} {value:.4f}" for value, model in chosen)
        if chosen and not any(model in real for _, model in chosen):
            note += " (random weights: a real model's figure would replace it)"
        worst = min(chosen, default=None)
        checks.append(
            _check(
                f"static int8 vs fp32 on the real models (export report): {label}",
                worst[0] if worst else None,
                target,
                True,
                note,
            )
        )
    return checks


def _check(
    name: str, value: float | None, threshold: float, higher_is_better: bool, note: str
) -> TargetCheck:
    met = None if value is None else (value >= threshold if higher_is_better else value <= threshold)
    return TargetCheck(name, value, threshold, higher_is_better, met, note)


def describe_target(check: TargetCheck) -> str:
    def shown(x: float) -> str:
        return (
            f"{x:.0%}"
            if "efficiency" in check.name
            else f"{x:.3g}x"
            if check.higher_is_better
            else f"{x:.3f}"
        )

    goal = f"{'>=' if check.higher_is_better else '<='} {shown(check.threshold)}"
    if check.value is None:
        return f"- {check.name}: not measured (target {goal})"
    verdict = "met" if check.met else "MISSED"
    line = f"- {check.name}: {shown(check.value)} (target {goal}): **{verdict}**"
    if not check.met:
        shortfall = (
            (check.threshold - check.value) / check.threshold
            if check.higher_is_better
            else (check.value / check.threshold - 1)
        )
        line += f", by {abs(shortfall):.0%}"
    return line + (f". {check.note}" if check.note else "")


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(
    config: BenchConfig,
    workloads: list[Workload],
    rows: list[Row],
    checks: list[TargetCheck],
    machine: dict[str, object],
    models: dict[str, str],
    exports: ExportReports | None = None,
) -> str:
    """The block of docs/benchmark.md: machine, one table per workload (with the static int8 export's
    own accuracy report under it), then the targets."""
    lines = [
        f"Measured by `python -m benchmark{' --tiny' if config.name == 'tiny' else ''}` on {machine['cpu']} "
        f"({machine['cores']} cores, load average {machine['load_average_at_start']} at start), "
        f"{machine['date']}, in {machine['duration_min']:.0f} min; "
        f"OpenVINO {machine['openvino']}, torch {machine['torch']}, transformers {machine['transformers']}, "
        f"sentence-transformers {machine['sentence_transformers']}. Raw figures: `benchmark/results.json`.",
        "",
    ]
    for workload in workloads:
        unit = "docs" if workload.spec.task is Task.RERANK else "inputs"
        lengths = workload.text_tokens
        lines += [
            f"**{workload.name}**: {workload.spec.title}, {models[workload.spec.model_key]}; "
            f"{workload.tokens} tokens per request (text lengths {min(lengths)}-{max(lengths)}).",
            "",
            f"| system | clients | {unit}/s | tokens/s | p50 ms | p95 ms | p99 ms | peak RSS MB | vs HF fp32 "
            "| efficiency | max diff | Spearman |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in (r for r in rows if r.workload == workload.name):
            if row.error:
                lines.append(f"| {row.label} | {row.concurrency} | failed: {row.error[:80]} ||||||||||")
                continue
            lines.append(
                f"| {row.label} | {row.concurrency} | {_number(row.items_per_s)} "
                f"| {_number(row.tokens_per_s, 0)} "
                f"| {_number(row.p50_ms)} | {_number(row.p95_ms)} | {_number(row.p99_ms)} "
                f"| {_number(row.peak_rss_mb, 0)} "
                f"| {_ratio_text(row.vs_hf)} | {'-' if row.efficiency is None else f'{row.efficiency:.0%}'} "
                f"| {'-' if row.max_diff is None else f'{row.max_diff:.1e}'} "
                f"| {'-' if row.spearman is None else f'{row.spearman:.4f}'} |"
            )
        lines.append("")
        for key, report in (exports or {}).get(workload.spec.model_key, {}).items():
            lines += [describe_export_report(key, report), ""]
    lines += ["Targets (ratios from this run):", "", *[describe_target(check) for check in checks], ""]
    return "\n".join(lines)


def describe_export_report(export_key: str, report: dict[str, object]) -> str:
    """One line: what the export's own accuracy report says against its fp32 IR (held-out set)."""
    metrics = report.get("metrics")
    figures = (
        ", ".join(f"{name} {float(value):.4g}" for name, value in metrics.items())
        if isinstance(metrics, dict)
        else "none"
    )
    label = EXPORTS_BY_KEY[export_key].label if export_key in EXPORTS_BY_KEY else export_key
    return (
        f"The {label} export's accuracy against its fp32 IR (INFERENCE_PRECISION_HINT f32), on the shipped "
        f"held-out set ({report.get('evaluation', '')}): {figures}."
    )


def update_page(page: Path, block: str) -> None:
    """Replace what is between the bench markers; the rest of the page stays as it is."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), re.DOTALL)
    if not pattern.search(text):
        raise RuntimeError(f"{page} has no {TABLE_START} ... {TABLE_END} markers to regenerate")
    notice = "<!-- generated by python -m benchmark: do not edit by hand -->"
    replacement = f"{TABLE_START}\n{notice}\n{block}\n{TABLE_END}"
    page.write_text(pattern.sub(lambda _: replacement, text, count=1), encoding="utf-8")


def write_json(
    path: Path,
    config: BenchConfig,
    workloads: list[Workload],
    rows: list[Row],
    checks: list[TargetCheck],
    machine: dict[str, object],
    models: dict[str, str],
    exports: ExportReports | None = None,
) -> None:
    data = {
        "config": config.name,
        "machine": machine,
        "models": models,
        "exports": exports or {},
        "workloads": [
            {
                "name": w.name,
                "title": w.spec.title,
                "task": w.spec.task.value,
                "model": w.spec.model_key,
                "items": w.n_items,
                "tokens_per_request": w.tokens,
                "text_tokens": w.text_tokens,
                "primary": w.spec.primary,
                "seed": w.spec.seed,
                "clients": w.spec.clients,
            }
            for w in workloads
        ],
        "results": [asdict(row) for row in rows],
        "targets": [asdict(check) for check in checks],
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


_COLORS = {
    Kind.HF.value: "#8c8c8c",
    Kind.SENTENCE_TRANSFORMERS.value: "#e0a33a",
    Kind.SERVER.value: "#2f6fb5",
    Kind.BARE_OPENVINO.value: "#69b36b",
}
_LEGEND = {
    Kind.HF.value: "Hugging Face transformers (reference)",
    Kind.SENTENCE_TRANSFORMERS.value: "sentence-transformers",
    Kind.SERVER.value: "our server over HTTP",
    Kind.BARE_OPENVINO.value: "bare OpenVINO model (ceiling)",
}


def chart(path: Path, workloads: list[Workload], rows: list[Row], machine: dict[str, object]) -> None:
    """One panel per workload: throughput (or p50 latency), bars coloured by kind, labelled with vs HF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = [w for w in workloads if any(r.workload == w.name and not r.error for r in rows)]
    height = max(4.0, 0.32 * max((sum(r.workload == w.name for r in rows) for w in panels), default=1) + 1.6)
    figure, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), height), squeeze=False)
    for axis, workload in zip(axes[0], panels, strict=True):
        chosen = [r for r in rows if r.workload == workload.name and not r.error]
        latency = workload.spec.primary == "latency"
        values = [(r.p50_ms if latency else r.items_per_s) or 0.0 for r in chosen]
        labels = [r.label + (f" x{r.concurrency}" if r.kind == Kind.SERVER.value else "") for r in chosen]
        positions = np.arange(len(chosen))[::-1]
        colors = [_COLORS[r.kind] for r in chosen]
        if latency:  # a whisker from p50 to p95
            spread = [[0.0] * len(chosen), [max(0.0, (r.p95_ms or 0.0) - (r.p50_ms or 0.0)) for r in chosen]]
            whisker = {"elinewidth": 0.8, "capsize": 2}
            axis.barh(positions, values, color=colors, xerr=spread, error_kw=whisker)
        else:
            axis.barh(positions, values, color=colors)
        axis.set_yticks(positions, labels, fontsize=8)
        unit = "docs" if workload.spec.task is Task.RERANK else "inputs"
        axis.set_xlabel(
            "p50 latency, ms, whisker to p95 (lower is better)" if latency else f"{unit}/s (higher is better)"
        )
        axis.set_title(f"{workload.name}: {workload.spec.title}", fontsize=10)
        tops = [(r.p95_ms or 0.0) for r in chosen] if latency else values
        limit = max(max(tops, default=1.0), max(values, default=1.0)) or 1.0
        axis.set_xlim(0, limit * 1.35)
        for position, value, top, row in zip(positions, values, tops, chosen, strict=True):
            text = f"{value:,.1f}" + (f"  ({row.vs_hf:.2g}x HF)" if row.vs_hf is not None else "")
            axis.text(max(value, top) + limit * 0.015, position, text, va="center", fontsize=7)
        axis.grid(axis="x", alpha=0.3)
    figure.legend(
        handles=[Patch(color=color, label=_LEGEND[kind]) for kind, color in _COLORS.items()],
        loc="lower center",
        ncol=len(_COLORS),
        fontsize=8,
        frameon=False,
    )
    figure.suptitle(
        f"ovtext benchmark on {machine['cpu']} ({machine['cores']} cores); x = HTTP clients", fontsize=10
    )
    figure.tight_layout(rect=(0, 0.05, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)
