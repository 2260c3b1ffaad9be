"""The export as a list of steps over one shared context.

    resolve source -> plan repository -> convert model -> [quantize activations] ->
    convert tokenizer -> write IRs with runtime info -> render graph/subconfig -> commit

The first two steps check everything that can be checked cheaply (source, architecture,
options, repository, version) before the slow conversion starts. Each step reads what
earlier steps put into the ExportContext and adds its own result. A later step such as
activation int8 quantization with calibration and an accuracy report slots in after
"convert model": it reads ctx.model_xml and points it at the quantized IR (see
default_steps()). Nothing reaches the repository before the final commit step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from export_models import convert_model, convert_tokenizer, holdpoints, interruption, repository, source
from export_models.errors import ExportError, ExportIOError, InvalidOptionError, RepositoryNotWritableError
from serving.repository.layout import (
    CONFIG_FILE,
    GRAPH_FILE,
    MODEL_BIN,
    MODEL_INFO_KEY,
    MODEL_XML,
    SUBCONFIG_FILE,
    TOKENIZER_INFO_KEY,
    ModelInfo,
    Pooling,
    Task,
    TokenizerInfo,
    write_info,
)

if TYPE_CHECKING:
    import openvino as ov

WEIGHT_FORMATS = convert_model.WEIGHT_FORMATS


@dataclass(frozen=True)
class ExportRequest:
    """Everything the user asked for (the CLI options), with the CLI's defaults."""

    task: Task
    source_model: str
    model_name: str | None = None  # default: the hub id, or a local folder's name
    weight_format: str = "int8"
    model_repository_path: Path = Path("models")
    config_file_path: Path | None = None  # default: <model_repository_path>/config.json
    target_device: str = "CPU"
    num_streams: int = 1
    version: int | None = None  # default: 1 for a new model, else the next free number
    overwrite_models: bool = False
    extra_quantization_params: str = ""
    # rerank
    max_doc_length: int = 16000
    max_allowed_chunks: int = 10000
    # embeddings
    pooling: Pooling | None = None  # default: the model's sentence-transformers pooling, else CLS
    normalize: bool = True
    truncate: bool = False

    @property
    def config_path(self) -> Path:
        return self.config_file_path or self.model_repository_path / CONFIG_FILE


class Progress(Protocol):
    """Where the pipeline reports what it is doing (the CLI prints it)."""

    def step_started(self, index: int, total: int, title: str) -> None: ...

    def step_finished(self, index: int, total: int, title: str, seconds: float) -> None: ...

    def note(self, message: str) -> None: ...

    def waiting(self, seconds: float) -> None:
        """Called about once a second during a long step."""


