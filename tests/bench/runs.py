"""The two `python -m benchmark --tiny` runs the benchmark tests check, started in the background.

A tiny run takes a minute or two and is mostly one process after another, each starting up on one
core: so it starts as soon as its exports are there (tests/conftest.py requests `benchmark_runs` at
the first test of the session) and the benchmark tests run last, while the rest of the suite has
run meanwhile. Loaded as a plugin by tests/conftest.py, so that the fixture is visible from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark import report
from benchmark.config import WEIGHT_FORMATS
from benchmark.run import TABLE_PAGE
from benchmark.worker import output_path
from benchmark.workloads import Workload, load
from serving.repository.layout import Pooling
from tests.support.exports import Exported, SessionExports
from tests.support.repository import copy_model, set_graph_options, write_config

REPO_ROOT = Path(__file__).resolve().parents[2]
# The benchmark's model keys -> the session's exports of the same tiny models.
BENCH_MODELS = {"reranker": "xlmr", "embedder": "minilm"}
BENCH_EXPORTS = [(kind, f) for kind in BENCH_MODELS.values() for f in WEIGHT_FORMATS]
PAGE_TEXT = f"""# Title

Intro that must stay.

{report.TABLE_START}
stale table
{report.TABLE_END}

## After the table

Must stay too.
"""


@dataclass(frozen=True)
class BenchRun:
    completed: subprocess.CompletedProcess[str]
    work_dir: Path  # workloads.json, outputs/<workload>__<row>.npy
    out_dir: Path  # results.json, results.md, chart.png (and the tiny run's benchmark.md)

    def results(self) -> dict[str, Any]:
        assert self.completed.returncode == 0, self.completed.stderr[-4000:]
        return json.loads((self.out_dir / "results.json").read_text())

    def workloads(self) -> dict[str, Workload]:
        return {workload.name: workload for workload in load(self.work_dir / "workloads.json")}

    def output(self, workload: str, system: str, concurrency: int) -> np.ndarray:
        return np.load(output_path(self.work_dir / "outputs", workload, f"{system}@c{concurrency}"))


@dataclass(frozen=True)
class BenchRuns:
    tiny: BenchRun  # every system, every workload, on the session's exports
    partial: BenchRun  # --systems server-fp32 --workloads E1, on an export whose graph says CLS pooling
    page_before: bytes  # the checkout's docs/benchmark.md before the partial run
    page_after: bytes


def exports_dir(folder: Path, repositories: dict[str, Path]) -> Path:
    """The layout --exports_dir takes: <model key>-<weight format> -> a repository of one model."""
    folder.mkdir(parents=True)
    for name, repository in repositories.items():
        (folder / name).symlink_to(repository, target_is_directory=True)
    return folder


class BenchmarkJob:
    """Runs the two benchmark commands one after the other on a thread; `stop` ends a running one."""

    def __init__(self) -> None:
        self.result: Future[BenchRuns] = Future()
        self._process: subprocess.Popen[str] | None = None
        self._stopped = threading.Event()

    def run(self, work_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "benchmark", "--tiny", "--work_dir", str(work_dir), *args]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if self._stopped.is_set():
            raise RuntimeError("the session ended before the benchmark ran")
        self._process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        stdout, stderr = self._process.communicate(timeout=1800)
        return subprocess.CompletedProcess(command, self._process.returncode, stdout, stderr)

    def stop(self) -> None:
        self._stopped.set()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()


def run_both(
    job: BenchmarkJob, root: Path, exports: dict[str, Exported], xlmr_source: Path, minilm_source: Path
) -> BenchRuns:
    out_dir = root / "tiny-out"
    out_dir.mkdir()
    page = out_dir / "benchmark.md"
    page.write_text(PAGE_TEXT)
    tiny_exports = exports_dir(root / "exports", {name: e.repo for name, e in exports.items()})
    tiny = job.run(
        root / "tiny", "--out_dir", str(out_dir), "--page", str(page), "--exports_dir", str(tiny_exports),
        "--reranker_source", str(xlmr_source), "--embedder_source", str(minilm_source),
    )  # fmt: skip

    # The embedder exported with the wrong pooling: its graph says CLS, the model says mean.
    cls_repo = root / "cls-export"
    copy_model(exports["embedder-fp32"], cls_repo, "test/minilm-cls")
    set_graph_options(cls_repo / "test/minilm-cls", pooling=Pooling.CLS)
    write_config(cls_repo, ["test/minilm-cls"])
    page_before = TABLE_PAGE.read_bytes()
    partial = job.run(
        root / "partial", "--systems", "server-fp32", "--workloads", "E1",
        "--exports_dir", str(exports_dir(root / "cls-exports", {"embedder-fp32": cls_repo})),
        "--embedder_source", str(minilm_source),
    )  # fmt: skip
    return BenchRuns(
        tiny=BenchRun(tiny, root / "tiny", out_dir),
        partial=BenchRun(partial, root / "partial", root / "partial"),  # a partial run writes there
        page_before=page_before,
        page_after=TABLE_PAGE.read_bytes(),
    )


@pytest.fixture(scope="session")
def benchmark_runs(
    session_exports: SessionExports,
    tmp_path_factory: pytest.TempPathFactory,
    xlmr_reranker_source: Path,
    minilm_source: Path,
):
    """Future[BenchRuns]: both runs, started on a thread once the session has their exports."""
    session_exports.prefetch(BENCH_EXPORTS)  # on this thread: it may build the source models
    root = tmp_path_factory.mktemp("bench")
    job = BenchmarkJob()

    def work() -> None:
        try:
            exports = {
                f"{key}-{f}": session_exports.get(kind, f)
                for key, kind in BENCH_MODELS.items()
                for f in WEIGHT_FORMATS
            }
            job.result.set_result(run_both(job, root, exports, xlmr_reranker_source, minilm_source))
        except BaseException as error:  # reported by the benchmark tests
            job.result.set_exception(error)

    thread = threading.Thread(target=work, name="benchmark-runs", daemon=True)
    thread.start()
    yield job.result
    job.stop()
    thread.join(timeout=60)
