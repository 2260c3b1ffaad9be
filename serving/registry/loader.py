"""Build a servable (tokenizer + model compiled, pipeline wired, warm-up passed) for one version.

Runs on the registry's loading thread; everything slow (reading, compiling, the first
inference) happens here, before the version is published to requests.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import openvino as ov

from serving.errors import ModelFailure, ServingError
from serving.pipelines.batching import BatchPolicy, BatchScheduler
from serving.pipelines.blocking import run_blocking
from serving.pipelines.embeddings import EmbeddingsParams, EmbeddingsPipeline
from serving.pipelines.inference import OpenVINORunner, openvino_error_message
from serving.pipelines.pooling import POST_POOLING
from serving.pipelines.rerank import RerankParams, RerankPipeline
from serving.pipelines.run import RequestLimits
from serving.pipelines.tokenize import Tokenizer
from serving.repository import interop, layout
from serving.repository.config import EmbeddingsOptions, RerankOptions, ServableSpec, resolve_options
from serving.repository.files import RepositoryFiles
from serving.repository.layout import ModelInfo, Task, TokenizerInfo
from serving.repository.versions import VersionFiles

log = logging.getLogger(__name__)

Pipeline = RerankPipeline | EmbeddingsPipeline
KNOWN_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


class LoadError(RuntimeError):
    """A version could not be loaded; the message says why (shown in /v1/config)."""


@dataclass
class LoadedVersion:
    """One loaded version: what requests run on. Counts the requests using it."""

    name: str
    version: int
    task: Task
    pipeline: Pipeline
    tokenizer_info: TokenizerInfo
    model_info: ModelInfo | None
    device: str
    inference_precision: str | None = None  # what the compiled model computes in (f32, bf16, f16)
    # Held so the Core outlives the models compiled by it: freed first, closing them segfaults.
    core: ov.Core | None = None
    loaded_at: float = field(default_factory=time.time)
    inflight: int = 0
    retired: bool = False

    @property
    def waiting(self) -> int:
        return self.pipeline.waiting

    def close(self) -> None:
        self.pipeline.close()
        self.core = None


def _vocab_size(model: ov.Model) -> int | None:
    """Rows of the word-embedding table the input_ids feed (a Gather), when it can be seen."""
    for parameter in model.get_parameters():
        if parameter.output(0).get_any_name() != "input_ids":
            continue
        frontier = [parameter.output(0)]
        for _ in range(4):  # input_ids -> (Convert) -> Gather
            following = []
            for output in frontier:
                for target in output.get_target_inputs():
                    node = target.get_node()
                    if node.get_type_name() == "Gather" and target.get_index() == 1:
                        shape = node.input(0).get_partial_shape()
                        if shape.rank.is_static and shape[0].is_static:
                            return int(shape[0].get_length())
                    if node.get_type_name() == "Convert":
                        following.append(node.output(0))
            frontier = following
    return None


def _shown(path: Path, root: Path | None) -> str:
    """A path as messages show it: relative to the repository, never the server's absolute layout."""
    if root is None:
        return path.name
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _check_paths(repository: RepositoryFiles, spec: ServableSpec, files: VersionFiles) -> None:
    """Refuse a version whose files resolve outside the repository and the allowed model roots."""
    paths = [files.tokenizer_xml, files.model_xml]
    paths += [path.with_suffix(".bin") for path in paths]
    if spec.flat:
        paths += [
            files.model_xml.parent / name for name in (layout.HF_CONFIG_FILE, layout.TOKENIZER_CONFIG_FILE)
        ]
    for path in paths:
        if not repository.is_allowed(path):
            raise LoadError(
                f"{repository.shown(path)}: resolves outside the model repository and the allowed model "
                "roots (--allowed_model_root); not read"
            )


PRECISION_HINT = "INFERENCE_PRECISION_HINT"
# Weights stored in these types were reduced at export (fp16, int8, int4...): the plugin's default
# precision suits them. Only all-f32 weights ask for f32 arithmetic.
_REDUCED_WEIGHT_TYPES = frozenset(
    {ov.Type.f16, ov.Type.bf16, ov.Type.i8, ov.Type.u8, ov.Type.i4, ov.Type.u4, ov.Type.nf4}
    | {getattr(ov.Type, name) for name in ("f8e4m3", "f8e5m2") if hasattr(ov.Type, name)}
)


def weights_are_f32(model: ov.Model) -> bool:
    """No weight reduced at export: float weights all f32, nothing quantized."""
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize" or (kind == "Constant" and op.get_element_type() in _REDUCED_WEIGHT_TYPES):
            return False
    return True


