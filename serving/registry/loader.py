"""Build a servable (tokenizer + model compiled, pipeline wired, warm-up passed) for one version.

Runs on the registry's loading thread; everything slow (reading, compiling, the first
inference) happens here, before the version is published to requests.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import openvino as ov

from serving.errors import ServingError
from serving.pipelines.batching import BatchPolicy
from serving.pipelines.embeddings import EmbeddingsPipeline
from serving.pipelines.inference import OpenVINOBackend, openvino_error_message
from serving.pipelines.pooling import POST_POOLING
from serving.pipelines.rerank import RerankPipeline
from serving.pipelines.tokenize import Tokenizer
from serving.repository import layout
from serving.repository.config import EmbeddingsOptions, RerankOptions, ServableSpec
from serving.repository.layout import ModelInfo, Task, TokenizerInfo
from serving.repository.versions import VersionFiles

log = logging.getLogger(__name__)

Pipeline = RerankPipeline | EmbeddingsPipeline
KNOWN_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


class LoadError(RuntimeError):
    """A version could not be loaded; the message says why (shown in /v1/config)."""


@dataclass
class Servable:
    """One loaded version: what requests run on. Counts the requests using it."""

    name: str
    version: int
    task: Task
    pipeline: Pipeline
    tokenizer_info: TokenizerInfo
    model_info: ModelInfo | None
    device: str
    loaded_at: float = field(default_factory=time.time)
    inflight: int = 0
    retired: bool = False

    @property
    def waiting(self) -> int:
        return self.pipeline.waiting

    def close(self) -> None:
        self.pipeline.close()


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


def _read(core: ov.Core, path, what: str) -> ov.Model:
    try:
        return core.read_model(path)
    except RuntimeError as err:
        raise LoadError(f"cannot read the {what} IR {path}: {openvino_error_message(err)}") from err


def _compile(core: ov.Core, model: ov.Model, device: str, config: dict[str, str]) -> ov.CompiledModel:
    try:
        return core.compile_model(model, device, config)
    except RuntimeError as err:
        raise LoadError(
            f"cannot compile the model on target_device '{device}': {openvino_error_message(err)}"
        ) from err


def load_servable(core: ov.Core, spec: ServableSpec, files: VersionFiles, batching: BatchPolicy) -> Servable:
    """Read, compile and warm up version `files.version` of `spec`; raises LoadError."""
    label = f"{spec.name}:{files.version}"
    tokenizer_model = _read(core, files.tokenizer_xml, "tokenizer")
    model = _read(core, files.model_xml, spec.task.value)
    try:
        info = layout.read_tokenizer_info(tokenizer_model)
    except (KeyError, TypeError, ValueError) as err:
        raise LoadError(f"{files.tokenizer_xml}: {err}") from err
    try:
        model_info: ModelInfo | None = layout.read_model_info(model)
    except KeyError:
        model_info = None  # optional: only descriptive
    except (TypeError, ValueError) as err:
        raise LoadError(f"{files.model_xml}: {err}") from err
    if model_info is not None and model_info.task != spec.task.value:
        raise LoadError(f"{files.model_xml} is a {model_info.task} model, the graph is {spec.task.value}")
    unknown_steps = sorted(set(model_info.post_pooling) - POST_POOLING.keys()) if model_info else []
    if unknown_steps:
        raise LoadError(f"{files.model_xml}: post-pooling steps {unknown_steps} are unknown to this server")
    inputs = {port.get_any_name() for port in model.inputs}
    if "input_ids" not in inputs or "attention_mask" not in inputs or inputs - KNOWN_INPUTS:
        raise LoadError(
            f"{files.model_xml}: inputs {sorted(inputs)}; "
            "expected input_ids, attention_mask [, token_type_ids]"
        )
    vocab_size = _vocab_size(model)
    output_index = 0
    if spec.task is Task.EMBEDDINGS:
        names = [port.get_any_name() for port in model.outputs]
        output_index = names.index("last_hidden_state") if "last_hidden_state" in names else 0

    try:
        tokenizer = Tokenizer(core, tokenizer_model, f"{label}:tokenizer")
    except RuntimeError as err:
        raise LoadError(f"cannot compile the tokenizer: {openvino_error_message(err)}") from err
    device = spec.model.target_device
    compiled = _compile(core, model, device, spec.model.plugin_config)
    try:
        pool_size = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    except RuntimeError:
        pool_size = 1
    backend = OpenVINOBackend(compiled, pool_size, label, output_index)

    pipeline: Pipeline
    if spec.task is Task.RERANK:
        assert isinstance(spec.options, RerankOptions)
        pipeline = RerankPipeline(tokenizer, backend, info, spec.options, batching)
    else:
        assert isinstance(spec.options, EmbeddingsOptions)
        hidden = model.outputs[output_index].get_partial_shape()
        hidden_size = hidden[hidden.rank.get_length() - 1]
        if not hidden_size.is_static:
            raise LoadError(f"{files.model_xml}: the hidden size of the output is not static")
        pipeline = EmbeddingsPipeline(
            tokenizer,
            backend,
            info,
            spec.options,
            batching,
            hidden_size.get_length(),
            vocab_size,
            post_pooling=tuple(model_info.post_pooling) if model_info else (),
        )
    _warm_up(pipeline, label)
    log.info("loaded %s (%s on %s, %d infer requests)", label, spec.task.value, device, pool_size)
    return Servable(
        name=spec.name,
        version=files.version,
        task=spec.task,
        pipeline=pipeline,
        tokenizer_info=info,
        model_info=model_info,
        device=device,
    )


def _warm_up(pipeline: Pipeline, label: str) -> None:
    """One real inference: catches models that compile but cannot run, and pays the first-call cost."""
    try:
        if isinstance(pipeline, RerankPipeline):
            scores = pipeline.rerank_blocking("warm up", ["a short document", "another one"])
            finite = bool(np.isfinite(scores).all())
        else:
            vectors = pipeline.embed_blocking(["warm up"])
            finite = bool(np.isfinite(vectors).all())
    except (RuntimeError, ValueError, ServingError) as err:
        pipeline.close()
        raise LoadError(f"warm-up inference failed: {openvino_error_message(err)}") from err
    except Exception:
        pipeline.close()
        raise
    if not finite:
        pipeline.close()
        raise LoadError(f"{label}: warm-up inference gave non-finite values")
