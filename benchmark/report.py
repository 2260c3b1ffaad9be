"""The benchmark's outputs: results JSON, the docs page's table, the chart."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmark.analysis import ExportReports, Row, TargetCheck
from benchmark.config import EXPORTS_BY_KEY, BenchConfig
from benchmark.systems import Kind
from benchmark.workloads import Workload
from serving.repository.layout import Task
from tools.generated_blocks import MissingMarkers, replace_block

TABLE_START = "<!-- bench:start -->"
TABLE_END = "<!-- bench:end -->"


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
    notice = "<!-- generated by python -m benchmark: do not edit by hand -->"
    try:
        text = replace_block(page.read_text(encoding="utf-8"), TABLE_START, TABLE_END, f"{notice}\n{block}\n")
    except MissingMarkers as missing:
        raise RuntimeError(f"{page}: {missing} to regenerate") from None
    page.write_text(text, encoding="utf-8")


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