def compile_config(model: ov.Model, device: str, plugin_config: dict[str, str]) -> dict[str, str]:
    """plugin_config, with INFERENCE_PRECISION_HINT f32 for f32 weights when it names no precision.

    The CPU plugin computes in bf16 on CPUs that have it, and GPUs in f16: an f32 model (a plain
    optimum-cli folder, an OVMS folder without the setting) would then be off its source model by
    about 1e-2. This project's fp32 exports write the same setting into their plugin_config.
    """
    if PRECISION_HINT in plugin_config or device.split(".")[0] not in ("CPU", "GPU"):
        return plugin_config
    if not weights_are_f32(model):
        return plugin_config
    return {**plugin_config, PRECISION_HINT: "f32"}


def _read(core: ov.Core, path: Path, what: str, root: Path | None) -> ov.Model:
    # read_model offers a file that is not XML to every frontend, and TensorFlow's text-format
    # parser logs the words it could not place: a stray file's content would reach the log.
    try:
        with path.open("rb") as handle:
            head = handle.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError as err:
        raise LoadError(f"cannot read the {what} IR {_shown(path, root)}: {err.strerror}") from err
    if not head.startswith(b"<"):
        raise LoadError(f"cannot read the {what} IR {_shown(path, root)}: not an XML file")
    try:
        return core.read_model(path)
    except RuntimeError as err:
        raise LoadError(
            f"cannot read the {what} IR {_shown(path, root)}: {openvino_error_message(err)}"
        ) from err


def _compile(core: ov.Core, model: ov.Model, device: str, config: dict[str, str]) -> ov.CompiledModel:
    try:
        return core.compile_model(model, device, config)
    except RuntimeError as err:
        raise LoadError(
            f"cannot compile the model on target_device '{device}': {openvino_error_message(err)}"
        ) from err


def _tokenizer_info(
    spec: ServableSpec,
    files: VersionFiles,
    tokenizer: Tokenizer,
    models: tuple[ov.Model, ov.Model],
    root: Path | None,
) -> TokenizerInfo:
    """The export's TokenizerInfo; for a tree this exporter did not write (OVMS's, optimum-cli's),
    what its tokenizer IR and Hugging Face configs say (serving/repository/interop.py)."""
    tokenizer_model, model = models
    try:
        return layout.read_tokenizer_info(tokenizer_model)
    except KeyError:
        pass
    except (TypeError, ValueError) as err:
        raise LoadError(f"{_shown(files.tokenizer_xml, root)}: {err}") from err

    def probe(texts: list[str]) -> list[list[int]]:
        tokens = run_blocking(tokenizer.tokenize(texts))
        return [tokens.row(i).tolist() for i in range(len(tokens))]

    try:
        configs = (
            interop.configs_from_folder(files.model_xml.parent)
            if spec.flat
            else interop.configs_from_rt_info(model, tokenizer_model)
        )
        return interop.derive_tokenizer_info(spec.task, tokenizer_model, configs, probe)
    except ValueError as err:
        raise LoadError(f"{_shown(files.tokenizer_xml, root)}: {err}") from err


def result_output_index(model: ov.Model, task: Task, where: str = "the model") -> int:
    """The output a pipeline reads: a reranker's logits (1 or 2 labels); an embedder's token states."""
    names = [port.get_any_name() for port in model.outputs]
    ranks = [port.get_partial_shape().rank for port in model.outputs]
    if task is Task.RERANK:
        index = names.index("logits") if "logits" in names else 0
        shape = model.outputs[index].get_partial_shape()
        if shape.rank.is_static and shape.rank.get_length() == 2 and shape[1].is_static:
            labels = shape[1].get_length()
            if labels not in (1, 2):
                raise LoadError(f"{where}: a reranker has 1 or 2 labels, this model has {labels}")
        return index
    for name in ("last_hidden_state", "token_embeddings"):
        if name in names:
            return names.index(name)
    # OVMS's embeddings calculators take the three-dimensional output.
    return next((i for i, rank in enumerate(ranks) if rank.is_static and rank.get_length() == 3), 0)


