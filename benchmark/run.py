"""`python -m benchmark` (= `make bench`): one run, every system, the same workloads; JSON, table, chart.

    python -m benchmark                      # the full run; rewrites docs/benchmark.md's table
    python -m benchmark --tiny               # tiny models, few items: proves the harness end to end
    python -m benchmark --systems hf-fp32,server-int8 --workloads R2   # a partial run (not in the docs)
    python -m benchmark --tiny --exports_dir DIR   # exports made beforehand (DIR/reranker-int8/config.json)

Which system runs which workload at which concurrency: planned_rows() (a workload may name its
systems and its number of clients, a system its workloads).

Systems run one after another, never at the same time, so each has the whole machine.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from benchmark import analysis, report
from benchmark.config import CONFIGS, WEIGHT_FORMATS, BenchConfig
from benchmark.measure import Measurement, MemoryProbe, measure
from benchmark.models import PreparedModel, prepare_models
from benchmark.systems import REFERENCE_SYSTEM, SYSTEMS, Kind, ServerRunner, SystemSpec
from benchmark.worker import WorkerJob, output_path
from benchmark.workloads import Workload, WorkloadSpec, generate, save
from tools.server_process import ServerProcess

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TABLE_PAGE = REPO_ROOT / "docs" / "benchmark.md"  # a complete full run regenerates its table
WORKER_TIMEOUT_S = 3600


def log(message: str) -> None:
    click.echo(message, err=True)


@dataclass(frozen=True)
class RunPlan:
    config: BenchConfig
    systems: tuple[SystemSpec, ...]
    workload_names: tuple[str, ...]
    work_dir: Path
    out_dir: Path
    table_page: Path | None  # the docs page whose table the run regenerates
    source_overrides: dict[str, Path]
    exports_dir: Path | None = None  # exports made beforehand, used as they are

    @property
    def complete(self) -> bool:
        return len(self.systems) == len(SYSTEMS) and len(self.workload_names) == len(self.config.workloads)


def runs(config: BenchConfig, system: SystemSpec, workload: WorkloadSpec) -> bool:
    model = next(choice for choice in config.models if choice.key == workload.model_key)
    return (
        (system.workloads is None or workload.name in system.workloads)
        and (workload.systems is None or system.key in workload.systems)
        and (model.st_static or not system.static_int8)
    )


def concurrencies(config: BenchConfig, system: SystemSpec, workload: WorkloadSpec) -> tuple[int, ...]:
    if not system.concurrent:
        return (1,)
    return (workload.clients,) if workload.clients else config.concurrencies


def planned_rows(
    config: BenchConfig, systems: tuple[SystemSpec, ...], workload_names: tuple[str, ...]
) -> list[tuple[str, str, int]]:
    """(workload, system, concurrency) of every measurement a run makes, in the order it makes them."""
    return [
        (workload.name, system.key, concurrency)
        for system in systems
        for workload in config.workloads
        if workload.name in workload_names and runs(config, system, workload)
        for concurrency in concurrencies(config, system, workload)
    ]


def machine_info() -> dict[str, object]:
    import openvino
    import sentence_transformers
    import torch
    import transformers

    cpu = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "openvino": openvino.__version__.split("-")[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "date": datetime.date.today().isoformat(),
    }


def _run_worker(
    spec: SystemSpec, model: PreparedModel, workloads: list[Workload], plan: RunPlan
) -> list[Measurement]:
    """An in-process system in a fresh Python process of its own."""
    jobs_dir = plan.work_dir / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    job = WorkerJob(
        system=spec.key,
        model=model,
        workloads_path=plan.work_dir / "workloads.json",
        workload_names=[w.name for w in workloads],
        outputs_dir=plan.work_dir / "outputs",
        result_path=jobs_dir / f"{spec.key}-{model.key}.result.json",
    )
    job_path = jobs_dir / f"{spec.key}-{model.key}.job.json"
    job_path.write_text(json.dumps(job.to_json(), indent=1))
    job.result_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "true",
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmark.worker", str(job_path)],
            cwd=REPO_ROOT,
            env=env,
            timeout=WORKER_TIMEOUT_S,
            check=False,
        )
        failure = None if completed.returncode == 0 else f"worker exited with code {completed.returncode}"
    except subprocess.TimeoutExpired:
        failure = f"worker timed out after {WORKER_TIMEOUT_S} s"
    if failure or not job.result_path.is_file():
        return [
            Measurement(w.name, spec.key, 1, error=failure or "worker wrote no result") for w in workloads
        ]
    return [Measurement.from_json(item) for item in json.loads(job.result_path.read_text())]


def _run_server(
    spec: SystemSpec, model: PreparedModel, workloads: list[Workload], plan: RunPlan
) -> list[Measurement]:
    """Start the server on this export, then measure each workload at each concurrency."""
    config_path = model.repositories[spec.weight_format]
    log_path = plan.work_dir / "logs" / f"{spec.key}-{model.key}.log"
    results = []
    try:
        with ServerProcess(config_path, log_path, *spec.server_args, models=[model.served_name]) as server:
            runner = ServerRunner(spec, model, server.base_url)
            memory = MemoryProbe(server.pid)
            for workload in workloads:
                for index, concurrency in enumerate(concurrencies(plan.config, spec, workload.spec)):
                    try:
                        # The same server just ran this request at the first concurrency: already warm.
                        measurement, output = measure(runner, workload, spec.key, concurrency, memory,
                                                      full_warmup=index == 0)  # fmt: skip
                        np.save(
                            output_path(plan.work_dir / "outputs", workload.name, measurement.row_key), output
                        )
                    except Exception as exc:
                        measurement = Measurement.failed(workload.name, spec.key, concurrency, exc)
                    log(f"    {spec.key} x{concurrency} {workload.name}: {measurement.summary()}")
                    results.append(measurement)
            runner.close()
    except Exception as exc:
        log(f"    {spec.key}: {exc}")
        done = {(m.workload, m.concurrency) for m in results}
        results += [
            Measurement.failed(w.name, spec.key, c, exc)
            for w in workloads
            for c in concurrencies(plan.config, spec, w.spec)
            if (w.name, c) not in done
        ]
    return results


def run(plan: RunPlan) -> int:
    """The whole benchmark; returns the exit code (non-zero when a system failed)."""
    started = time.monotonic()
    config = plan.config
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    (plan.work_dir / "outputs").mkdir(exist_ok=True)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    log(f"benchmark '{config.name}' on {machine['cpu']} ({machine['cores']} cores); work dir {plan.work_dir}")
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"warning: load average {load:.2f} at start: other work on this machine will skew the figures")

    specs = [s for s in config.workloads if s.name in plan.workload_names]
    needed_models = tuple(choice for choice in config.models if any(s.model_key == choice.key for s in specs))
    formats = tuple(
        f
        for f in WEIGHT_FORMATS
        if any(s.weight_format == f and s.kind in (Kind.SERVER, Kind.BARE_OPENVINO) for s in plan.systems)
    )
    peer_samples = config.peer_calibration_samples if any(s.static_int8 for s in plan.systems) else None
    models = prepare_models(
        needed_models,
        formats,
        plan.work_dir,
        plan.source_overrides,
        log,
        exports_dir=plan.exports_dir,
        st_static_samples=peer_samples,
    )

    from transformers import AutoTokenizer

    workloads = []
    for spec in specs:
        tokenizer = AutoTokenizer.from_pretrained(models[spec.model_key].source)
        workloads.append(generate(spec, tokenizer))
        log(f"workload {spec.name}: {spec.title}: {workloads[-1].tokens} tokens per request")
    save(workloads, plan.work_dir / "workloads.json")

    measurements: list[Measurement] = []
    for system in plan.systems:
        for model in models.values():
            chosen = [w for w in workloads if w.spec.model_key == model.key and runs(config, system, w.spec)]
            if not chosen:
                continue
            log(f"system {system.label} on {model.key} ({', '.join(w.name for w in chosen)})")
            runner = _run_worker if system.in_process else _run_server
            measurements += runner(system, model, chosen, plan)

    rows = analysis.build_rows(workloads, measurements, plan.work_dir / "outputs")
    exports = analysis.export_reports(models)
    checks = analysis.check_targets(config, rows, exports)
    machine["duration_min"] = round((time.monotonic() - started) / 60, 1)
    model_labels = {key: model.label for key, model in models.items()}
    block = report.markdown(config, workloads, rows, checks, machine, model_labels, exports)
    report.write_json(
        plan.out_dir / "results.json", config, workloads, rows, checks, machine, model_labels, exports
    )
    report.chart(plan.out_dir / "chart.png", workloads, rows, machine)
    (plan.out_dir / "results.md").write_text(block + "\n", encoding="utf-8")
    if plan.table_page is not None:
        report.update_page(plan.table_page, block)
    click.echo(block)
    written = [plan.out_dir / "results.json", plan.out_dir / "chart.png", plan.out_dir / "results.md"]
    table = f", table in {plan.table_page}" if plan.table_page else ""
    log("wrote " + ", ".join(str(p) for p in written) + table)
    failed = [row for row in rows if row.error]
    if failed:
        log(
            f"{len(failed)} measurement(s) failed: "
            + "; ".join(f"{r.workload} {r.system}: {r.error}" for r in failed)
        )
    return 1 if failed else 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--tiny", is_flag=True, help="Tiny models and few items: proves the harness end to end in minutes."
)
@click.option(
    "--systems",
    help=f"Comma-separated subset of: {', '.join(s.key for s in SYSTEMS)} "
    f"({REFERENCE_SYSTEM} is always run: it is the reference).",
)
@click.option(
    "--workloads", "workload_names", help="Comma-separated subset of the workloads (R1, R2, R3, E1, ...)."
)
@click.option(
    "--work_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Exports, server logs, raw outputs (default benchmark/work/<config>).",
)
@click.option(
    "--out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results.json, results.md and chart.png go (default: benchmark/ for a complete full "
    "run, else the work dir).",
)
@click.option(
    "--page",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Markdown page whose table to regenerate (default: docs/benchmark.md for a complete full run, "
    "else none).",
)
@click.option(
    "--reranker_source",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Use this Hugging Face folder as the reranker instead of building it.",
)
@click.option(
    "--embedder_source",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Use this Hugging Face folder as the embedder instead of all-MiniLM-L6-v2.",
)
@click.option(
    "--exports_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Use the exports in this folder instead of exporting: <model key>-<weight format>/config.json "
    "(reranker-int8/config.json, embedder-fp32/config.json, ...), one model each.",
)
def main(
    tiny: bool,
    systems: str | None,
    workload_names: str | None,
    work_dir: Path | None,
    out_dir: Path | None,
    page: Path | None,
    reranker_source: Path | None,
    embedder_source: Path | None,
    exports_dir: Path | None,
) -> None:
    """Measure HF, sentence-transformers, our server and the bare OpenVINO model on the same workloads."""
    config = CONFIGS["tiny" if tiny else "full"]
    chosen_systems = tuple(SYSTEMS)
    if systems:
        keys = {key.strip() for key in systems.split(",")} | {REFERENCE_SYSTEM}
        unknown = keys - {s.key for s in SYSTEMS}
        if unknown:
            raise click.BadParameter(
                f"unknown system(s): {', '.join(sorted(unknown))}", param_hint="--systems"
            )
        chosen_systems = tuple(s for s in SYSTEMS if s.key in keys)
    names = tuple(s.name for s in config.workloads)
    if workload_names:
        wanted = tuple(name.strip() for name in workload_names.split(","))
        unknown = set(wanted) - set(names)
        if unknown:
            raise click.BadParameter(
                f"unknown workload(s): {', '.join(sorted(unknown))}", param_hint="--workloads"
            )
        names = tuple(n for n in names if n in wanted)
    overrides = {
        key: path for key, path in (("reranker", reranker_source), ("embedder", embedder_source)) if path
    }
    plan = RunPlan(
        config,
        chosen_systems,
        names,
        work_dir or BENCH_DIR / "work" / config.name,
        BENCH_DIR,
        None,
        overrides,
        exports_dir,
    )
    official = plan.complete and config.name == "full" and not overrides and exports_dir is None
    plan = RunPlan(
        config,
        chosen_systems,
        names,
        plan.work_dir,
        out_dir or (BENCH_DIR if official else plan.work_dir),
        page or (TABLE_PAGE if official else None),
        overrides,
        exports_dir,
    )
    sys.exit(run(plan))
