"""The export as a list of steps over one shared context.

    resolve source -> plan repository -> convert model -> convert tokenizer ->
    [quantize: static int8 or --weight-format auto] -> write IRs with runtime info ->
    render the graph (and the form's other files) -> commit

Two forms of the model folder (--graph_format, docs/repository.md): legacy, the
versioned tree of OpenVINO Model Server's `rerank`/`embeddings` export, and ov, the flat folder of
its `rerank_ov`/`embeddings_ov` export.

The first two steps check everything that can be checked cheaply (source, architecture,
options, repository, version, calibration file, accuracy gate) before the slow conversion
starts. Each step reads what earlier steps put into the ExportContext and adds its own result.
The quantization step (only with --quantization static or --weight-format auto) comes after the
tokenizer, whose IR and framing build its calibration inputs: it reads ctx.model_xml (the fp32
conversion) and points it at the model it keeps. Nothing reaches the repository before the
final commit step.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from export_models import (
    accuracy,
    calibration_data,
    causal_lm,
    convert_model,
    convert_tokenizer,
    holdpoints,
    interruption,
    ovms_compat,
    prompt_framing,
    repository,
    source,
)
from export_models.accuracy import STATIC_INT8, ModelFormat
from export_models.errors import (
    AccuracyGateError,
    ExportError,
    ExportIOError,
    InvalidOptionError,
    RepositoryNotWritableError,
)
from serving.repository.families import Conversion, Family, find_family
from serving.repository.layout import (
    CONFIG_FILE,
    FLAT_MODEL_XML,
    FLAT_TOKENIZER_XML,
    GRAPH_FILE,
    HF_CONFIG_FILE,
    MODEL_INFO_KEY,
    MODEL_XML,
    SUBCONFIG_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_INFO_KEY,
    GraphFormat,
    ModelInfo,
    Pooling,
    Task,
    TokenizerInfo,
    write_info,
    write_ovms_model_info,
)

if TYPE_CHECKING:
    import openvino as ov

WEIGHT_FORMATS = convert_model.WEIGHT_FORMATS
AUTO = "auto"  # --weight-format auto: the fastest of fp16, int8 and static int8 that passes the gate
QUANTIZATIONS = ("none", "static")
ACCURACY_FILE = "accuracy.json"  # beside the quantized IR


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
    trust_remote_code: bool = False  # run the model's own code (config.json auto_map)
    aliases: tuple[str, ...] = ()  # other names the model is served under; none: keep the existing ones
    graph_format: GraphFormat = GraphFormat.LEGACY  # which OVMS graph and folder form to write
    # rerank
    max_doc_length: int = 16000
    max_allowed_chunks: int = 10000
    instruction: str | None = None  # prompt-template rerankers: the default instruction
    # embeddings
    pooling: Pooling | None = None  # default: the model's sentence-transformers pooling, else CLS
    normalize: bool = True
    truncate: bool = False
    prompts: tuple[tuple[str, str], ...] = ()  # (name, text), on top of the model's own prompts
    default_prompt_name: str | None = None
    # static int8 (weights and activations, calibrated; with weight_format int8) or none
    quantization: str = "none"
    calibration_data: Path | None = None  # default: the set shipped in export_models/data/
    max_accuracy_drop: str | None = None  # export_models/accuracy.py, parse_gate

    @property
    def config_path(self) -> Path:
        return self.config_file_path or self.model_repository_path / CONFIG_FILE

    @property
    def quantizes(self) -> bool:
        """The export calibrates and reports accuracy (static int8, or auto choosing among formats)."""
        return self.quantization == "static" or self.weight_format == AUTO


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
    family: Family | None = None  # the recipe the model follows (None: a plain BERT-style model)
    plan: repository.RepositoryPlan | None = None
    pooling: Pooling | None = None
    # The current inference IR; a quantization step would replace it with its output.
    model_xml: Path | None = None
    hf_tokenizer: Any = None
    tokenizer_ir: ov.Model | None = None
    tokenizer_info: TokenizerInfo | None = None
    # What is written: the requested format, or what the quantization step chose.
    model_format: ModelFormat | None = None
    calibration: list[calibration_data.Request] | None = None  # --calibration_data, read up front
    gate: accuracy.AccuracyGate | None = None
    accuracy_report: accuracy.AccuracyReport | None = None
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
    check_quantization_options(request)
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
    if request.graph_format is GraphFormat.OV and request.version not in (None, 1):
        raise InvalidOptionError(
            "--version: --graph_format ov writes one flat folder, served as version 1; replace it with "
            "--overwrite_models (or point config.json at a new folder)"
        )
    if not request.target_device.strip():
        raise InvalidOptionError("--target_device must name an OpenVINO device (CPU, GPU, AUTO, ...)")
    resolved = source.resolve_source(request.source_model)
    family = find_family(request.task, resolved.architecture, resolved.model_type, resolved.recorded)
    exported_by_torch = family is not None and family.conversion is Conversion.TORCH_EXPORT
    if exported_by_torch and request.extra_quantization_params:
        raise InvalidOptionError(
            f"--extra_quantization_params: {resolved.architecture} is converted with torch.export, not "
            "optimum-cli, so optimum's options do not apply"
        )
    if request.instruction is not None and (family is None or family.template is None):
        raise InvalidOptionError(f"--instruction: {resolved.architecture} takes no instruction")
    notes = source.validate_for_task(resolved, request.task, family, request.trust_remote_code)
    ctx.source, ctx.family = resolved, family
    if request.quantizes:
        ctx.gate = accuracy.parse_gate(request.task, request.max_accuracy_drop)
        if request.calibration_data is not None:
            ctx.calibration = calibration_data.read_file(request.task, request.calibration_data)
    else:
        ctx.model_format = ModelFormat.plain(request.weight_format)
    if request.task is Task.EMBEDDINGS:
        fallback = family.pooling if family and family.pooling else Pooling.CLS
        ctx.pooling = request.pooling or source.default_pooling(resolved, fallback)
    recipe = f" (recipe {family.name}, {family.conversion.value})" if family else ""
    ctx.progress.note(f"{resolved.recorded}: {resolved.architecture}{recipe}")
    for note in notes:
        ctx.progress.note(f"note: {note}")


def check_quantization_options(request: ExportRequest) -> None:
    """Option combinations that cannot work, refused before anything is converted."""
    if request.weight_format not in (*WEIGHT_FORMATS, AUTO):
        raise InvalidOptionError(
            f"--weight-format {request.weight_format}: choose one of {', '.join((*WEIGHT_FORMATS, AUTO))}"
        )
    if request.quantization not in QUANTIZATIONS:
        raise InvalidOptionError(
            f"--quantization {request.quantization}: choose one of {', '.join(QUANTIZATIONS)}"
        )
    if request.quantization == "static" and request.weight_format != "int8":
        raise InvalidOptionError(
            f"--quantization static makes int8 weights, not {request.weight_format}: use it with "
            "--weight-format int8 (the default); --weight-format auto considers static int8 by itself"
        )
    if not request.quantizes:
        for name, value in (
            ("--calibration_data", request.calibration_data),
            ("--max_accuracy_drop", request.max_accuracy_drop),
        ):
            if value is not None:
                raise InvalidOptionError(f"{name} applies to --quantization static and --weight-format auto")
        return
    if request.extra_quantization_params:
        raise InvalidOptionError(
            "--extra_quantization_params: with --quantization static or --weight-format auto the model is "
            "quantized by the export itself (NNCF), not by optimum-cli"
        )
    if request.weight_format == AUTO and request.target_device.upper() != "CPU":
        raise InvalidOptionError(
            f"--weight-format auto measures speed on this machine's CPU, not on {request.target_device}: "
            "choose a format"
        )


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
        aliases=request.aliases,
        graph_format=request.graph_format,
    )
    action = "replacing" if ctx.plan.replaces_version else "writing"
    ctx.progress.note(f"{action} version {ctx.plan.version} of {model_name} in {ctx.plan.model_dir}")


def conversion_format(request: ExportRequest) -> str:
    """The weight format the conversion writes: fp32 when the export quantizes it itself."""
    return "fp32" if request.quantizes else request.weight_format


def convert_model_step(ctx: ExportContext) -> None:
    """optimum-cli by default; the family's recipe may build a classifier first, ask optimum for the
    sentence-transformers export, or convert with torch.export instead."""
    resolved, plan = ctx.resolved()
    request = ctx.request
    conversion = ctx.family.conversion if ctx.family else Conversion.OPTIMUM
    output_dir = plan.work_dir / "optimum"
    if conversion is Conversion.TORCH_EXPORT:
        from export_models.torch_export import convert_with_torch_export

        ctx.model_xml = convert_with_torch_export(
            resolved, request.task, conversion_format(request), output_dir, request.trust_remote_code
        )
        return
    model_path = None
    if conversion is Conversion.CAUSAL_LM_TO_CLASSIFIER:
        assert ctx.family is not None and ctx.family.scoring is not None
        model_path = causal_lm.build_token_classifier(
            resolved, ctx.family.scoring, plan.work_dir / "classifier", request.trust_remote_code
        )
    ctx.model_xml = convert_model.convert_model(
        resolved,
        request.task,
        conversion_format(request),
        request.extra_quantization_params,
        output_dir=output_dir,
        waiting=ctx.progress.waiting,
        inherited_fds=(plan.staging_lock,),
        model_path=model_path,
        library="sentence_transformers" if conversion is Conversion.SENTENCE_TRANSFORMERS else "transformers",
        trust_remote_code=request.trust_remote_code,
    )


def convert_tokenizer_step(ctx: ExportContext) -> None:
    import openvino as ov

    resolved, _ = ctx.resolved()
    request, family = ctx.request, ctx.family
    tokenizer = convert_tokenizer.load_hf_tokenizer(resolved, request.trust_remote_code)
    st_limit = (
        source.sentence_transformers_max_seq_length(resolved) if ctx.request.task is Task.EMBEDDINGS else None
    )
    max_length = convert_tokenizer.max_sequence_length(
        tokenizer,
        resolved.config,
        convert_tokenizer.position_offset(resolved, request.trust_remote_code),
        st_limit,
    )
    if family is not None and family.max_length is not None:
        max_length = min(max_length, family.max_length)
    info = convert_tokenizer.derive_tokenizer_info(tokenizer, resolved.config, max_length)
    # OVMS's embeddings calculators expect the IR to add the special tokens, its rerank calculators
    # expect it not to; the server strips what the IR adds (TokenizerInfo.adds_special_tokens).
    adds_special_tokens = request.task is Task.EMBEDDINGS
    info = replace(info, adds_special_tokens=adds_special_tokens)
    ctx.tokenizer_ir = convert_tokenizer.convert_tokenizer_ir(tokenizer, adds_special_tokens)
    compiled = ov.Core().compile_model(ctx.tokenizer_ir, "CPU")
    if adds_special_tokens:
        convert_tokenizer.check_added_special_tokens(compiled, info)
    if family is not None and family.template is not None:
        # The IR picks the last non-padding token with the config's padding id (the classifier the
        # causal-LM route builds takes the tokenizer's).
        pad = resolved.config.get("pad_token_id")
        if family.conversion is Conversion.CAUSAL_LM_TO_CLASSIFIER or pad is None:
            pad = tokenizer.pad_token_id
        info = prompt_framing.template_info(tokenizer, info, family.template, request.instruction, int(pad))
        prompt_framing.prove_template(tokenizer, info, family.template, compiled)
    if request.task is Task.EMBEDDINGS:
        own_prompts, own_default = source.sentence_transformers_prompts(resolved)
        if not own_prompts and family is not None:
            own_prompts = dict(family.prompts)
        info = prompt_framing.prompt_info(
            info, own_prompts, own_default, dict(request.prompts), request.default_prompt_name
        )
    ctx.tokenizer_info = info
    ctx.hf_tokenizer = tokenizer
    checked = [*convert_tokenizer.SELF_CHECK_TEXTS]
    checked += [prompt + convert_tokenizer.PROBE_QUERY for prompt in info.prompts.values() if prompt]
    mismatches = convert_tokenizer.self_check(compiled, tokenizer, checked, adds_special_tokens)
    if mismatches:
        ctx.progress.note(
            "warning: the converted tokenizer differs from the Hugging Face tokenizer on "
            + ", ".join(repr(text) for text in mismatches)
        )
    if info.query_template != "{query}":
        ctx.progress.note(
            f"max_length {info.max_length}; pair = {len(info.pair_prefix)} template tokens + "
            f"{info.query_template!r} + {len(info.pair_middle)} + {info.document_template!r} + "
            f"{len(info.pair_suffix)}; default instruction {info.default_instruction!r}"
        )
    else:
        ctx.progress.note(
            f"max_length {info.max_length}; pair = {info.pair_prefix} query {info.pair_middle} document "
            f"{info.pair_suffix}; second token type {info.second_type_id}"
        )
    if info.prompts:
        ctx.progress.note(f"prompts {info.prompts}; default {info.default_prompt_name!r}")


def exported_config(ctx: ExportContext) -> dict[str, Any]:
    """The config.json of the model as exported (optimum's copy: a causal-LM reranker's is the
    classifier's), else the source's."""
    assert ctx.model_xml is not None and ctx.source is not None
    written = ctx.model_xml.parent / HF_CONFIG_FILE
    if written.is_file():
        return dict(json.loads(written.read_text(encoding="utf-8")))
    return dict(ctx.source.config)


def save_tokenizer_files(ctx: ExportContext, folder: Path) -> dict[str, Any]:
    """The Hugging Face tokenizer's files (tokenizer_config.json, ...) into folder; returns
    tokenizer_config.json. A reranker's model_max_length is --max_doc_length, as OVMS's export sets it."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx.hf_tokenizer.save_pretrained(folder)
    config_file = folder / TOKENIZER_CONFIG_FILE
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if ctx.request.task is Task.RERANK:
        config["model_max_length"] = ctx.request.max_doc_length
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return dict(config)


def quantize_step(ctx: ExportContext) -> None:
    """Static int8 (or, for --weight-format auto, the fastest format on this CPU) from the fp32 IR,
    calibrated and checked on the server's own inputs; fails when the accuracy gate does."""
    import openvino as ov

    from export_models import quantize
    from export_models.serving_run import ServingSetup
    from serving.repository.config import RerankOptions

    _, plan = ctx.resolved()
    request, family = ctx.request, ctx.family
    assert ctx.model_xml is not None and ctx.tokenizer_ir is not None and ctx.tokenizer_info is not None
    assert ctx.gate is not None
    setup = ServingSetup(
        task=request.task,
        tokenizer_ir=ctx.tokenizer_ir,
        info=ctx.tokenizer_info,
        rerank_options=RerankOptions(request.max_allowed_chunks, request.max_doc_length),
        pooling=ctx.pooling or Pooling.CLS,
        normalize=request.normalize,
        post_pooling=tuple(step.value for step in family.post_pooling) if family else (),
    )
    formats = accuracy.AUTO_CANDIDATES if request.weight_format == AUTO else (STATIC_INT8,)
    origin = (
        str(request.calibration_data)
        if request.calibration_data
        else (f"shipped {calibration_data.shipped_file(request.task, 'calibration')}")
    )
    work = quantize.QuantizationPlan(
        setup, formats, ctx.gate, ctx.calibration, origin, lambda fmt: plugin_config(request, fmt)
    )
    chosen, model, report = quantize.choose_model(
        work, ov.Core().read_model(ctx.model_xml), ctx.progress.note, ctx.progress.waiting
    )
    for line in report.table():
        ctx.progress.note(line)
    if chosen is None or model is None:
        failed = "; ".join(f"{c.label}: {', '.join(c.failures)}" for c in report.candidates)
        raise AccuracyGateError(
            f"{'no format passes' if len(formats) > 1 else 'static int8 fails'} the accuracy gate "
            f"({ctx.gate.describe()}) against the fp32 model: {failed}; nothing was written "
            "(--max_accuracy_drop sets the gate)"
        )
    if len(formats) > 1:
        ctx.progress.note(f"kept {chosen.label}: the fastest on this CPU that passes the gate")
    output = plan.work_dir / "quantized" / MODEL_XML
    output.parent.mkdir(parents=True)
    ov.save_model(model, output, compress_to_fp16=False)
    ctx.model_xml, ctx.model_format, ctx.accuracy_report = output, chosen.format, report


def write_irs_step(ctx: ExportContext) -> None:
    """Put ModelInfo/TokenizerInfo into the IRs' runtime info and save them as the staged version.

    The legacy form also gets OVMS's `model_info` runtime info: every key of the model's config.json
    in the model IR (its RerankCalculator reads the token ids there) and of tokenizer_config.json in
    the tokenizer IR.
    """
    import openvino as ov

    resolved, plan = ctx.resolved()
    request, family = ctx.request, ctx.family
    assert ctx.model_xml is not None and ctx.tokenizer_ir is not None and ctx.tokenizer_info is not None
    rerank = request.task is Task.RERANK
    assert ctx.model_format is not None
    report = ctx.accuracy_report.to_json() if ctx.accuracy_report else None
    ctx.model_info = ModelInfo(
        task=request.task.value,
        source_model=resolved.recorded,
        architecture=resolved.architecture,
        weight_format=ctx.model_format.weight_format,
        quantization=ctx.model_format.quantization,
        accuracy=report,
        hidden_size=source.hidden_size(resolved.config),
        num_labels=1 if family and family.scoring else (source.num_labels(resolved.config) if rerank else 0),
        family=family.name if family else "",
        conversion=(family.conversion if family else Conversion.OPTIMUM).value,
        post_pooling=[step.value for step in family.post_pooling] if family else [],
        export_id=ctx.export_id,
        max_doc_length=request.max_doc_length if rerank else None,
        max_allowed_chunks=request.max_allowed_chunks if rerank else None,
        pooling=ctx.pooling.value if ctx.pooling and not rerank else None,
        normalize_embeddings=None if rerank else request.normalize,
        truncate=None if rerank else request.truncate,
    )
    model = ov.Core().read_model(ctx.model_xml)
    write_info(model, MODEL_INFO_KEY, ctx.model_info)
    write_info(ctx.tokenizer_ir, TOKENIZER_INFO_KEY, replace(ctx.tokenizer_info, export_id=ctx.export_id))
    if plan.flat:
        model_file, tokenizer_file = FLAT_MODEL_XML, FLAT_TOKENIZER_XML
    else:
        model_file = tokenizer_file = MODEL_XML
        write_ovms_model_info(model, exported_config(ctx))
        write_ovms_model_info(ctx.tokenizer_ir, save_tokenizer_files(ctx, plan.work_dir / "hf_tokenizer"))
    _save_ir(model, plan.staged_model_version / model_file, f"the {request.task.value} IR", plan.repository)
    _save_ir(
        ctx.tokenizer_ir, plan.staged_tokenizer_version / tokenizer_file, "the tokenizer IR", plan.repository
    )
    if report is not None:
        (plan.staged_model_version / ACCURACY_FILE).write_text(json.dumps(report, indent=1), encoding="utf-8")


def _save_ir(model: ov.Model, xml: Path, what: str, repository_dir: Path) -> None:
    """xml + its .bin; OpenVINO's I/O errors say little, so say what failed."""
    import openvino as ov

    xml.parent.mkdir(parents=True, exist_ok=True)
    try:
        # compress_to_fp16=False: the weights stay in the format optimum wrote (fp32 stays fp32).
        ov.save_model(model, xml, compress_to_fp16=False)
    except RuntimeError as error:
        reason = repository.disk_full_reason(xml.parent) or " ".join(str(error).split())
        raise ExportIOError(f"cannot write {what} into {repository_dir}: {reason}") from error


def plugin_config(request: ExportRequest, model_format: ModelFormat) -> dict[str, str]:
    config = {"NUM_STREAMS": str(request.num_streams)}
    if model_format.weight_format == "fp32":
        # The CPU plugin would otherwise run bf16 on CPUs that have it; an fp32 export is exact.
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def node_options(request: ExportRequest, pooling: Pooling | None, max_length: int) -> dict[str, Any]:
    """The graph's option values: only fields OVMS's option messages have (the template picks
    those of its form); max_position_embeddings is the token limit of a framed pair."""
    if request.task is Task.RERANK:
        return {"max_allowed_chunks": request.max_allowed_chunks, "max_position_embeddings": max_length}
    assert pooling is not None
    return {"pooling": pooling.value, "normalize_embeddings": request.normalize, "truncate": request.truncate}


def render_step(ctx: ExportContext) -> None:
    """graph.pbtxt; legacy: subconfig.json; ov: the model's config.json and tokenizer files. Then
    the reasons OVMS would not serve the export as this server does, as warnings."""
    _, plan = ctx.resolved()
    request = ctx.request
    assert ctx.tokenizer_info is not None and ctx.model_info is not None and ctx.model_xml is not None
    assert ctx.model_format is not None
    options = node_options(request, ctx.pooling, ctx.tokenizer_info.max_length)
    graph = repository.render_graph(
        request.graph_format,
        plan.model_name,
        request.task,
        options,
        request.target_device,
        plugin_config(request, ctx.model_format),
    )
    plan.staged_model_dir.mkdir(parents=True, exist_ok=True)
    (plan.staged_model_dir / GRAPH_FILE).write_text(graph, encoding="utf-8")
    config = exported_config(ctx)
    if plan.flat:
        (plan.staged_model_dir / HF_CONFIG_FILE).write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        save_tokenizer_files(ctx, plan.staged_model_dir)
    else:
        (plan.staged_model_dir / SUBCONFIG_FILE).write_text(
            repository.render_subconfig(
                plan.model_name, request.task, request.target_device, plugin_config(request, ctx.model_format)
            ),
            encoding="utf-8",
        )
    inputs = {port.get_any_name() for port in _model_inputs(ctx.model_xml)}
    for warning in ovms_compat.ovms_warnings(
        request.graph_format, request.task, config, ctx.tokenizer_info, ctx.model_info, inputs, ctx.pooling
    ):
        ctx.progress.note(warning)


def _model_inputs(model_xml: Path) -> list[Any]:
    import openvino as ov

    return list(ov.Core().read_model(model_xml).inputs)


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


def default_steps(request: ExportRequest | None = None) -> list[ExportStep]:
    """The steps of an export; the quantization step only when `request` asks for it."""
    quantizing = []
    if request is not None and request.quantizes:
        title = (
            "Measuring fp16, int8 weights and static int8 on this CPU against the fp32 model"
            if request.weight_format == AUTO
            else "Quantizing to static int8 with calibration data, checking accuracy against fp32"
        )
        quantizing = [ExportStep(title, quantize_step)]
    return [
        ExportStep("Resolving the source model", resolve_source_step),
        ExportStep("Checking the model repository", plan_repository_step),
        ExportStep("Converting the model", convert_model_step),
        ExportStep("Converting the tokenizer with openvino-tokenizers", convert_tokenizer_step),
        *quantizing,
        ExportStep("Writing the IRs with their runtime info", write_irs_step),
        ExportStep("Rendering graph.pbtxt and the files of its form", render_step),
        ExportStep("Moving the new version into the repository", commit_step),
    ]


def run_export(
    request: ExportRequest, progress: Progress | None = None, steps: list[ExportStep] | None = None
) -> ExportResult:
    """Run the steps; on any failure the staging folder goes and the repository is untouched."""
    ctx = ExportContext(request=request, progress=progress or SilentProgress())
    steps = steps if steps is not None else default_steps(request)
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
    if plan.flat:
        model_bin = (plan.model_dir / FLAT_MODEL_XML).with_suffix(".bin")
    else:
        model_bin = (plan.model_dir / request.task.model_dir / str(ctx.version) / MODEL_XML).with_suffix(
            ".bin"
        )
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