def load_version(
    core: ov.Core,
    spec: ServableSpec,
    files: VersionFiles,
    batching: BatchPolicy,
    limits: RequestLimits | None = None,
    root: Path | None = None,
    repository: RepositoryFiles | None = None,
) -> LoadedVersion:
    """Read, compile and warm up version `files.version` of `spec`; raises LoadError.

    `root` is the repository folder: messages name files relative to it. `repository`: every file
    read must resolve inside its allowed roots (a version folder or IR may be a symlink).
    """
    limits = limits if limits is not None else RequestLimits()
    label = f"{spec.name}:{files.version}"
    if repository is not None:
        _check_paths(repository, spec, files)
    tokenizer_model = _read(core, files.tokenizer_xml, "tokenizer", root)
    model = _read(core, files.model_xml, spec.task.value, root)
    try:
        model_info: ModelInfo | None = layout.read_model_info(model)
    except KeyError:
        model_info = None  # optional: only descriptive
    except (TypeError, ValueError) as err:
        raise LoadError(f"{_shown(files.model_xml, root)}: {err}") from err
    if model_info is not None and model_info.task != spec.task.value:
        raise LoadError(
            f"{_shown(files.model_xml, root)} is a {model_info.task} model, the graph is {spec.task.value}"
        )
    unknown_steps = sorted(set(model_info.post_pooling) - POST_POOLING.keys()) if model_info else []
    if unknown_steps:
        raise LoadError(
            f"{_shown(files.model_xml, root)}: post-pooling steps {unknown_steps} are unknown to this server"
        )
    inputs = {port.get_any_name() for port in model.inputs}
    if "input_ids" not in inputs or "attention_mask" not in inputs or inputs - KNOWN_INPUTS:
        raise LoadError(
            f"{_shown(files.model_xml, root)}: inputs {sorted(inputs)}; "
            "expected input_ids, attention_mask [, token_type_ids]"
        )
    output_index = result_output_index(model, spec.task, _shown(files.model_xml, root))
    vocab_size = _vocab_size(model)
    try:
        options = resolve_options(spec.task, spec.options, model_info)
    except ValueError as err:
        raise LoadError(f"{_shown(files.model_xml, root)}: recorded settings: {err}") from err

    try:
        # Rewires the IR's graph; its runtime info stays readable below.
        tokenizer = Tokenizer(core, tokenizer_model, f"{label}:tokenizer")
    except RuntimeError as err:
        raise LoadError(f"cannot compile the tokenizer: {openvino_error_message(err)}") from err
    try:
        info = _tokenizer_info(spec, files, tokenizer, (tokenizer_model, model), root)
    except BaseException:
        tokenizer.close()
        raise
    if info.adds_special_tokens:
        tokenizer.strip = (len(info.single_prefix), len(info.single_suffix))
    if spec.options.max_position_embeddings is not None:  # the graph's limit (OVMS's option)
        info = replace(info, max_length=min(info.max_length, spec.options.max_position_embeddings))
    model_export_id = model_info.export_id if model_info is not None else None
    if None not in (info.export_id, model_export_id) and info.export_id != model_export_id:
        tokenizer.close()
        raise LoadError(
            f"version {files.version}: the tokenizer and the model come from different exports "
            f"(export ids {info.export_id} and {model_export_id}): export the version again"
        )
    device = spec.model.target_device
    try:
        compiled = _compile(core, model, device, compile_config(model, device, spec.model.plugin_config))
    except LoadError:
        tokenizer.close()
        raise
    try:
        precision: str | None = compiled.get_property(PRECISION_HINT).get_type_name()
    except (RuntimeError, AttributeError):  # a device without the property
        precision = None
    try:
        slots = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    except RuntimeError:
        slots = 1
    scheduler = BatchScheduler(
        OpenVINORunner(compiled, slots, output_index), batching, info.pad_token_id, label
    )

    pipeline: Pipeline
    if spec.task is Task.RERANK:
        assert isinstance(options, RerankOptions)
        pipeline = RerankPipeline(tokenizer, scheduler, info, limits, options)
    else:
        assert isinstance(options, EmbeddingsOptions)
        hidden = model.outputs[output_index].get_partial_shape()
        hidden_size = hidden[hidden.rank.get_length() - 1]
        if not hidden_size.is_static:
            scheduler.close()
            tokenizer.close()
            raise LoadError(f"{_shown(files.model_xml, root)}: the hidden size of the output is not static")
        pipeline = EmbeddingsPipeline(
            tokenizer,
            scheduler,
            info,
            limits,
            options,
            hidden_size.get_length(),
            vocab_size,
            post_pooling=tuple(model_info.post_pooling) if model_info else (),
        )
    _warm_up(pipeline)
    log.info("loaded %s (%s on %s, %d infer requests)", label, spec.task.value, device, slots)
    return LoadedVersion(
        name=spec.name,
        version=files.version,
        task=spec.task,
        pipeline=pipeline,
        tokenizer_info=info,
        model_info=model_info,
        device=device,
        inference_precision=precision,
        core=core,
    )


def _warm_up(pipeline: Pipeline) -> None:
    """One real inference: catches models that compile but cannot run, and pays the first-call cost."""
    try:
        if isinstance(pipeline, RerankPipeline):
            run_blocking(pipeline.rerank("warm up", ["a short document", "another one"], RerankParams()))
        else:
            run_blocking(pipeline.embed(["warm up"], None, EmbeddingsParams()))
    except ModelFailure as err:
        pipeline.close()
        raise LoadError(f"warm-up inference failed: {err.message}") from err
    except (RuntimeError, ValueError, ServingError) as err:
        pipeline.close()
        raise LoadError(f"warm-up inference failed: {openvino_error_message(err)}") from err
    except BaseException:
        pipeline.close()
        raise
