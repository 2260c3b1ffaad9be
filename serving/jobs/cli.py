"""`ovtext-batch` (= `python -m serving.jobs`): embed a corpus, or score query-candidate lists, into Parquet.

    ovtext-batch embeddings --config_path models/config.json --model NAME \
        --input corpus.jsonl --output out.parquet
    ovtext-batch rerank --config_path models/config.json --input queries.parquet --output scores.parquet
    ovtext-batch embeddings ... --ray_address auto          # on a Ray cluster (pip install .[ray])

Needs the batch extra (pyarrow, tqdm): `pip install .[batch]`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from serving.repository.layout import Task


def _common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--config_path",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            required=True,
            help="config.json of the model repository.",
        ),
        click.option(
            "--model", default=None, help="Model name in config.json (default: the one model of the task)."
        ),
        click.option(
            "--version",
            type=click.IntRange(min=1),
            default=None,
            help="Version to run (default: the highest one its version policy serves).",
        ),
        click.option(
            "--input",
            "input_path",
            type=click.Path(path_type=Path, exists=True),
            required=True,
            help="The corpus: .jsonl (one JSON object a line) or .parquet (a file or a folder).",
        ),
        click.option(
            "--output",
            type=click.Path(path_type=Path, file_okay=False),
            required=True,
            help="Output folder (a Parquet dataset of shards). Run the same command again to resume.",
        ),
        click.option(
            "--shard_rows",
            type=click.IntRange(min=1),
            default=None,
            help="Input rows per output shard (the unit of resumption). [default: 10000]",
        ),
        click.option(
            "--ray_address",
            default=None,
            help="Run on Ray Data: auto, host:port or ray://host:10001; default: in-process.",
        ),
        click.option(
            "--actors",
            type=click.IntRange(min=1),
            default=None,
            help="Ray: actors holding the model (default: one per node).",
        ),
        click.option(
            "--actor_cpus",
            type=click.FloatRange(min=0.01),
            default=1.0,
            show_default=True,
            help="Ray: CPUs reserved per actor; leave some free for reading and collecting, or it stalls.",
        ),
        click.option(
            "--plugin_config",
            default=None,
            help="OpenVINO properties (JSON) over the model's plugin_config on CPU, as ovtext-serve's; "
            'e.g. \'{"NUM_STREAMS": "2"}\' runs two batches at once.',
        ),
        click.option(
            "--progress/--no_progress", default=True, show_default=True, help="Show a progress bar."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run a model of the repository over a whole corpus, with the server's own pipeline."""
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")


@main.command()
@_common_options
@click.option("--text_column", default="text", show_default=True, help="Column of the texts to embed.")
def embeddings(text_column: str, **common: Any) -> None:
    """Embed every text: the output has the input's other columns and `embedding` (float32 list)."""
    _run(Task.EMBEDDINGS, {"text_column": text_column}, **common)


@main.command()
@_common_options
@click.option("--query_column", default="query", show_default=True, help="Column of the queries.")
@click.option(
    "--documents_column", default="documents", show_default=True, help="Column of the candidate lists."
)
@click.option("--raw_scores", is_flag=True, help="Write logits instead of sigmoid scores.")
def rerank(query_column: str, documents_column: str, raw_scores: bool, **common: Any) -> None:
    """Score each query's candidates: the output has the input's other columns and `scores`."""
    from serving.pipelines.rerank import RerankParams

    params = RerankParams(raw_scores=raw_scores)
    task = {"query_column": query_column, "documents_column": documents_column, "params": params}
    _run(Task.RERANK, task, **common)


def _needs(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError as err:
        raise click.ClickException(f"this needs {module}: pip install 'ovtext[{extra}]'") from err


def _run(
    kind: Task,
    task_options: dict[str, Any],
    config_path: Path,
    model: str | None,
    version: int | None,
    input_path: Path,
    output: Path,
    shard_rows: int | None,
    ray_address: str | None,
    actors: int | None,
    actor_cpus: float,
    plugin_config: str | None,
    progress: bool,
) -> None:
    _needs("pyarrow", "batch")
    _needs("tqdm", "batch")
    from serving.jobs import corpus
    from serving.repository.config import parse_plugin_config

    task = corpus.CorpusTask(kind, **task_options)
    try:
        properties = parse_plugin_config(plugin_config) if plugin_config else {}
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--plugin_config") from err
    try:
        chosen = corpus.choose_model(config_path, model, task.task, version, properties)
        inputs = corpus.read_input(input_path, task)
        plan = corpus.JobPlan(
            task, chosen, input_path, output, shard_rows or corpus.DEFAULT_SHARD_ROWS, inputs.num_rows
        )
        pending = corpus.prepare_output(plan)  # refuse another job's folder before compiling anything
        click.echo(
            f"{task.task.value} of {plan.rows} rows with {chosen.name} version {chosen.version}: "
            f"{len(pending)} of {len(plan.shards)} shards to compute",
            err=True,
        )
        if ray_address is not None:
            _needs("ray", "ray")
            from serving.jobs.ray_engine import ray_engine

            engine, close = ray_engine(ray_address, chosen, task, actors, actor_cpus)
        else:
            engine, close = corpus.in_process_engine(chosen, task)
        try:
            report = corpus.run_job(plan, inputs, engine, progress=progress)
        except KeyboardInterrupt:
            click.echo("Error: interrupted; run the same command again to resume", err=True)
            _leave(130)
        finally:
            close()
    except corpus.CorpusError as err:
        raise click.ClickException(str(err)) from err
    engine_name = f"ray at {ray_address}" if ray_address is not None else "in-process"
    click.echo(
        f"wrote {output}: {report.rows} rows in {report.shards} shards "
        f"({report.shards_skipped} already written), {report.rows_computed} rows computed in "
        f"{report.seconds:.1f} s, {report.items_per_second:.1f} items/s ({engine_name})",
        err=True,
    )
    click.echo(json.dumps({"output": str(output), "engine": engine_name, **report.to_json()}))
    _leave(0)


def _leave(code: int) -> None:
    """Exit without the interpreter's teardown, in which OpenVINO's plugins can crash (as the
    server does); every shard written is closed and renamed by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
