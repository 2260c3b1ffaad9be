"""The ceiling: the exported IRs run in-process with OpenVINO alone, no HTTP and no server around them.

Same tokenizer IR, same model IR, same device and plugin_config as subconfig.json gives the server,
and the server's own request pieces called directly (serving/pipelines: the tokenizer wrapper,
framing, batch planning, pooling): sequences sorted by length, padded batches under the server's
token budget, on as many infer requests as the compiled model has streams. Whatever the server
adds on top (HTTP, JSON, asyncio, scheduling) shows as efficiency < 100%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import openvino as ov

from benchmark.models import PreparedModel
from benchmark.systems import Runner, SystemSpec
from export_models.compare_results import ExportedModel, read_exported_model
from serving.pipelines.batching import BatchPolicy, plan_batches
from serving.pipelines.framing import (
    EncodedBatch,
    Frame,
    Segments,
    build_batch,
    framed_lengths,
    pair_frame,
    single_frame,
    whole_texts,
)
from serving.pipelines.pooling import normalize, pool
from serving.pipelines.scoring import relevance_logits, sigmoid
from serving.pipelines.tokenize import Tokenizer

# Turns a batch's model output into one row per sequence: relevance logits, or pooled embeddings.
Reduce = Callable[[np.ndarray, EncodedBatch], np.ndarray]


class BareOpenVINORunner(Runner):
    def __init__(self, spec: SystemSpec, model: PreparedModel) -> None:
        super().__init__(spec, model)
        config_path = model.repositories[spec.weight_format]
        self.exported: ExportedModel = read_exported_model(config_path, model.served_name)
        servable = self.exported.spec
        core = ov.Core()
        self.tokenizer = Tokenizer(core, core.read_model(self.exported.tokenizer_xml), f"bare-{spec.key}")
        self.network = core.compile_model(
            str(self.exported.model_xml), servable.model.target_device, servable.model.plugin_config
        )
        self.input_names = [port.get_any_name() for port in self.network.inputs]
        n_requests = int(self.network.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = ov.AsyncInferQueue(self.network, max(1, n_requests))
        self.info = self.exported.tokenizer_info
        # The server's default batching (sorted by length, padded batches under a token budget): the
        # ceiling differs from the server only by what the server adds around the model.
        self.batch_policy = BatchPolicy()

    def _infer(self, frame: Frame, segments: Segments, reduce: Reduce) -> np.ndarray:
        """One row per segment (reduce(output 0, batch) per batch), in segment order.

        Sorted by length, then cut into padded batches under the server's token budget.
        """
        batches = plan_batches(framed_lengths(frame, segments), self.batch_policy)
        results: list[np.ndarray | None] = [None] * len(batches)

        def collect(request: ov.InferRequest, userdata: tuple[int, EncodedBatch]) -> None:
            index, batch = userdata
            results[index] = reduce(request.get_output_tensor(0).data, batch)

        self.queue.set_callback(collect)
        for index, rows in enumerate(batches):
            batch = build_batch(frame, segments, rows, self.info.pad_token_id)
            inputs = batch.as_inputs()
            self.queue.start_async({name: inputs[name] for name in self.input_names}, (index, batch))
        self.queue.wait_all()
        order = np.concatenate(batches)
        merged = np.concatenate(results)  # type: ignore[arg-type]
        unsorted = np.empty_like(merged)
        unsorted[order] = merged
        return unsorted

    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer.tokenize_blocking([query, *documents])
        frame = pair_frame(self.info, tokens.row(0))
        # The workloads' documents fit; a longer one is cut here (the server would score its chunks).
        segments = whole_texts(tokens.tail(1), max_body=self.info.max_length - frame.overhead)
        logits = self._infer(frame, segments, lambda output, _: relevance_logits(output))
        return sigmoid(logits).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        frame = single_frame(self.info)
        tokens = self.tokenizer.tokenize_blocking(list(texts))
        segments = whole_texts(tokens, max_body=self.info.max_length - frame.overhead)
        options = self.exported.embeddings_options
        vectors = self._infer(
            frame, segments, lambda output, batch: pool(output, batch.attention_mask, options.pooling)
        )
        return normalize(vectors) if options.normalize_embeddings else vectors

    def close(self) -> None:
        self.tokenizer.close()
