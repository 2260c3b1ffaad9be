"""What every API family's routes share: run a model request on the registry's current version.

A route parses its own schema into the task's params (RerankParams, EmbeddingsParams), calls
ModelService.rerank/embed, and shapes its own reply. Here:
which model answers (a name, an alias, or the task's default), the lease on the model version, the
request timeout (504; the request's waiting batches are cancelled), per-request metrics and the
x-*-time headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request

from serving.errors import ModelNotFound, RequestTimedOut, ServingError, TooManyDocuments
from serving.http.metrics import ServerMetrics
from serving.http.middleware import milliseconds
from serving.pipelines.embeddings import EmbeddingsOutcome, EmbeddingsParams, EmbeddingsPipeline
from serving.pipelines.rerank import RerankOutcome, RerankParams, RerankPipeline
from serving.pipelines.run import RequestTimings
from serving.registry import LoadedVersion, ModelRegistry
from serving.repository.layout import Task
from serving.settings import ServerSettings

Outcome = TypeVar("Outcome", RerankOutcome, EmbeddingsOutcome)


@contextmanager
def request_field_names(names: dict[str, str]) -> Iterator[None]:
    """Errors name the route's own request fields (TEI's `texts`, `inputs`), not the pipeline's."""
    try:
        yield
    except ServingError as error:
        error.field = names.get(error.field or "", error.field)
        raise


@dataclass(frozen=True)
class ModelAnswer:
    """A finished model request: which model and version answered, and what it computed.

    `model` is the name the request used (an alias stays an alias), else the configured name."""

    model: str
    version: int
    outcome: Any
    device: str = "CPU"

    @property
    def headers(self) -> dict[str, str]:
        """Timing headers, and the version that answered (useful while versions roll)."""
        return {**timing_headers(self.outcome.timings), "x-model-version": str(self.version)}


def timing_headers(timings: RequestTimings) -> dict[str, str]:
    """TEI's per-request timing headers (milliseconds)."""
    return {
        "x-tokenization-time": milliseconds(timings.tokenization),
        "x-queue-time": milliseconds(timings.queue),
        "x-inference-time": milliseconds(timings.inference),
    }


class ModelService:
    def __init__(self, registry: ModelRegistry, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics

    def default_model(self, task: Task) -> str | None:
        """--default_rerank_model / --default_embeddings_model (None: the one model of the task)."""
        if task is Task.RERANK:
            return self.settings.default_rerank_model
        return self.settings.default_embeddings_model

    def check_count(self, count: int, field: str, limit: int, flag: str) -> None:
        if count > limit:
            raise TooManyDocuments(
                f"{count} items; this server takes at most {limit} per request ({flag})", field=field
            )

    async def _call(
        self,
        request: Request,
        model: str | None,
        task: Task,
        items: int,
        run: Callable[[LoadedVersion], Awaitable[Outcome]],
    ) -> ModelAnswer:
        name = model if model is not None else self.default_model(task)
        try:
            lease = self.registry.acquire(name, task)
        except ModelNotFound as error:
            if model is None and name is not None:
                raise ModelNotFound(f"{error.message}: check --default_{task.value}_model") from error
            raise
        with lease as servable:
            request.state.model = servable.name
            try:
                async with asyncio.timeout(self.settings.request_timeout):
                    outcome = await run(servable)
            except TimeoutError as error:
                raise RequestTimedOut(
                    f"the request took longer than {self.settings.request_timeout:g} s (--request_timeout); "
                    "its remaining batches were cancelled"
                ) from error
        self.metrics.observe_batches(servable.name, outcome.batches)
        self.metrics.documents.labels(request.scope["route"].path, servable.name).observe(items)
        return ModelAnswer(name or servable.name, servable.version, outcome, servable.device)

    async def rerank(
        self, request: Request, model: str | None, query: str, documents: list[str], params: RerankParams
    ) -> ModelAnswer:
        self.check_count(len(documents), "documents", self.settings.max_documents, "--max_documents")

        async def run(servable: LoadedVersion) -> RerankOutcome:
            assert isinstance(servable.pipeline, RerankPipeline)
            return await servable.pipeline.rerank(query, documents, params)

        return await self._call(request, model, Task.RERANK, len(documents), run)

    async def rerank_groups(
        self, request: Request, model: str | None, groups: list[tuple[str, list[str]]], params: RerankParams
    ) -> ModelAnswer:
        """Several queries with their documents in one request (scores in group order)."""
        count = sum(len(documents) for _, documents in groups)
        self.check_count(count, "text_pairs", self.settings.max_documents, "--max_documents")

        async def run(servable: LoadedVersion) -> RerankOutcome:
            assert isinstance(servable.pipeline, RerankPipeline)
            return await servable.pipeline.rerank_groups(groups, params)

        return await self._call(request, model, Task.RERANK, count, run)

    async def embed(
        self,
        request: Request,
        model: str | None,
        params: EmbeddingsParams,
        *,
        texts: list[str] | None = None,
        token_ids: list[list[int]] | None = None,
        uncounted: int = 0,
    ) -> ModelAnswer:
        """Embed `texts` or `token_ids` (one of them is given). uncounted: texts the route adds to the
        client's (TEI's source sentence), not counted against --max_inputs."""
        count = len(texts if texts is not None else token_ids or [])
        self.check_count(count - uncounted, "input", self.settings.max_inputs, "--max_inputs")

        async def run(servable: LoadedVersion) -> EmbeddingsOutcome:
            assert isinstance(servable.pipeline, EmbeddingsPipeline)
            return await servable.pipeline.embed(texts, token_ids, params)

        return await self._call(request, model, Task.EMBEDDINGS, count, run)
