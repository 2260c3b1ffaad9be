"""Corpus jobs: embed a corpus, or score query-candidate lists, into Parquet shards.

The work is done by the server's own pipeline: `load_version` builds exactly what the server
serves (tokenizer IR, framing, chunking, the batching core with its length-sorted batches,
pooling or scoring), and each block of rows is one call of its blocking form on the calling
thread. Nothing here batches on its own.

Layout of a job's output folder (a Parquet dataset: pyarrow and Ray read the folder as one
table; files starting with `_` or `.` are not data):

    out.parquet/_ovtext_job.json       what the job is (input, model, version, shard size)
    out.parquet/part-00000.parquet     rows [0, shard_size) of the input, in input order
    out.parquet/part-00001.parquet     ...

A shard is written to a temporary file and renamed into place, so a shard file is either
complete or absent: after a crash the same command skips the shards that exist and computes
the rest. The manifest makes sure a resumed run is the same job (same input file, model,
version and shard size).

Engines: in-process (the default; two blocks in flight so tokenization overlaps inference) or
Ray Data (serving/jobs/ray_engine.py), which runs the same block function in actors on every
node. Either way the driver writes the shards, so both produce the same files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from serving.atomic_write import write_atomically
from serving.errors import ServingError
from serving.pipelines.batching import BatchPolicy
from serving.pipelines.embeddings import EmbeddingsPipeline
from serving.pipelines.rerank import RerankPipeline
from serving.pipelines.run import RequestLimits
from serving.registry.loader import LoadedVersion, LoadError, load_version
from serving.repository.config import (
    ConfigError,
    ServableSpec,
    read_config,
    read_servable_spec,
    with_cpu_plugin_config,
)
from serving.repository.layout import Task
from serving.repository.versions import VersionFiles, scan_versions, version_to_run

MANIFEST_FILE = "_ovtext_job.json"
ROW_COLUMN = "row"  # the row's index in the input, in every output shard
RESULT_COLUMNS = {Task.EMBEDDINGS: "embedding", Task.RERANK: "scores"}
DEFAULT_SHARD_ROWS = 10_000
# Rows handed to the pipeline in one call (one job of the batching core). Big enough for the
# length sort to pack batches well, small enough for a smooth progress bar.
BLOCK_ROWS = 1024
# Rerank rows (queries) of one block run from this many threads at once, so that the batching
# core merges the chunks of many small queries into full batches, as it does for HTTP clients.
RERANK_THREADS = 16


class CorpusError(Exception):
    """The job cannot run or go on; the message says why (printed as one line)."""


@dataclass(frozen=True)
class ModelRef:
    """Which servable to load, and which version: every engine (and every Ray actor) loads this.
    `plugin_config`: OpenVINO properties over the model's own on CPU (as the server's --plugin_config)."""

    config_path: Path
    name: str
    version: int
    plugin_config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusTask:
    """What one row is and how it is run. `call_options` go to the pipeline call unchanged
    (rerank: raw_scores; request options such as prompts are passed the same way)."""

    task: Task
    text_column: str = "text"  # embeddings
    query_column: str = "query"  # rerank
    documents_column: str = "documents"  # rerank: a list of strings per row
    call_options: dict[str, Any] = field(default_factory=dict)

    @property
    def input_columns(self) -> tuple[str, ...]:
        if self.task is Task.EMBEDDINGS:
            return (self.text_column,)
        return (self.query_column, self.documents_column)

    @property
    def bulk_column(self) -> str:
        """The input column the output leaves out (the texts, or the documents): all others stay."""
        return self.text_column if self.task is Task.EMBEDDINGS else self.documents_column

    @property
    def result_column(self) -> str:
        return RESULT_COLUMNS[self.task]


# ---- the model -------------------------------------------------------------------------------


def resolve_model(
    config_path: Path, name: str | None, task: Task
) -> tuple[ServableSpec, dict[int, VersionFiles]]:
    """The servable spec of `name` (or of the one model of `task`) and its complete versions."""
    try:
        entries = read_config(config_path)
    except ConfigError as err:
        raise CorpusError(str(err)) from err
    if name is None:
        specs = []
        for entry in entries:
            try:
                spec = read_servable_spec(entry)
            except ConfigError:
                continue
            if spec.task is task:
                specs.append(spec)
        if len(specs) != 1:
            found = ", ".join(s.name for s in specs) or "none"
            raise CorpusError(f"{config_path} has {len(specs)} {task.value} models ({found}): pass --model")
        spec = specs[0]
    else:
        by_name = {entry.name: entry for entry in entries}
        if name not in by_name:
            raise CorpusError(f"{config_path} has no model '{name}' (models: {', '.join(by_name) or 'none'})")
        try:
            spec = read_servable_spec(by_name[name])
        except ConfigError as err:
            raise CorpusError(str(err)) from err
        if spec.task is not task:
            raise CorpusError(f"'{name}' is a {spec.task.value} model, not {task.value}")
    return spec, scan_versions(spec.tokenizer.base_path, spec.model.base_path)


def choose_model(
    config_path: Path,
    name: str | None,
    task: Task,
    version: int | None,
    plugin_config: dict[str, str] | None = None,
) -> ModelRef:
    """The model and version a job runs: `version`, else the highest one the version policy serves."""
    spec, versions = resolve_model(config_path, name, task)
    chosen = version_to_run(spec.model.version_policy, versions.keys(), version)
    if chosen is None and version is None:
        raise CorpusError(f"'{spec.name}' has no complete version in {spec.model.base_path}")
    if chosen is None:
        raise CorpusError(f"'{spec.name}' has no complete version {version} (versions: {sorted(versions)})")
    return ModelRef(config_path.resolve(), spec.name, chosen, dict(plugin_config or {}))


@dataclass
class LoadedModel:
    """A servable and the Core it was compiled with: the Core must outlive the compiled models
    (OpenVINO can crash when a tokenizer or model is freed after its Core)."""

    core: ov.Core
    servable: LoadedVersion

    def close(self) -> None:
        self.servable.close()


def load_model(ref: ModelRef, task: Task) -> LoadedModel:
    """Compile the model as the server does (its BatchPolicy and request limits: the defaults)."""
    spec, versions = resolve_model(ref.config_path, ref.name, task)
    if ref.version not in versions:
        raise CorpusError(f"'{ref.name}' version {ref.version} is gone from {spec.model.base_path}")
    core = ov.Core()
    spec = with_cpu_plugin_config(spec, ref.plugin_config)
    try:
        servable = load_version(
            core, spec, versions[ref.version], BatchPolicy(), RequestLimits(), ref.config_path.parent
        )
    except LoadError as err:
        raise CorpusError(f"cannot load '{ref.name}' version {ref.version}: {err}") from err
    return LoadedModel(core, servable)


# ---- one block of rows -----------------------------------------------------------------------


def run_block(servable: LoadedVersion, task: CorpusTask, block: pa.Table) -> pa.Table:
    """The `row` column of `block` and the result column, computed by the server's pipeline."""
    first = block.column(ROW_COLUMN)[0].as_py() if block.num_rows else 0
    try:
        if task.task is Task.EMBEDDINGS:
            pipeline = servable.pipeline
            assert isinstance(pipeline, EmbeddingsPipeline)
            texts = block.column(task.text_column).to_pylist()
            vectors = pipeline.embed_blocking(texts, **task.call_options).vectors
            result: pa.Array = pa.FixedSizeListArray.from_arrays(
                pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1]
            )
        else:
            pipeline = servable.pipeline
            assert isinstance(pipeline, RerankPipeline)
            queries = block.column(task.query_column).to_pylist()
            documents = block.column(task.documents_column).to_pylist()

            def score(pair: tuple[str, list[str]]) -> np.ndarray:
                return pipeline.rerank_blocking(pair[0], pair[1], **task.call_options).scores

            with ThreadPoolExecutor(max_workers=RERANK_THREADS) as pool:
                scores = list(pool.map(score, zip(queries, documents, strict=True)))
            result = pa.array([row.astype(np.float32) for row in scores], pa.list_(pa.float32()))
    except ServingError as err:
        last = first + block.num_rows - 1
        raise CorpusError(f"rows {first}-{last}: {err}") from err
    return pa.table({ROW_COLUMN: block.column(ROW_COLUMN), task.result_column: result})


