"""The measurement loop shared by every system: warm up, repeat one request, time each, watch memory.

Peak memory is the resident-set high-water mark (VmHWM) of the process that does the work (the
server process, or the worker process an in-process system runs in), reset before each workload
through /proc/<pid>/clear_refs so the figure belongs to that workload and not to an earlier one.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.workloads import RepeatPolicy, Workload

_HWM = re.compile(r"^VmHWM:\s+(\d+) kB", re.MULTILINE)


class MemoryProbe:
    """Resident-set high-water mark of a process and its children, in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _pids(self) -> list[int]:
        import psutil

        try:
            process = psutil.Process(self.pid)
            return [self.pid] + [child.pid for child in process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def reset(self) -> None:
        for pid in self._pids():
            # "5" resets the peak RSS (Linux >= 4.0); where refused, the peak covers the process lifetime.
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float | None:
        total_kb = 0
        for pid in self._pids():
            try:
                match = _HWM.search(Path(f"/proc/{pid}/status").read_text())
            except OSError:
                continue
            if match:
                total_kb += int(match.group(1))
        return round(total_kb / 1024, 1) if total_kb else None


@dataclass
class Measurement:
    """What one system did on one workload at one concurrency."""

    workload: str
    system: str  # SystemSpec.key
    concurrency: int
    requests: int = 0
    items_per_request: int = 0
    tokens_per_request: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    error: str | None = None

    @property
    def row_key(self) -> str:
        return f"{self.system}@c{self.concurrency}"

    @property
    def items_per_s(self) -> float | None:
        return (
            self.requests * self.items_per_request / self.wall_s
            if self.wall_s > 0 and self.requests
            else None
        )

    @property
    def tokens_per_s(self) -> float | None:
        return (
            self.requests * self.tokens_per_request / self.wall_s
            if self.wall_s > 0 and self.requests
            else None
        )

    def latency_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def to_json(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "system": self.system,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "items_per_request": self.items_per_request,
            "tokens_per_request": self.tokens_per_request,
            "wall_s": round(self.wall_s, 4),
            "latencies_ms": [round(value, 3) for value in self.latencies_ms],
            "peak_rss_mb": self.peak_rss_mb,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Measurement:
        return cls(**data)  # type: ignore[arg-type]

    @classmethod
    def failed(cls, workload: str, system: str, concurrency: int, exc: BaseException) -> Measurement:
        """A measurement that could not be made: the exception (type and message, cut to 300 characters)."""
        return cls(workload, system, concurrency, error=f"{exc.__class__.__name__}: {exc}"[:300])

    def summary(self) -> str:
        """One progress line: the figures, or why it failed."""
        if self.error:
            return f"FAILED {self.error}"
        return (
            f"{self.requests} requests, {self.items_per_s:.1f} items/s, "
            f"p50 {self.latency_percentile(50):.1f} ms, peak {self.peak_rss_mb} MB"
        )


def _requests_wanted(policy: RepeatPolicy, concurrency: int) -> tuple[int, int]:
    """(minimum, maximum) timed requests: at least one per client, so all of them overlap."""
    minimum = max(policy.min_requests, concurrency)
    return minimum, max(minimum, policy.max_requests)


def _in_parallel(task: Callable[[], object], copies: int) -> None:
    if copies == 1:
        task()
        return
    with ThreadPoolExecutor(max_workers=copies) as pool:
        for future in [pool.submit(task) for _ in range(copies)]:
            future.result()


def measure(
    call: Callable[[Workload], np.ndarray],
    workload: Workload,
    system: str,
    concurrency: int,
    memory: MemoryProbe,
    full_warmup: bool = True,
) -> tuple[Measurement, np.ndarray]:
    """Warm up, then time requests from `concurrency` client threads; returns the figures and one output.

    full_warmup=False skips the full warm-up requests, for a system that just ran this workload.
    """
    policy = workload.spec.repeat
    result = Measurement(
        workload.name,
        system,
        concurrency,
        items_per_request=workload.n_items,
        tokens_per_request=workload.tokens,
    )
    for _ in range(policy.warmup_requests if full_warmup else 0):
        call(workload)
    if concurrency > 1:
        # Open every client's connection (and whatever else concurrent use creates on demand)
        # before the clock starts: a small request from each client at once.
        _in_parallel(lambda: call(workload.head(2)), concurrency)
    memory.reset()

    minimum, maximum = _requests_wanted(policy, concurrency)
    lock = threading.Lock()
    issued = 0
    outputs: list[np.ndarray] = []
    errors: list[BaseException] = []
    started = time.perf_counter()

    def take_turn() -> bool:
        nonlocal issued
        with lock:
            enough = issued >= minimum and time.perf_counter() - started >= policy.min_seconds
            if errors or enough or issued >= maximum:
                return False
            issued += 1
            return True

    def client() -> None:
        while take_turn():
            sent = time.perf_counter()
            try:
                output = call(workload)
            except BaseException as exc:  # reported in the results, the other clients stop
                with lock:
                    errors.append(exc)
                return
            latency_ms = (time.perf_counter() - sent) * 1000
            with lock:
                result.latencies_ms.append(latency_ms)
                if not outputs:
                    outputs.append(output)

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    result.requests = len(result.latencies_ms)
    result.peak_rss_mb = memory.peak_mb()
    if errors:
        raise errors[0]
    return result, outputs[0]
