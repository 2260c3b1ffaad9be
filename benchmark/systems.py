"""The systems under test: one runner interface, one entry per system in SYSTEMS.

A runner loads one prepared model and answers one request of a workload: scores in document order
(rerank) or embeddings in input order. In-process runners (Hugging Face, sentence-transformers,
bare OpenVINO) run inside a worker process of their own, so their memory figure is theirs alone;
the server runner is an HTTP client of a server process the harness starts.

To add a system (a TEI-style route, a server with cross-request batching, ...): write a Runner and
add a SystemSpec to SYSTEMS.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from benchmark.models import PreparedModel
from benchmark.workloads import Workload
from export_models.compare_results import ServerClient
from export_models.hf_reference import HFEmbeddingReference, HFRerankReference, quiet_progress_bars
from export_models.source import default_pooling, resolve_source
from serving.repository.layout import Task

# How "a plain user" batches in the Hugging Face and sentence-transformers runners.
USER_BATCH_SIZE = 32


class Kind(str, Enum):
    HF = "hf"
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    SERVER = "server"
    BARE_OPENVINO = "bare-openvino"


@dataclass(frozen=True)
class SystemSpec:
    key: str
    label: str
    kind: Kind
    weight_format: str = "fp32"  # the export served or compiled (server, bare OpenVINO): config.EXPORTS key
    backend: str | None = None  # sentence-transformers backend
    concurrent: bool = False  # measured at every concurrency of the config (HTTP servers); else at 1
    static_int8: bool = False  # sentence-transformers: its own static int8 OpenVINO export
    server_args: tuple[str, ...] = ()  # more `python -m serving` options
    workloads: tuple[str, ...] | None = None  # the workloads it runs (None: all)

    @property
    def in_process(self) -> bool:
        return self.kind is not Kind.SERVER


PER_REQUEST = ("--no_cross_request_batching",)  # the server before requests shared batches
CONCURRENT_WORKLOADS = ("R3", "R3-ce")

SYSTEMS: tuple[SystemSpec, ...] = (
    SystemSpec("hf-fp32", "HF transformers fp32", Kind.HF),
    SystemSpec("st-torch", "sentence-transformers torch", Kind.SENTENCE_TRANSFORMERS, backend="torch"),
    SystemSpec(
        "st-openvino", "sentence-transformers openvino", Kind.SENTENCE_TRANSFORMERS, backend="openvino"
    ),
    SystemSpec(
        "st-openvino-static",
        "sentence-transformers openvino static int8",
        Kind.SENTENCE_TRANSFORMERS,
        backend="openvino",
        static_int8=True,
    ),
    SystemSpec("server-fp32", "server fp32", Kind.SERVER, "fp32", concurrent=True),
    SystemSpec("server-fp16", "server fp16", Kind.SERVER, "fp16", concurrent=True),
    SystemSpec("server-int8", "server int8", Kind.SERVER, "int8", concurrent=True),
    SystemSpec("server-int8-static", "server static int8", Kind.SERVER, "int8-static", concurrent=True),
    SystemSpec(
        "server-fp16-per-request",
        "server fp16, per-request batches",
        Kind.SERVER,
        "fp16",
        concurrent=True,
        server_args=PER_REQUEST,
        workloads=CONCURRENT_WORKLOADS,
    ),
    SystemSpec(
        "server-int8-static-per-request",
        "server static int8, per-request batches",
        Kind.SERVER,
        "int8-static",
        concurrent=True,
        server_args=PER_REQUEST,
        workloads=CONCURRENT_WORKLOADS,
    ),
    SystemSpec("ov-fp32", "bare OpenVINO fp32", Kind.BARE_OPENVINO, "fp32"),
    SystemSpec("ov-fp16", "bare OpenVINO fp16", Kind.BARE_OPENVINO, "fp16"),
    SystemSpec("ov-int8", "bare OpenVINO int8", Kind.BARE_OPENVINO, "int8"),
    SystemSpec("ov-int8-static", "bare OpenVINO static int8", Kind.BARE_OPENVINO, "int8-static"),
)
REFERENCE_SYSTEM = "hf-fp32"
SYSTEMS_BY_KEY = {spec.key: spec for spec in SYSTEMS}


class Runner(ABC):
    """One system with one model loaded."""

    def __init__(self, spec: SystemSpec, model: PreparedModel) -> None:
        self.spec = spec
        self.model = model

    @abstractmethod
    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Relevance scores (sigmoid of the logit), in document order."""

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings [n, dim], in input order."""

    def __call__(self, workload: Workload) -> np.ndarray:
        if workload.spec.task is Task.RERANK:
            assert workload.query is not None
            return self.rerank(workload.query, workload.texts)
        return self.embed(workload.texts)

    def close(self) -> None:  # noqa: B027 (most runners hold nothing to release)
        """Release what the runner holds."""


class HFTransformersRunner(Runner):
    """What compare_results.py compares with: transformers in fp32, batches of 32 in the order given."""

    def __init__(self, spec: SystemSpec, model: PreparedModel) -> None:
        super().__init__(spec, model)
        self.reference: HFRerankReference | HFEmbeddingReference
        if model.task is Task.RERANK:
            self.reference = HFRerankReference(model.source)
        else:
            # The pooling the model itself prescribes (its sentence-transformers Pooling config), not
            # the one an export recorded: an export with the wrong pooling must show in the accuracy.
            # Normalized: the accuracy figures are cosine-based, so normalization does not change them.
            pooling = default_pooling(resolve_source(str(model.source)))
            self.reference = HFEmbeddingReference(model.source, None, pooling, normalize=True)

    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        assert isinstance(self.reference, HFRerankReference)
        return self.reference.scores(query, documents, batch_size=USER_BATCH_SIZE)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        assert isinstance(self.reference, HFEmbeddingReference)
        return self.reference.embed(texts, batch_size=USER_BATCH_SIZE)


class SentenceTransformersRunner(Runner):
    """CrossEncoder / SentenceTransformer with backend torch or openvino (optimum-intel exports on load),
    or openvino on the static int8 model its export_static_quantized_openvino_model made
    (benchmark/peers.py)."""

    def __init__(self, spec: SystemSpec, model: PreparedModel) -> None:
        super().__init__(spec, model)
        quiet_progress_bars()
        backend = spec.backend or "torch"
        folder, options = model.source, {}
        if spec.static_int8:
            from benchmark.peers import ST_STATIC_FILE

            if model.st_static is None:
                raise RuntimeError(f"no static int8 model: see logs/st-static-{model.key}.log")
            folder, options = model.st_static, {"model_kwargs": {"file_name": ST_STATIC_FILE}}
        if model.task is Task.RERANK:
            from sentence_transformers import CrossEncoder

            self.encoder = CrossEncoder(str(folder), device="cpu", backend=backend, **options)
        else:
            from sentence_transformers import SentenceTransformer

            self.encoder = SentenceTransformer(str(folder), device="cpu", backend=backend, **options)

    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        pairs = [(query, document) for document in documents]
        return np.asarray(self.encoder.predict(pairs, batch_size=USER_BATCH_SIZE, show_progress_bar=False))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(
            self.encoder.encode(list(texts), batch_size=USER_BATCH_SIZE, show_progress_bar=False)
        )


class ServerRunner(Runner):
    """Our server over HTTP (a server process started by the harness).

    Each call borrows an idle HTTP client (its own keep-alive connection) or makes one; clients
    are kept across calls, so a warm-up at the measured concurrency opens every connection the
    timed requests will use.
    """

    def __init__(self, spec: SystemSpec, model: PreparedModel, base_url: str) -> None:
        super().__init__(spec, model)
        self.base_url = base_url
        self._idle: queue.SimpleQueue[ServerClient] = queue.SimpleQueue()
        self._all: list[ServerClient] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _client(self) -> Iterator[ServerClient]:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = ServerClient(self.base_url)
            with self._lock:
                self._all.append(client)
        try:
            yield client
        finally:
            self._idle.put(client)

    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        with self._client() as client:
            return client.rerank(self.model.served_name, query, documents).values

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._client() as client:
            return client.embed(self.model.served_name, texts).values

    def close(self) -> None:
        for client in self._all:
            client.close()


def make_in_process_runner(spec: SystemSpec, model: PreparedModel) -> Runner:
    """The runner of an in-process system (called inside its worker process)."""
    factories: dict[Kind, Callable[[SystemSpec, PreparedModel], Runner]] = {
        Kind.HF: HFTransformersRunner,
        Kind.SENTENCE_TRANSFORMERS: SentenceTransformersRunner,
    }
    if spec.kind is Kind.BARE_OPENVINO:
        from benchmark.bare_openvino import BareOpenVINORunner

        return BareOpenVINORunner(spec, model)
    return factories[spec.kind](spec, model)
