"""`ovtext-export rerank|embeddings ...` (also `python export_models/export_model.py ...`).

Option names are those of OpenVINO Model Server's export_model.py, so users' commands carry over.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from export_models import interruption
from export_models.errors import ExportError
from export_models.pipeline import (
    AUTO,
    QUANTIZATIONS,
    WEIGHT_FORMATS,
    ExportRequest,
    ExportResult,
    run_export,
)
from export_models.prompt_framing import parse_prompts
from serving.repository.layout import GraphFormat, Pooling, Task

F = TypeVar("F", bound=Callable[..., Any])


class ClickProgress:
    """Step messages on stdout (stderr carries only the error line); elapsed time during long steps."""

    def __init__(self) -> None:
        self._interactive = sys.stdout.isatty()
        self._last_report = 0.0

    def step_started(self, index: int, total: int, title: str) -> None:
        self._last_report = 0.0
        click.echo(f"[{index}/{total}] {title}")

    def step_finished(self, index: int, total: int, title: str, seconds: float) -> None:
        if self._interactive and self._last_report:
            click.echo("\r\033[K", nl=False)
        if seconds >= 1.0:
            click.echo(f"      done in {seconds:.1f} s")

    def note(self, message: str) -> None:
        click.echo(f"      {message}")

    def waiting(self, seconds: float) -> None:
        if self._interactive:
            click.echo(f"\r      {seconds:.0f} s", nl=False)
            self._last_report = seconds
        elif seconds - self._last_report >= 30:
            click.echo(f"      still working ({seconds:.0f} s)")
            self._last_report = seconds


def run_cli_export(request: ExportRequest) -> ExportResult:
    """Run an export with progress on stderr; expected failures become one-line click errors."""
    try:
        with interruption.stop_on_signals():
            result = run_export(request, ClickProgress())
    except ExportError as error:
        raise click.ClickException(error.one_line()) from None
    click.echo(
        f"Exported {result.model_name} version {result.version} to {result.model_dir} "
        f"({result.model_bin_bytes / 2**20:.1f} MiB, {result.seconds:.1f} s); {result.config_path} updated"
    )
    return result


def common_options(command: F) -> F:
    """Options shared by rerank and embeddings (applied bottom-up, so listed in reverse)."""
    options = [
        click.option("--source_model", required=True, help="Hugging Face hub id or local model folder."),
        click.option(
            "--model_name",
            default=None,
            help="Name the model is served under (may contain '/'). Default: the hub id, "
            "or a local folder's name.",
        ),
        click.option(
            "--alias",
            "aliases",
            multiple=True,
            help="Another name requests may use for the model, e.g. a short name (repeatable). Kept in "
            "aliases.json beside config.json (OpenVINO Model Server refuses extra keys in config.json); "
            "an export without --alias keeps the aliases the model has.",
        ),
        click.option(
            "--weight-format",
            "--weight_format",
            "weight_format",
            type=click.Choice((*WEIGHT_FORMATS, AUTO)),
            default="int8",
            show_default=True,
            help="int8: weight-only int8 through NNCF (with --quantization static: int8 weights and "
            "activations); fp16: fp16 weights; fp32: exact; auto: the fastest of fp16, int8 and static int8 "
            "on this CPU that passes the accuracy gate.",
        ),
        click.option(
            "--quantization",
            type=click.Choice(QUANTIZATIONS),
            default="none",
            show_default=True,
            help="static: int8 activations as well as weights, calibrated on --calibration_data, checked "
            "against the fp32 model (--max_accuracy_drop).",
        ),
        click.option(
            "--calibration_data",
            default=None,
            type=click.Path(path_type=Path),
            help='JSONL ({"query", "document"} for rerank, {"text"} for embeddings) or plain text lines '
            "(query<TAB>document, or one input a line). Default: the calibration set shipped with ovtext.",
        ),
        click.option(
            "--max_accuracy_drop",
            default=None,
            help="The accuracy gate: one number (the drop allowed on every figure), or NAME=DROP,... with "
            "NAME in ndcg@10, top1, spearman, max_diff (rerank), cosine, recall@10 (embeddings). Default: "
            "ndcg@10=0.01,top1=0.05 (rerank), cosine=0.01 (embeddings).",
        ),
        click.option(
            "--model_repository_path",
            default="models",
            show_default=True,
            type=click.Path(path_type=Path),
            help="Folder of the model repository.",
        ),
        click.option(
            "--config_file_path",
            default=None,
            type=click.Path(path_type=Path),
            help="config.json to update. Default: <model_repository_path>/config.json.",
        ),
        click.option(
            "--target_device",
            default="CPU",
            show_default=True,
            help="OpenVINO device of the model: CPU, GPU, GPU.1, AUTO, HETERO:GPU,CPU, ...",
        ),
        click.option(
            "--num_streams",
            default=1,
            show_default=True,
            type=click.IntRange(min=1),
            help="NUM_STREAMS of the model's plugin_config.",
        ),
        click.option(
            "--version",
            "version",
            default=None,
            type=click.IntRange(min=1),
            help="Version to write. Default: 1 for a new model, else the next free number.",
        ),
        click.option(
            "--overwrite_models",
            is_flag=True,
            help="Allow replacing an existing version (without --version: the latest one).",
        ),
        click.option(
            "--extra_quantization_params",
            default="",
            help='Extra optimum-cli arguments, e.g. "--sym --group-size -1".',
        ),
        click.option(
            "--graph_format",
            type=click.Choice([f.value for f in GraphFormat]),
            default=GraphFormat.LEGACY.value,
            show_default=True,
            help="legacy: the versioned tree of OpenVINO Model Server's rerank/embeddings export (OVMS "
            "2024.5 on); ov: the flat folder of its rerank_ov/embeddings_ov export (OVMS 2025.2 on).",
        ),
        click.option(
            "--trust_remote_code",
            "--trust-remote-code",
            "trust_remote_code",
            is_flag=True,
            help="Run the model's own code (config.json auto_map); only for code you trust.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Export Hugging Face rerankers and embedders to OpenVINO IR and write a model repository."""


