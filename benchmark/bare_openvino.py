"""The ceiling: the exported model run in-process by the server's own pipeline, no HTTP around it.

Same repository, same version, same tokenizer IR, model IR, device and plugin_config as the server
loads, and the server's own loading code and pipeline (serving/registry/loader.py,
serving/pipelines: tokenizer wrapper, framing, chunking, the batching core, pooling and scoring)
called directly on the calling thread, with the server's default batch policy. Whatever the
server adds on top (HTTP, JSON, asyncio) shows as efficiency < 100%.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openvino as ov

from benchmark.models import PreparedModel
from benchmark.systems import Runner, SystemSpec
from export_models.compare_results import read_exported_model
from serving.pipelines.batching import BatchPolicy
from serving.pipelines.embeddings import EmbeddingsPipeline
from serving.pipelines.rerank import RerankPipeline
from serving.pipelines.run import RequestLimits
from serving.registry.loader import load_version


class BareOpenVINORunner(Runner):
    def __init__(self, spec: SystemSpec, model: PreparedModel) -> None:
        super().__init__(spec, model)
        config_path = model.repositories[spec.weight_format]
        exported = read_exported_model(config_path, model.served_name)
        versions = exported.spec.scan_versions()
        files = versions[exported.version]
        self.servable = load_version(
            ov.Core(), exported.spec, files, BatchPolicy(), RequestLimits(), config_path.parent
        )

    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        pipeline = self.servable.pipeline
        assert isinstance(pipeline, RerankPipeline)
        return pipeline.rerank_blocking(query, list(documents)).scores.astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        pipeline = self.servable.pipeline
        assert isinstance(pipeline, EmbeddingsPipeline)
        return pipeline.embed_blocking(list(texts)).vectors

    def close(self) -> None:
        self.servable.close()
