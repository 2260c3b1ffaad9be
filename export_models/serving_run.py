"""The server's own pipeline at export time: calibration inputs and scores exactly as the server makes them.

Quantization needs inputs that look like what the model will be fed, and the accuracy report
needs the scores the server would return. Both come from serving/pipelines run in-process on the
export's IRs: the tokenizer wrapper on the tokenizer IR, prompt templates and pair framing from
the export's TokenizerInfo, chunking, the batching core's batches, then the server's scoring
(sigmoid, max over chunks) or pooling (post-pooling steps, normalization).

- RecordingRunner stands in for the model while calibration inputs are collected: it keeps each
  padded batch the batching core hands it and answers zeros.
- compiled_runner runs a real model (fp32 reference, quantized candidate).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import openvino as ov

from export_models.calibration_data import EmbeddingsRequest, Request, RerankRequest
from serving.errors import ServingError
from serving.pipelines.batching import BatchPolicy, BatchScheduler, Job, JobResult, ModelRunner
from serving.pipelines.blocking import run_blocking
from serving.pipelines.embeddings import EmbeddingsParams, EmbeddingsPipeline
from serving.pipelines.framing import EncodedBatch
from serving.pipelines.inference import OpenVINORunner
from serving.pipelines.rerank import RerankParams, RerankPipeline
from serving.pipelines.run import RequestLimits
from serving.pipelines.tokenize import Tokenizer
from serving.registry.loader import result_output_index
from serving.repository.config import EmbeddingsOptions, RerankOptions
from serving.repository.layout import Pooling, Task, TokenizerInfo

log = logging.getLogger(__name__)

ModelInputs = dict[str, np.ndarray]
Pipeline = RerankPipeline | EmbeddingsPipeline


@dataclass(frozen=True)
class ServingSetup:
    """What the server would know about the exported version (its IRs' runtime info, graph options)."""

    task: Task
    tokenizer_ir: ov.Model  # never rewired here: each pipeline gets a clone
    info: TokenizerInfo
    rerank_options: RerankOptions = field(default_factory=RerankOptions)
    pooling: Pooling = Pooling.CLS
    normalize: bool = True
    post_pooling: tuple[str, ...] = ()


class RecordingRunner:
    """A ModelRunner that keeps the inputs of every batch and answers zeros of the model's output shape."""

    def __init__(self, model: ov.Model, task: Task) -> None:
        self.input_names = [port.get_any_name() for port in model.inputs]
        output = model.outputs[result_output_index(model, task)].get_partial_shape()
        self._rank = output.rank.get_length()
        last = output[self._rank - 1]
        self._width = last.get_length() if last.is_static else 1
        self.batches: list[ModelInputs] = []

    @property
    def slots(self) -> int:
        return 1

    def infer(self, slot: int, batch: EncodedBatch) -> np.ndarray:
        available = batch.as_inputs()
        self.batches.append({name: available[name] for name in self.input_names})
        rows, length = batch.shape
        shape = (rows, length, self._width) if self._rank == 3 else (rows, self._width)
        return np.zeros(shape, dtype=np.float32)

    def close(self) -> None:
        pass


# The index of the request a task is sending.
_client_index: contextvars.ContextVar[int] = contextvars.ContextVar("client_index")


class _HeldScheduler(BatchScheduler):
    """A BatchScheduler that holds the jobs submitted to it until `release()`, then queues them in
    request order: the batches it forms are those of all the requests arriving at once, and the
    same on every run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: list[tuple[int, Job]] | None = []
        self._held_lock = threading.Lock()

    @property
    def held(self) -> int:
        with self._held_lock:
            return len(self._held or ())

    def submit(self, job: Job) -> concurrent.futures.Future[JobResult]:
        with self._held_lock:
            if self._held is not None:
                self._held.append((_client_index.get(), job))
                return job.future
        return super().submit(job)

    def release(self) -> None:
        with self._held_lock:
            held, self._held = sorted(self._held or (), key=lambda item: item[0]), None
        for _, job in held:
            super().submit(job)


def compiled_runner(core: ov.Core, model: ov.Model, config: dict[str, str], task: Task) -> OpenVINORunner:
    compiled = core.compile_model(model, "CPU", config)
    return OpenVINORunner(compiled, 1, result_output_index(model, task))


@contextlib.contextmanager
def open_pipeline(core: ov.Core, setup: ServingSetup, runner: ModelRunner) -> Iterator[Pipeline]:
    """The server's pipeline around `runner` (closed on exit, before the Core that made it goes).

    Embedders truncate inputs over the limit (the server would refuse them without --truncate):
    long texts then calibrate and count as the truncated inputs they are.
    """
    tokenizer = Tokenizer(core, setup.tokenizer_ir.clone(), "export:tokenizer")
    # One call alone first, as the server's warm-up does: OpenVINO's Python binding sets up tensor
    # access on first use, and two threads doing that at once can deadlock.
    run_blocking(tokenizer.tokenize(["warm up"]))
    scheduler = _HeldScheduler(runner, BatchPolicy(), setup.info.pad_token_id, "export")
    pipeline: Pipeline
    if setup.task is Task.RERANK:
        pipeline = RerankPipeline(tokenizer, scheduler, setup.info, RequestLimits(), setup.rerank_options)
    else:
        options = EmbeddingsOptions(setup.pooling, normalize_embeddings=setup.normalize, truncate=True)
        pipeline = EmbeddingsPipeline(
            # hidden_size bounds a request's `dimensions`, never asked for here.
            tokenizer, scheduler, setup.info, RequestLimits(), options, hidden_size=0, vocab_size=None,
            post_pooling=setup.post_pooling,
        )  # fmt: skip
    try:
        yield pipeline
    finally:
        pipeline.close()


async def run_request(pipeline: Pipeline, request: Request) -> np.ndarray:
    """Rerank scores (sigmoid, one per document) or embeddings (one row per input), as served."""
    if isinstance(request, RerankRequest):
        assert isinstance(pipeline, RerankPipeline)
        return (await pipeline.rerank(request.query, list(request.documents), RerankParams())).scores
    assert isinstance(pipeline, EmbeddingsPipeline) and isinstance(request, EmbeddingsRequest)
    return (await pipeline.embed(list(request.texts), None, EmbeddingsParams())).vectors


async def _run_all(pipeline: Pipeline, requests: list[Request]) -> list[np.ndarray | None]:
    """Every request at once, one task each, their jobs queued together (_HeldScheduler): the
    server's cross-request batching at work. None for a request the server would refuse (a query
    too long to leave room for a document)."""
    scheduler = pipeline.scheduler
    assert isinstance(scheduler, _HeldScheduler)
    results: list[np.ndarray | None] = [None] * len(requests)
    settled: list[int] = []  # requests that ended before reaching the scheduler

    async def client(index: int) -> None:
        _client_index.set(index)  # each task runs in its own copy of the context
        try:
            results[index] = await run_request(pipeline, requests[index])
        except ServingError as error:
            log.info("request skipped: %s", error)
        finally:
            settled.append(index)

    clients = [asyncio.ensure_future(client(index)) for index in range(len(requests))]
    while scheduler.held + len(settled) < len(requests):
        await asyncio.sleep(0.005)
    scheduler.release()
    for outcome in await asyncio.gather(*clients, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
    return results


def model_inputs(
    core: ov.Core, setup: ServingSetup, model: ov.Model, requests: list[Request]
) -> tuple[list[Request], list[ModelInputs]]:
    """The requests the server would accept, and the padded batches it would feed the model when
    they all arrive at once (one entry per batch)."""
    runner = RecordingRunner(model, setup.task)
    with open_pipeline(core, setup, runner) as pipeline:
        results = run_blocking(_run_all(pipeline, requests))
    return [r for r, result in zip(requests, results, strict=True) if result is not None], runner.batches


def outputs(
    core: ov.Core, setup: ServingSetup, model: ov.Model, config: dict[str, str], requests: list[Request]
) -> list[np.ndarray | None]:
    """What the server would answer for each request (None: refused) with `model` compiled with
    `config` on CPU."""
    with open_pipeline(core, setup, compiled_runner(core, model, config, setup.task)) as pipeline:
        return run_blocking(_run_all(pipeline, requests))