# ---- input -----------------------------------------------------------------------------------


def read_input(path: Path, task: CorpusTask) -> pa.Table:
    """The corpus as one table: JSON Lines (`.jsonl`, `.json`) or Parquet (`.parquet`, a file or
    a folder of them). Rows whose model input is null or of the wrong type are refused."""
    try:
        if path.suffix in (".jsonl", ".json", ".ndjson"):
            table = pa_json.read_json(path)
        elif path.suffix == ".parquet" or path.is_dir():
            table = pq.read_table(path)
        else:
            raise CorpusError(f"{path}: give a .jsonl or .parquet file")
    except (OSError, pa.ArrowInvalid) as err:
        raise CorpusError(f"{path}: {err}") from err
    for column in task.input_columns:
        if column not in table.column_names:
            raise CorpusError(f"{path}: no column '{column}' (columns: {', '.join(table.column_names)})")
        nulls = pc.is_null(table.column(column))
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            raise CorpusError(f"{path}: row {row}: '{column}' is null")
    expected = {task.text_column: pa.string(), task.query_column: pa.string()}
    for column in task.input_columns:
        kind = table.schema.field(column).type
        if column == task.documents_column and task.task is Task.RERANK:
            if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not (
                pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
            ):
                raise CorpusError(f"{path}: '{column}' must be a list of strings, not {kind}")
        elif not (kind == expected[column] or pa.types.is_large_string(kind)):
            raise CorpusError(f"{path}: '{column}' must be strings, not {kind}")
    if ROW_COLUMN in table.column_names:
        raise CorpusError(f"{path}: the column name '{ROW_COLUMN}' is taken by the output")
    return table


