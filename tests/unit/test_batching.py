"""The batching core (serving/pipelines/batching.py) in process, with a recording ModelRunner.

The runner stands in for OpenVINO: it records each batch it is given and answers, for every row,
the row's first body token. Each test gives its rows distinct token ids, so a result tells which
row it came from and a recorded batch tells which jobs shared it. The worker thread is the real
one: to lay out a queue before any batch forms, a test first submits a `hold` job, whose batch
blocks the only worker until the test releases it.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from serving.pipelines.batching import BatchPolicy, BatchScheduler, Job, JobCancelled, PostProcess
from serving.pipelines.framing import EncodedBatch, Frame, RaggedTokens, whole_texts

CLS, SEP, PAD = 101, 102, 0
FRAME = Frame(head=np.array([CLS]), tail=np.array([SEP]), body_type_id=0)  # 2 tokens of overhead
HOLD_TOKEN = 9999  # a batch holding this token blocks until the test releases it
POISON_TOKEN = 6666  # a batch holding this token fails
WAIT = 30  # seconds: only reached when the scheduler hangs


class RecordingRunner:
    """One infer slot; records (input_ids, attention_mask) of every batch; fails on POISON_TOKEN."""

    slots = 1

    def __init__(self) -> None:
        self.batches: list[EncodedBatch] = []
        self.release = threading.Event()
        self.holding = threading.Event()
        self.closed = False

    def infer(self, slot: int, batch: EncodedBatch) -> np.ndarray:
        if (batch.input_ids == HOLD_TOKEN).any():
            self.holding.set()
            assert self.release.wait(WAIT), "the test never released the held batch"
        self.batches.append(batch)
        if (batch.input_ids == POISON_TOKEN).any():
            raise RuntimeError("the device failed")
        return batch.input_ids[:, len(FRAME.head)].astype(np.float32)

    def close(self) -> None:
        self.closed = True

    def batch_tokens(self) -> list[set[int]]:
        """The body tokens of each recorded batch (specials and padding left out)."""
        return [set(batch.input_ids.ravel().tolist()) - {CLS, SEP, PAD} for batch in self.batches]


def identity(part: EncodedBatch, output: np.ndarray) -> np.ndarray:
    return output


def job(rows: list[list[int]], postprocess: PostProcess = identity) -> Job:
    return Job(FRAME, whole_texts(RaggedTokens.from_lists(rows)), postprocess)


def rows_of(token: int, count: int, body_length: int) -> list[list[int]]:
    return [[token] * body_length for _ in range(count)]


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()


@pytest.fixture
def schedule(runner: RecordingRunner):
    """schedule(policy) -> a BatchScheduler over `runner`, closed after the test."""
    made: list[BatchScheduler] = []

    def make(policy: BatchPolicy | None = None) -> BatchScheduler:
        made.append(BatchScheduler(runner, policy or BatchPolicy(), pad_token_id=PAD, label="unit"))
        return made[-1]

    yield make
    runner.release.set()
    for scheduler in made:
        scheduler.close()


def hold(scheduler: BatchScheduler, runner: RecordingRunner) -> Job:
    """Occupy the only worker with a one-row job until runner.release is set."""
    held = job([[HOLD_TOKEN]])
    scheduler.submit(held)
    assert runner.holding.wait(WAIT)
    return held


def test_results_come_back_in_the_jobs_row_order(runner, schedule):
    # Body lengths 3, 7, 1, 5: the batch takes them longest first (rows 1, 3, 0, 2).
    rows = [[11] * 3, [12] * 7, [13] * 1, [14] * 5]
    result = schedule().submit(job(rows)).result()
    assert result.values.tolist() == [11, 12, 13, 14]
    (batch,) = runner.batches
    assert batch.input_ids[:, 1].tolist() == [12, 14, 11, 13]
    assert batch.input_ids.shape == (4, 9)  # the longest row: 7 body tokens + CLS + SEP
    assert batch.attention_mask.sum(axis=1).tolist() == [9, 7, 5, 3]


def test_the_token_budget_bounds_rows_times_padded_length(runner, schedule):
    # Framed lengths 10, 10, then six of 5. Budget 20: two rows of 10, then 4 + 2 rows of 5.
    rows = [[21] * 8, [22] * 8] + [[23 + i] * 3 for i in range(6)]
    result = schedule(BatchPolicy(token_budget=20)).submit(job(rows)).result()
    assert [batch.input_ids.shape for batch in runner.batches] == [(2, 10), (4, 5), (2, 5)]
    assert [(stats.rows, stats.padded_tokens) for stats in result.batches] == [(2, 20), (4, 20), (2, 10)]
    assert result.values.tolist() == [21, 22, 23, 24, 25, 26, 27, 28]


def test_max_batch_size_bounds_the_rows_of_a_batch(runner, schedule):
    rows = [[30 + i] * 2 for i in range(7)]
    result = schedule(BatchPolicy(token_budget=10_000, max_batch_size=3)).submit(job(rows)).result()
    assert [batch.input_ids.shape[0] for batch in runner.batches] == [3, 3, 1]
    assert result.values.tolist() == [30, 31, 32, 33, 34, 35, 36]


def test_a_row_longer_than_the_budget_still_runs_alone(runner, schedule):
    result = schedule(BatchPolicy(token_budget=4)).submit(job([[41] * 10, [42] * 10])).result()
    assert [batch.input_ids.shape for batch in runner.batches] == [(1, 12), (1, 12)]
    assert result.values.tolist() == [41, 42]


def test_the_anchor_sets_the_width_and_other_jobs_fill_it_with_rows_no_longer(runner, schedule):
    scheduler = schedule()
    hold(scheduler, runner)
    # Both have had no tokens served: the earlier one (first) anchors, padded to its 10 tokens.
    first = scheduler.submit(job([[51] * 8, [52] * 8]))
    second = scheduler.submit(job([[53] * 18, [54] * 2]))
    runner.release.set()
    assert first.result(WAIT).values.tolist() == [51, 52]
    assert second.result(WAIT).values.tolist() == [53, 54]
    _, shared, rest = runner.batches
    assert shared.input_ids.shape == (3, 10)
    assert shared.input_ids[:, 1].tolist() == [51, 52, 54]
    assert rest.input_ids.shape == (1, 20)
    assert second.result().batches[0].requests == 1  # only the anchor's batch is reported to it


def test_a_two_row_request_is_not_held_back_by_a_ten_thousand_row_one(runner, schedule):
    # 100 rows of 6 tokens fill the budget; the big job needs 100 batches.
    scheduler = schedule(BatchPolicy(token_budget=600, max_batch_size=100))
    hold(scheduler, runner)
    big = scheduler.submit(job(rows_of(61, 10_000, 4)))
    small = scheduler.submit(job(rows_of(62, 2, 4)))
    runner.release.set()
    assert small.result(WAIT).values.tolist() == [62, 62]
    assert big.result(WAIT).values.shape == (10_000,)
    tokens = runner.batch_tokens()
    assert len(tokens) == 1 + 100 + 1  # the held batch, 10,002 rows in batches of 100, the last 2 rows
    # The big job anchored the first free batch (it came first); its served tokens then put the
    # small one first: the small job's two rows ran in the next batch, topped up with 98 big rows.
    assert tokens[1] == {61}
    assert tokens[2] == {61, 62}
    assert runner.batches[2].input_ids.shape == (100, 6)
    assert all(62 not in batch for batch in tokens[3:])


def test_without_cross_request_batching_a_batch_holds_one_job(runner, schedule):
    scheduler = schedule(BatchPolicy(cross_request=False))
    hold(scheduler, runner)
    first = scheduler.submit(job(rows_of(71, 3, 4)))
    second = scheduler.submit(job(rows_of(72, 3, 4)))
    runner.release.set()
    first.result(WAIT), second.result(WAIT)
    assert runner.batch_tokens()[1:] == [{71}, {72}]


def test_cancelling_a_job_drops_its_waiting_rows(runner, schedule):
    scheduler = schedule(BatchPolicy(max_batch_size=1))
    hold(scheduler, runner)
    cancelled = job(rows_of(81, 5, 3))
    future = scheduler.submit(cancelled)
    kept = scheduler.submit(job(rows_of(82, 2, 3)))
    assert scheduler.waiting == 2
    scheduler.cancel(cancelled)
    assert scheduler.waiting == 1
    with pytest.raises(JobCancelled):
        future.result(WAIT)
    runner.release.set()
    assert kept.result(WAIT).values.tolist() == [82, 82]
    assert runner.batch_tokens()[1:] == [{82}, {82}]


def test_cancelling_the_awaiting_task_cancels_the_job(runner, schedule):
    scheduler = schedule()
    hold(scheduler, runner)
    waiting = job(rows_of(85, 3, 3))

    async def cancel_while_waiting() -> None:
        task = asyncio.ensure_future(scheduler.run(waiting))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_while_waiting())
    assert scheduler.waiting == 0
    assert waiting.future.done()
    runner.release.set()
    assert scheduler.submit(job([[86]])).result().values.tolist() == [86]
    assert all(85 not in batch for batch in runner.batch_tokens())


def test_a_failed_batch_fails_only_the_jobs_with_rows_in_it(runner, schedule):
    scheduler = schedule()
    hold(scheduler, runner)
    poisoned = scheduler.submit(job([[POISON_TOKEN] * 3]))  # framed length 5: the anchor, L = 5
    beside = scheduler.submit(job([[91] * 3]))  # 5 tokens: shares the poisoned batch
    longer = scheduler.submit(job([[92] * 7]))  # 9 tokens > L: waits for the next batch
    runner.release.set()
    for failed in (poisoned, beside):
        with pytest.raises(RuntimeError, match="the device failed"):
            failed.result(WAIT)
    assert longer.result(WAIT).values.tolist() == [92]
    assert scheduler.submit(job([[93]])).result().values.tolist() == [93]  # the worker lives on


def test_a_failing_postprocess_fails_only_its_own_job(runner, schedule):
    def broken(part: EncodedBatch, output: np.ndarray) -> np.ndarray:
        raise ValueError("no scores")

    scheduler = schedule()
    hold(scheduler, runner)
    failing = scheduler.submit(job([[94] * 2], broken))
    fine = scheduler.submit(job([[95] * 2]))
    runner.release.set()
    with pytest.raises(ValueError, match="no scores"):
        failing.result(WAIT)
    assert fine.result(WAIT).values.tolist() == [95]
    assert runner.batch_tokens()[1] == {94, 95}  # they did share the batch


def test_a_job_without_rows_is_answered_at_once(runner, schedule):
    result = schedule().submit(job([])).result()
    assert result.values.shape == (0,)
    assert runner.batches == []


def test_closing_fails_the_waiting_jobs_and_refuses_new_ones(runner, schedule):
    scheduler = schedule()
    held = hold(scheduler, runner)
    waiting = scheduler.submit(job([[97]]))
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    with pytest.raises(RuntimeError, match="unloaded"):
        waiting.result(WAIT)
    runner.release.set()
    closer.join(WAIT)
    assert runner.closed
    assert held.future.result(WAIT).values.tolist() == [HOLD_TOKEN]  # the running batch finished
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.submit(job([[98]])).result(WAIT)


@pytest.mark.parametrize(("budget", "size"), [(0, 64), (8192, 0)])
def test_a_policy_needs_room_for_a_row(budget, size):
    with pytest.raises(ValueError, match=">= 1"):
        BatchPolicy(token_budget=budget, max_batch_size=size)
