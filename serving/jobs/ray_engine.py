"""The corpus job on Ray Data: the same blocks and the same block function, in actors on every node.

Each actor loads the model once (`load_model`, as the in-process engine does) and runs
`run_block` on the blocks Ray hands it (`map_batches` with the whole block as the batch). The
driver still reads the input and writes the shards, so the output is the same files as an
in-process run. Every node needs the package (`pip install .[ray]`) and the model repository at
the same path (a shared volume, or the same PVC mounted everywhere).

Ray is imported here only when this engine runs: the serving install never needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from serving.jobs.corpus import CorpusTask, Engine, ModelRef, load_model, run_block


class CorpusActor:
    """One compiled model per actor; Ray calls it with one block (a pyarrow table) at a time."""

    def __init__(self, model: ModelRef, task: CorpusTask) -> None:
        self.task = task
        self.loaded = load_model(model, task.task)

    def __call__(self, block: pa.Table) -> pa.Table:
        return run_block(self.loaded.servable, self.task, block)


def ray_engine(
    address: str, model: ModelRef, task: CorpusTask, actors: int | None, actor_cpus: float
) -> tuple[Engine, Any]:
    """Connect to the cluster at `address` (`auto`, `host:port`, `ray://host:10001`).

    `actors`: how many actors hold the model (default: one per alive node). `actor_cpus`: Ray
    CPUs reserved per actor; keep some CPUs of the cluster free, or the tasks that feed the
    actors and collect their output cannot be scheduled and the pipeline stalls.
    """
    import ray
    import ray.data

    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    if actors is None:
        nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
        actors = max(1, sum(1 for node in nodes if node.get("Alive")))
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the job shows its own

    def run(blocks: list[pa.Table]) -> Iterator[pa.Table]:
        if not blocks:
            return
        dataset = ray.data.from_arrow(blocks).map_batches(
            CorpusActor,
            fn_constructor_kwargs={"model": model, "task": task},
            batch_size=None,  # a whole block: one call of the pipeline, as in-process
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(blocks))),
            num_cpus=actor_cpus,
        )
        yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")

    return run, ray.shutdown