# ---- output: shards and the manifest ---------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int

    @property
    def file_name(self) -> str:
        return f"part-{self.index:05d}.parquet"


@dataclass(frozen=True)
class JobPlan:
    task: CorpusTask
    model: ModelRef
    input_path: Path
    output: Path
    shard_rows: int
    rows: int

    def manifest(self) -> dict[str, Any]:
        stat = self.input_path.stat()
        return {
            "task": self.task.task.value,
            "columns": list(self.task.input_columns),
            "call_options": self.task.call_options,
            "model": self.model.name,
            "version": self.model.version,
            "input": str(self.input_path.resolve()),
            "input_size": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns,
            "rows": self.rows,
            "shard_rows": self.shard_rows,
        }

    @property
    def shards(self) -> list[Shard]:
        count = -(-self.rows // self.shard_rows)
        return [
            Shard(index, index * self.shard_rows, min(self.rows, (index + 1) * self.shard_rows))
            for index in range(count)
        ]


def prepare_output(plan: JobPlan) -> list[Shard]:
    """Create the output folder (or check it holds this same job) and return the shards to compute."""
    manifest = plan.manifest()
    manifest_path = plan.output / MANIFEST_FILE
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise CorpusError(
                f"{manifest_path}: unreadable ({err}); remove the folder to start over"
            ) from err
        changed = sorted(key for key in manifest if previous.get(key) != manifest[key])
        if changed:
            details = "; ".join(f"{key}: was {previous.get(key)!r}, now {manifest[key]!r}" for key in changed)
            raise CorpusError(
                f"{plan.output} holds another job ({details}): use another --output, or remove it"
            )
    elif plan.output.exists() and any(plan.output.iterdir()):
        raise CorpusError(f"{plan.output} exists and is not the output of a corpus job")
    else:
        plan.output.mkdir(parents=True, exist_ok=True)
        write_atomically(manifest_path, lambda path: path.write_text(json.dumps(manifest, indent=1) + "\n"))
    return [shard for shard in plan.shards if not (plan.output / shard.file_name).is_file()]


def write_shard(plan: JobPlan, shard: Shard, inputs: pa.Table, results: pa.Table) -> None:
    """Shard = the row index, the input's other columns, the result; in input order."""
    results = results.sort_by(ROW_COLUMN)
    rows = results.column(ROW_COLUMN).to_numpy()
    if len(rows) != shard.stop - shard.start or not np.array_equal(rows, np.arange(shard.start, shard.stop)):
        raise CorpusError(
            f"shard {shard.index}: the results do not cover rows {shard.start}-{shard.stop - 1}"
        )
    kept = [name for name in inputs.column_names if name != plan.task.bulk_column]
    table = inputs.slice(shard.start, shard.stop - shard.start).select(kept)
    table = table.add_column(0, ROW_COLUMN, results.column(ROW_COLUMN))
    table = table.append_column(plan.task.result_column, results.column(plan.task.result_column))
    write_atomically(plan.output / shard.file_name, lambda path: pq.write_table(table, path))


# ---- running ---------------------------------------------------------------------------------


def blocks_of(
    inputs: pa.Table, task: CorpusTask, shards: Iterable[Shard], rows: int = BLOCK_ROWS
) -> Iterator[pa.Table]:
    """The model inputs of the pending shards, `rows` at a time, with their `row` column."""
    columns = inputs.select(list(task.input_columns))
    for shard in shards:
        for start in range(shard.start, shard.stop, rows):
            stop = min(shard.stop, start + rows)
            block = columns.slice(start, stop - start)
            yield block.add_column(0, ROW_COLUMN, pa.array(np.arange(start, stop, dtype=np.int64)))


# An engine turns the blocks (in order) into result tables (in any order; each has `row`).
Engine = Callable[[list[pa.Table]], Iterator[pa.Table]]


def in_process_engine(model: ModelRef, task: CorpusTask) -> tuple[Engine, Callable[[], None]]:
    """Blocks run here, two at a time: one is tokenized while the other's batches run."""
    loaded = load_model(model, task.task)

    def run(blocks: list[pa.Table]) -> Iterator[pa.Table]:
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="corpus")
        try:
            yield from pool.map(lambda block: run_block(loaded.servable, task, block), blocks)
        finally:  # on an error or Ctrl-C, drop the blocks not started yet
            pool.shutdown(wait=False, cancel_futures=True)

    return run, loaded.close