@main.command()
@common_options
@click.option(
    "--max_doc_length",
    default=16000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Documents are cut to this many tokens before chunking.",
)
@click.option(
    "--max_allowed_chunks",
    default=10000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most chunks one request may produce (more is an error).",
)
@click.option(
    "--instruction",
    default=None,
    help="Instruction-following rerankers (Qwen3-Reranker, mxbai-rerank-v2): the default instruction "
    "(requests may give their own). Default: the model card's.",
)
def rerank(**options: Any) -> None:
    """Export a cross-encoder (a *ForSequenceClassification model with one or two labels) or a causal-LM
    reranker."""
    run_cli_export(
        ExportRequest(
            task=Task.RERANK,
            **_common(options),
            max_doc_length=options["max_doc_length"],
            max_allowed_chunks=options["max_allowed_chunks"],
            instruction=options["instruction"],
        )
    )


@main.command()
@common_options
@click.option(
    "--pooling",
    type=click.Choice([p.value for p in Pooling], case_sensitive=False),
    default=None,
    help="CLS, MEAN or LAST. Default: the model's sentence-transformers pooling, else CLS.",
)
@click.option("--skip_normalize", is_flag=True, help="Do not L2-normalize the embeddings.")
@click.option(
    "--truncate", is_flag=True, help="Cut inputs longer than the model's limit instead of rejecting them."
)
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="NAME=TEXT",
    help="A prompt requests can choose by name (input_type, prompt_name), prepended to the text, e.g. "
    "--prompt query='query: ' --prompt document='passage: ' for e5. Adds to (or replaces) the model's own "
    "sentence-transformers prompts. Repeat for more.",
)
@click.option(
    "--default_prompt_name",
    default=None,
    help="The prompt used when a request names none. Default: the model's default_prompt_name, else none.",
)
def embeddings(**options: Any) -> None:
    """Export a text embedder."""
    pooling = Pooling(options["pooling"].upper()) if options["pooling"] else None
    try:
        prompts = parse_prompts(options["prompts"])
    except ExportError as error:
        raise click.ClickException(error.one_line()) from None
    run_cli_export(
        ExportRequest(
            task=Task.EMBEDDINGS,
            **_common(options),
            pooling=pooling,
            normalize=not options["skip_normalize"],
            truncate=options["truncate"],
            prompts=tuple(prompts.items()),
            default_prompt_name=options["default_prompt_name"],
        )
    )


def _common(options: dict[str, Any]) -> dict[str, Any]:
    common: dict[str, Any] = {"graph_format": GraphFormat(options["graph_format"])}
    keys = (
        "source_model",
        "model_name",
        "weight_format",
        "model_repository_path",
        "config_file_path",
        "target_device",
        "num_streams",
        "version",
        "overwrite_models",
        "extra_quantization_params",
        "trust_remote_code",
        "aliases",
        "quantization",
        "calibration_data",
        "max_accuracy_drop",
    )
    return common | {key: options[key] for key in keys}


if __name__ == "__main__":
    main()
