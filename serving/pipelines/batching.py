"""The batching core: rows of concurrent requests merged into padded batches under a token budget.

Every caller goes through it: the HTTP routes, the load-time warm-up, the corpus job and the
benchmark's bare-model ceiling. A request submits a Job (its framed sequences, not yet built);
one worker thread per infer request takes the next batch whenever its infer request is free
(continuous batching: nothing waits for a timer, so an idle model runs a lone request at once).

How a batch is formed (under one lock, cheap numpy on row lengths):
- the anchor is the waiting job that has had the fewest padded tokens computed so far (a new
  request has had none), so a request with 10,000 chunks cannot hold back a 2-document request
  for its whole duration: the small one anchors the next free batch;
- the batch is padded to the anchor's longest waiting row, L, and holds at most
  min(max_batch_size, token_budget // L) rows: the anchor's rows first, longest first, then the
  longest rows <= L of the other jobs (fewest tokens served first), so rows of similar length
  share a batch and padding stays small.

Building the padded arrays, running the model and post-processing (pooling, scores) happen on
the worker thread, off the event loop. A job's results come back in its own row order; a
cancelled job (client gone, timeout) loses its waiting rows at once, and a failed batch fails
only the jobs that had rows in it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from serving.pipelines.framing import EncodedBatch, Frame, Segments, build_batch, framed_lengths

log = logging.getLogger(__name__)

# Turns (a job's rows of the batch, the model output for those rows) into one result row each.
PostProcess = Callable[[EncodedBatch, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BatchPolicy:
    token_budget: int = 8192  # rows x padded length of one batch
    max_batch_size: int = 64
    # False: a batch holds the rows of one request only (how the server batched before requests
    # shared batches; kept to measure the difference).
    cross_request: bool = True

    def __post_init__(self) -> None:
        if self.token_budget < 1 or self.max_batch_size < 1:
            raise ValueError("token_budget and max_batch_size must be >= 1")


@dataclass(frozen=True)
class BatchStats:
    """What one inference call processed, for metrics."""

    rows: int
    padded_tokens: int
    seconds: float
    requests: int = 1  # jobs that had rows in the batch


class ModelRunner(Protocol):
    """Runs one padded batch on infer request `slot` (each worker thread owns one slot)."""

    @property
    def slots(self) -> int: ...

    def infer(self, slot: int, batch: EncodedBatch) -> np.ndarray: ...

    def close(self) -> None: ...


class JobCancelled(Exception):
    """The job was cancelled before all its rows ran."""


@dataclass
class JobResult:
    values: np.ndarray  # one result row per segment, in segment order
    batches: list[BatchStats]
    queue_seconds: float  # submitted -> first batch started
    inference_seconds: float  # first batch started -> last batch done


@dataclass(eq=False)
class Job:
    """One request's sequences: a frame (query/specials) around spans of token ids."""

    frame: Frame
    segments: Segments
    postprocess: PostProcess
    lengths: np.ndarray = field(init=False)  # framed length of each row
    waiting: np.ndarray = field(init=False)  # rows not yet in a batch, longest first
    future: concurrent.futures.Future[JobResult] = field(
        init=False, default_factory=concurrent.futures.Future
    )
    served_tokens: int = 0
    submitted_at: float = 0.0
    started_at: float | None = None
    _values: np.ndarray | None = None
    _done_rows: int = 0
    _stats: list[BatchStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lengths = framed_lengths(self.frame, self.segments)
        self.waiting = np.argsort(-self.lengths, kind="stable")

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def total_tokens(self) -> int:
        return int(self.lengths.sum())

    def _take(self, limit: int, count: int) -> np.ndarray:
        """Up to `count` waiting rows no longer than `limit`, longest first; they stop waiting."""
        # `waiting` is sorted by length, descending: rows <= limit are a suffix of it.
        first = int(np.searchsorted(-self.lengths[self.waiting], -limit, side="left"))
        taken = self.waiting[first : first + count]
        self.waiting = np.concatenate([self.waiting[:first], self.waiting[first + count :]])
        return taken


def _assemble(parts: list[EncodedBatch], pad_token_id: int) -> EncodedBatch:
    """One padded batch from per-job parts of different widths (right padding)."""
    if len(parts) == 1:
        return parts[0]
    rows = sum(part.input_ids.shape[0] for part in parts)
    width = max(part.input_ids.shape[1] for part in parts)
    pad = pad_token_id
    arrays = {
        "input_ids": np.full((rows, width), pad, dtype=parts[0].input_ids.dtype),
        "attention_mask": np.zeros((rows, width), dtype=parts[0].attention_mask.dtype),
        "token_type_ids": np.zeros((rows, width), dtype=parts[0].token_type_ids.dtype),
    }
    start = 0
    for part in parts:
        count, length = part.input_ids.shape
        for name, array in arrays.items():
            array[start : start + count, :length] = getattr(part, name)
        start += count
    return EncodedBatch(**arrays)


def _rows_of(output: np.ndarray, start: int, count: int, width: int) -> np.ndarray:
    """A part's rows of the model output; per-token outputs cut back to the part's own width."""
    rows = output[start : start + count]
    return rows[:, :width] if rows.ndim == 3 else rows


class BatchScheduler:
    """Merges the rows of concurrent jobs into batches; one worker thread per infer request."""

    def __init__(self, runner: ModelRunner, policy: BatchPolicy, pad_token_id: int, label: str) -> None:
        self.runner = runner
        self.policy = policy
        self.pad_token_id = pad_token_id
        self.label = label
        self._lock = threading.Condition()
        self._jobs: list[Job] = []  # jobs with waiting rows, in submission order
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, args=(slot,), name=f"batch-{label}-{slot}", daemon=True)
            for slot in range(max(1, runner.slots))
        ]
        for worker in self._workers:
            worker.start()

    # ---- submitting ------------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future[JobResult]:
        job.submitted_at = time.perf_counter()
        with self._lock:
            if self._closed:
                job.future.set_exception(RuntimeError(f"{self.label} is closed"))
                return job.future
            if job.rows == 0:
                job.future.set_result(JobResult(np.zeros((0,)), [], 0.0, 0.0))
                return job.future
            self._jobs.append(job)
            self._lock.notify()
        return job.future

    def cancel(self, job: Job) -> None:
        """Drop the job's waiting rows; batches already running finish and are discarded."""
        with self._lock:
            if job in self._jobs:
                self._jobs.remove(job)
            if not job.future.done():
                job.future.set_exception(JobCancelled())

    async def run(self, job: Job) -> JobResult:
        """Submit and wait; cancelling the awaiting task cancels the job."""
        future = self.submit(job)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            self.cancel(job)
            raise

    @property
    def waiting(self) -> int:
        """Requests with rows not yet in a batch."""
        return len(self._jobs)

    def close(self) -> None:
        """Stop the workers; jobs still waiting fail."""
        with self._lock:
            self._closed = True
            for job in self._jobs:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"{self.label} was unloaded"))
            self._jobs.clear()
            self._lock.notify_all()
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join(timeout=60)
        self.runner.close()

    # ---- forming batches -------------------------------------------------------------------

    def _next_batch(self) -> list[tuple[Job, np.ndarray]]:
        """Take the rows of the next batch (caller holds the lock; at least one job waits)."""
        by_share = sorted(self._jobs, key=lambda job: (job.served_tokens, job.submitted_at))
        anchor = by_share[0]
        longest = int(anchor.lengths[anchor.waiting[0]])
        capacity = max(1, min(self.policy.max_batch_size, self.policy.token_budget // max(longest, 1)))
        groups: list[tuple[Job, np.ndarray]] = []
        for job in by_share if self.policy.cross_request else [anchor]:
            if capacity == 0:
                break
            rows = job._take(longest, capacity)
            if len(rows):
                groups.append((job, rows))
                capacity -= len(rows)
                job.served_tokens += len(rows) * longest
                if job.started_at is None:
                    job.started_at = time.perf_counter()
        self._jobs = [job for job in self._jobs if len(job.waiting)]
        return groups

    def _work(self, slot: int) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                groups = self._next_batch()
            self._execute(slot, groups)

    def _execute(self, slot: int, groups: list[tuple[Job, np.ndarray]]) -> None:
        started = time.perf_counter()
        try:
            parts = [build_batch(job.frame, job.segments, rows, self.pad_token_id) for job, rows in groups]
            batch = _assemble(parts, self.pad_token_id)
            output = self.runner.infer(slot, batch)
        except BaseException as error:  # the whole batch failed: so do the jobs in it
            log.error("%s: batch of %d rows failed: %s", self.label, sum(len(r) for _, r in groups), error)
            self._fail([job for job, _ in groups], error)
            return
        seconds = time.perf_counter() - started
        stats = BatchStats(
            rows=batch.input_ids.shape[0],
            padded_tokens=int(batch.input_ids.size),
            seconds=seconds,
            requests=len(groups),
        )
        start = 0
        for index, (job, rows) in enumerate(groups):
            count = len(rows)
            width = parts[index].input_ids.shape[1]
            try:
                values = job.postprocess(parts[index], _rows_of(output, start, count, width))
            except BaseException as error:
                self._fail([job], error)
            else:
                # The anchor (the first group) reports the batch, so each batch is counted once.
                self._deliver(job, rows, values, stats if index == 0 else None)
            start += count

    def _deliver(self, job: Job, rows: np.ndarray, values: np.ndarray, stats: BatchStats | None) -> None:
        with self._lock:
            if job.future.done():
                return  # cancelled or failed meanwhile
            if job._values is None:
                job._values = np.empty((job.rows, *values.shape[1:]), dtype=values.dtype)
            job._values[rows] = values
            job._done_rows += len(rows)
            if stats is not None:
                job._stats.append(stats)
            if job._done_rows == job.rows:
                finished = time.perf_counter()
                started = job.started_at or finished
                job.future.set_result(
                    JobResult(
                        values=job._values,
                        batches=job._stats,
                        queue_seconds=started - job.submitted_at,
                        inference_seconds=finished - started,
                    )
                )

    def _fail(self, jobs: list[Job], error: BaseException) -> None:
        with self._lock:
            for job in jobs:
                if job in self._jobs:
                    self._jobs.remove(job)
                if not job.future.done():
                    job.future.set_exception(error)
