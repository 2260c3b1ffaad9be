"""Runs one in-process system on its workloads in a process of its own (its memory is its own).

    python -m benchmark.worker <job.json>

The job names the system, the prepared model, the workloads file and where to write: a JSON list
of measurements (result_path) and each workload's output as .npy (outputs_dir).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.measure import Measurement, MemoryProbe, measure
from benchmark.models import PreparedModel
from benchmark.systems import SYSTEMS_BY_KEY, make_in_process_runner
from benchmark.workloads import load


@dataclass(frozen=True)
class WorkerJob:
    system: str
    model: PreparedModel
    workloads_path: Path
    workload_names: list[str]
    outputs_dir: Path
    result_path: Path

    def to_json(self) -> dict[str, object]:
        return {
            "system": self.system,
            "model": self.model.to_json(),
            "workloads_path": str(self.workloads_path),
            "workload_names": self.workload_names,
            "outputs_dir": str(self.outputs_dir),
            "result_path": str(self.result_path),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WorkerJob:
        return cls(
            system=str(data["system"]),
            model=PreparedModel.from_json(data["model"]),  # type: ignore[arg-type]
            workloads_path=Path(str(data["workloads_path"])),
            workload_names=list(data["workload_names"]),  # type: ignore[call-overload]
            outputs_dir=Path(str(data["outputs_dir"])),
            result_path=Path(str(data["result_path"])),
        )


def output_path(outputs_dir: Path, workload: str, row_key: str) -> Path:
    return outputs_dir / f"{workload}__{row_key.replace('/', '_')}.npy"


def run_job(job: WorkerJob) -> list[Measurement]:
    spec = SYSTEMS_BY_KEY[job.system]
    workloads = [w for w in load(job.workloads_path) if w.name in job.workload_names]
    memory = MemoryProbe(os.getpid())
    results: list[Measurement] = []
    try:
        runner = make_in_process_runner(spec, job.model)
    except Exception as exc:
        traceback.print_exc()
        first_line = (str(exc).strip().splitlines() or [""])[0]
        message = f"could not load: {exc.__class__.__name__}: {first_line}"
        return [Measurement(w.name, spec.key, 1, error=message) for w in workloads]
    for workload in workloads:
        try:
            measurement, output = measure(runner, workload, spec.key, 1, memory)
            np.save(output_path(job.outputs_dir, workload.name, measurement.row_key), output)
        except Exception as exc:
            traceback.print_exc()
            measurement = Measurement.failed(workload.name, spec.key, 1, exc)
        results.append(measurement)
        print(f"    {spec.key} {workload.name}: {measurement.summary()}", file=sys.stderr, flush=True)
    runner.close()
    return results


def main() -> None:
    job = WorkerJob.from_json(json.loads(Path(sys.argv[1]).read_text()))
    results = run_job(job)
    job.result_path.write_text(json.dumps([result.to_json() for result in results], indent=1))


if __name__ == "__main__":
    main()