@dataclass
class JobReport:
    rows: int
    shards: int
    shards_skipped: int  # written by an earlier run
    rows_computed: int
    seconds: float  # computing and writing, model loading excluded

    @property
    def items_per_second(self) -> float:
        return self.rows_computed / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 2),
        }


def run_job(plan: JobPlan, inputs: pa.Table, engine: Engine, progress: bool = True) -> JobReport:
    """Compute the pending shards with `engine` and write each as soon as all its rows are in."""
    pending = prepare_output(plan)
    pending_rows = sum(shard.stop - shard.start for shard in pending)
    by_index = {shard.index: shard for shard in pending}
    collected: dict[int, list[pa.Table]] = {}
    counts: dict[int, int] = {}
    bar = _progress_bar(plan.rows, plan.rows - pending_rows, plan.task.task, enabled=progress)
    started = time.perf_counter()
    try:
        for results in engine(list(blocks_of(inputs, plan.task, pending))):
            bar.update(results.num_rows)
            # A block lies within one shard, but an engine may merge blocks: split by shard.
            owners = results.column(ROW_COLUMN).to_numpy() // plan.shard_rows
            for index in np.unique(owners).tolist():
                part = results.filter(pa.array(owners == index))
                collected.setdefault(index, []).append(part)
                counts[index] = counts.get(index, 0) + part.num_rows
                shard = by_index[index]
                if counts[index] == shard.stop - shard.start:
                    write_shard(plan, shard, inputs, pa.concat_tables(collected.pop(index)))
        if collected:
            raise CorpusError(f"the engine left shards {sorted(collected)} incomplete")
    finally:
        bar.close()
    return JobReport(
        rows=plan.rows,
        shards=len(plan.shards),
        shards_skipped=len(plan.shards) - len(pending),
        rows_computed=pending_rows,
        seconds=time.perf_counter() - started,
    )


class _NoBar:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, done: int, task: Task, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    what = "texts" if task is Task.EMBEDDINGS else "queries"
    return tqdm(total=total, initial=done, desc=what, unit=" items", smoothing=0.1, dynamic_ncols=True)


def read_output(output: Path) -> pa.Table:
    """Every shard of a job's output, in row order."""
    return pq.read_table(output).sort_by(ROW_COLUMN)