class SilentProgress:
    def step_started(self, index: int, total: int, title: str) -> None:
        pass

    def step_finished(self, index: int, total: int, title: str, seconds: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def waiting(self, seconds: float) -> None:
        pass


@dataclass
class ExportContext:
    """State shared by the steps; each step fills in its part."""

    request: ExportRequest
    progress: Progress
    source: source.ResolvedSource | None = None
    plan: repository.RepositoryPlan | None = None
    pooling: Pooling | None = None
    # The current inference IR; a quantization step would replace it with its output.
    model_xml: Path | None = None
    hf_tokenizer: Any = None
    tokenizer_ir: ov.Model | None = None
    tokenizer_info: TokenizerInfo | None = None
    model_info: ModelInfo | None = None
    # Written into both IRs: the server refuses a version whose tokenizer and model disagree.
    export_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    version: int | None = None  # the version committed
    timings: dict[str, float] = field(default_factory=dict)

    def resolved(self) -> tuple[source.ResolvedSource, repository.RepositoryPlan]:
        if self.source is None or self.plan is None:
            raise RuntimeError("step order: the source and the repository plan come first")
        return self.source, self.plan


@dataclass(frozen=True)
class ExportStep:
    title: str
    run: Callable[[ExportContext], None]


@dataclass(frozen=True)
class ExportResult:
    model_name: str
    model_dir: Path
    version: int
    config_path: Path
    model_bin_bytes: int
    seconds: float
    timings: dict[str, float]


# --- the steps ---------------------------------------------------------------------------


def resolve_source_step(ctx: ExportContext) -> None:
    """Find the source, check it fits the task, and check the options that depend on it."""
    request = ctx.request
    if request.weight_format not in WEIGHT_FORMATS:
        raise InvalidOptionError(
            f"--weight-format {request.weight_format}: choose one of {', '.join(WEIGHT_FORMATS)}"
        )
    convert_model.split_extra_params(request.extra_quantization_params)  # fail early on bad quoting
    for name, value in (
        ("--num_streams", request.num_streams),
        ("--max_doc_length", request.max_doc_length),
        ("--max_allowed_chunks", request.max_allowed_chunks),
    ):
        if value < 1:
            raise InvalidOptionError(f"{name} must be at least 1, got {value}")
    if request.version is not None and request.version < 1:
        raise InvalidOptionError(f"--version must be at least 1, got {request.version}")
    if not request.target_device.strip():
        raise InvalidOptionError("--target_device must name an OpenVINO device (CPU, GPU, AUTO, ...)")
    resolved = source.resolve_source(request.source_model)
    source.validate_for_task(resolved, request.task)
    ctx.source = resolved
    if request.task is Task.EMBEDDINGS:
        ctx.pooling = request.pooling or source.default_pooling(resolved)
    ctx.progress.note(f"{resolved.recorded}: {resolved.architecture}")


def plan_repository_step(ctx: ExportContext) -> None:
    request = ctx.request
    resolved = ctx.source
    assert resolved is not None
    model_name = request.model_name or resolved.default_model_name
    ctx.plan = repository.plan_export(
        repository=request.model_repository_path,
        config_path=request.config_path,
        model_name=model_name,
        task=request.task,
        requested_version=request.version,
        overwrite=request.overwrite_models,
    )
    action = "replacing" if ctx.plan.replaces_version else "writing"
    ctx.progress.note(f"{action} version {ctx.plan.version} of {model_name} in {ctx.plan.model_dir}")


def convert_model_step(ctx: ExportContext) -> None:
    resolved, plan = ctx.resolved()
    ctx.model_xml = convert_model.convert_model(
        resolved,
        ctx.request.task,
        ctx.request.weight_format,
        ctx.request.extra_quantization_params,
        output_dir=plan.work_dir / "optimum",
        waiting=ctx.progress.waiting,
        inherited_fds=(plan.staging_lock,),
    )


def convert_tokenizer_step(ctx: ExportContext) -> None:
    resolved, _ = ctx.resolved()
    tokenizer = convert_tokenizer.load_hf_tokenizer(resolved)
    st_limit = (
        source.sentence_transformers_max_seq_length(resolved) if ctx.request.task is Task.EMBEDDINGS else None
    )
    max_length = convert_tokenizer.max_sequence_length(
        tokenizer, resolved.config, convert_tokenizer.position_offset(resolved), st_limit
    )
    ctx.tokenizer_info = convert_tokenizer.derive_tokenizer_info(tokenizer, resolved.config, max_length)
    ctx.tokenizer_ir = convert_tokenizer.convert_tokenizer_ir(tokenizer)
    ctx.hf_tokenizer = tokenizer
    mismatches = convert_tokenizer.self_check(ctx.tokenizer_ir, tokenizer)
    if mismatches:
        ctx.progress.note(
            "warning: the converted tokenizer differs from the Hugging Face tokenizer on "
            + ", ".join(repr(text) for text in mismatches)
        )
    info = ctx.tokenizer_info
    ctx.progress.note(
        f"max_length {info.max_length}; pair = {info.pair_prefix} query {info.pair_middle} document "
        f"{info.pair_suffix}; second token type {info.second_type_id}"
    )


def write_irs_step(ctx: ExportContext) -> None:
    """Put ModelInfo/TokenizerInfo into the IRs' runtime info and save them as the staged version."""
    import openvino as ov

    resolved, plan = ctx.resolved()
    request = ctx.request
    assert ctx.model_xml is not None and ctx.tokenizer_ir is not None and ctx.tokenizer_info is not None
    ctx.model_info = ModelInfo(
        task=request.task.value,
        source_model=resolved.recorded,
        architecture=resolved.architecture,
        weight_format=request.weight_format,
        hidden_size=source.hidden_size(resolved.config),
        num_labels=source.num_labels(resolved.config) if request.task is Task.RERANK else 0,
        export_id=ctx.export_id,
    )
    model = ov.Core().read_model(ctx.model_xml)
    write_info(model, MODEL_INFO_KEY, ctx.model_info)
    _save_ir(model, plan.staged_model_version, f"the {request.task.value} IR", plan.repository)
    write_info(ctx.tokenizer_ir, TOKENIZER_INFO_KEY, replace(ctx.tokenizer_info, export_id=ctx.export_id))
    _save_ir(ctx.tokenizer_ir, plan.staged_tokenizer_version, "the tokenizer IR", plan.repository)


def _save_ir(model: ov.Model, folder: Path, what: str, repository_dir: Path) -> None:
    """model.xml + model.bin into folder; OpenVINO's I/O errors say little, so say what failed."""
    import openvino as ov

    folder.mkdir(parents=True)
    try:
        # compress_to_fp16=False: the weights stay in the format optimum wrote (fp32 stays fp32).
        ov.save_model(model, folder / MODEL_XML, compress_to_fp16=False)
    except RuntimeError as error:
        reason = repository.disk_full_reason(folder) or " ".join(str(error).split())
        raise ExportIOError(f"cannot write {what} into {repository_dir}: {reason}") from error


def plugin_config(request: ExportRequest) -> dict[str, str]:
    config = {"NUM_STREAMS": str(request.num_streams)}
    if request.weight_format == "fp32":
        # The CPU plugin would otherwise run bf16 on CPUs that have it; an fp32 export is exact.
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def node_options(request: ExportRequest, pooling: Pooling | None) -> dict[str, Any]:
    if request.task is Task.RERANK:
        return {"max_allowed_chunks": request.max_allowed_chunks, "max_doc_length": request.max_doc_length}
    assert pooling is not None
    return {"pooling": pooling.value, "normalize_embeddings": request.normalize, "truncate": request.truncate}


def render_step(ctx: ExportContext) -> None:
    _, plan = ctx.resolved()
    request = ctx.request
    (plan.staged_model_dir / GRAPH_FILE).write_text(
        repository.render_graph(request.task, node_options(request, ctx.pooling)), encoding="utf-8"
    )
    (plan.staged_model_dir / SUBCONFIG_FILE).write_text(
        repository.render_subconfig(
            plan.model_name, request.task, request.target_device, plugin_config(request)
        ),
        encoding="utf-8",
    )


def commit_step(ctx: ExportContext) -> None:
    _, plan = ctx.resolved()
    try:
        with interruption.signals_held():
            ctx.version = repository.commit(plan)
    except OSError as error:
        raise RepositoryNotWritableError(
            f"cannot move the export into {plan.model_dir}: {error.strerror or error} "
            "(the repository is unchanged)"
        ) from error
    if ctx.version != plan.version:
        ctx.progress.note(f"version {plan.version} was taken meanwhile: wrote {ctx.version}")


def default_steps() -> list[ExportStep]:
    return [
        ExportStep("Resolving the source model", resolve_source_step),
        ExportStep("Checking the model repository", plan_repository_step),
        ExportStep("Converting the model with optimum-intel", convert_model_step),
        # An activation-quantization step (int8 with calibration data and an accuracy report
        # against the fp32 IR) belongs here: it reads ctx.model_xml and sets it to its output.
        ExportStep("Converting the tokenizer with openvino-tokenizers", convert_tokenizer_step),
        ExportStep("Writing the IRs with their runtime info", write_irs_step),
        ExportStep("Rendering graph.pbtxt and subconfig.json", render_step),
        ExportStep("Moving the new version into the repository", commit_step),
    ]


def run_export(
    request: ExportRequest, progress: Progress | None = None, steps: list[ExportStep] | None = None
) -> ExportResult:
    """Run the steps; on any failure the staging folder goes and the repository is untouched."""
    ctx = ExportContext(request=request, progress=progress or SilentProgress())
    steps = steps if steps is not None else default_steps()
    started = time.monotonic()
    try:
        for index, step in enumerate(steps, start=1):
            ctx.progress.step_started(index, len(steps), step.title)
            holdpoints.hold(f"step-{index}")
            step_started = time.monotonic()
            step.run(ctx)
            ctx.timings[step.title] = time.monotonic() - step_started
            ctx.progress.step_finished(index, len(steps), step.title, ctx.timings[step.title])
    except OSError as error:
        # I/O failures the steps did not classify (disk full, ...): the repository is unchanged.
        raise ExportIOError(f"export failed: {error}") from error
    finally:
        if ctx.plan is not None:
            ctx.plan.discard_staging()
    _, plan = ctx.resolved()
    assert ctx.version is not None
    model_bin = plan.model_dir / request.task.model_dir / str(ctx.version) / MODEL_BIN
    return ExportResult(
        model_name=plan.model_name,
        model_dir=plan.model_dir,
        version=ctx.version,
        config_path=plan.config_path,
        model_bin_bytes=model_bin.stat().st_size,
        seconds=time.monotonic() - started,
        timings=dict(ctx.timings),
    )


__all__ = [
    "ExportContext",
    "ExportError",
    "ExportRequest",
    "ExportResult",
    "ExportStep",
    "default_steps",
    "run_export",
]
