"""The benchmark's configurations as data: which models, which exports, which workloads, which systems.

Adding a workload or a system is adding an entry here (systems: benchmark/systems.py, SYSTEMS).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from benchmark.workloads import RepeatPolicy, WorkloadSpec
from serving.repository.layout import Task


@dataclass(frozen=True)
class ExportVariant:
    """One export of each model: its key (what systems name) and the export options that make it."""

    key: str
    weight_format: str  # --weight-format
    options: tuple[str, ...] = ()  # further export options
    label: str = ""

    @property
    def static(self) -> bool:
        return "--quantization" in self.options


EXPORTS: tuple[ExportVariant, ...] = (
    ExportVariant("fp32", "fp32", label="fp32"),
    ExportVariant("fp16", "fp16", label="fp16"),
    ExportVariant("int8", "int8", label="int8 weights"),
    # The gate off: a model whose static int8 misses the default gate is still measured, and the
    # report's targets judge its accuracy figures (the export's own, shown beside its rows).
    ExportVariant(
        "int8-static", "int8", ("--quantization", "static", "--max_accuracy_drop", "1"), label="static int8"
    ),
)
EXPORTS_BY_KEY = {variant.key: variant for variant in EXPORTS}
WEIGHT_FORMATS = tuple(variant.key for variant in EXPORTS)  # the export keys, in table order


@dataclass(frozen=True)
class ModelChoice:
    """A source model for the benchmark: which builder in tools/ makes it."""

    key: str  # "reranker" | "embedder": what workloads refer to
    task: Task
    builder: str  # "bge_reranker_base" | "xlmr_reranker" | "cross_encoder" | "minilm"
    label: str
    served_name: str
    real_weights: bool = True  # its accuracy figures mean something (random weights: only its speed)
    # sentence-transformers' static int8 export pads its calibration inputs to 384 tokens: a model
    # with fewer positions cannot go through it.
    st_static: bool = True


@dataclass(frozen=True)
class BenchConfig:
    name: str  # "full" | "tiny"
    models: tuple[ModelChoice, ...]
    workloads: tuple[WorkloadSpec, ...]
    concurrencies: tuple[int, ...] = (1, 4)
    # Calibration samples of sentence-transformers' own static int8 export (its default: 300).
    peer_calibration_samples: int = 300
    # Targets (issues 4 and 13): ratios measured in the same run.
    target_r1_speedup: float = 4.0
    target_r2_latency_ratio: float = 1 / 5
    target_efficiency: float = 0.90
    target_static_r1_speedup: float = 8.0  # static int8 server vs HF fp32, R1 docs/s
    target_static_vs_fp16_r1: float = 1.25
    target_static_vs_fp16_e1: float = 1.3
    target_vs_peers: float = 1.0  # our fastest export vs sentence-transformers' OpenVINO paths
    target_r3_batching: float = 2.0  # cross-request batching vs per-request batches, R3 docs/s
    target_static_ndcg: float = 0.99
    target_static_spearman: float = 0.98
    target_static_cosine: float = 0.99


MINILM = ModelChoice(
    "embedder",
    Task.EMBEDDINGS,
    "minilm",
    "all-MiniLM-L6-v2 (real weights)",
    "sentence-transformers/all-MiniLM-L6-v2",
)
CROSS_ENCODER = ModelChoice(
    "cross-encoder",
    Task.RERANK,
    "cross_encoder",
    "the demo cross-encoder (MiniLM-L6 fine-tuned on synthetic pairs, real weights)",
    "ovtext/minilm-cross-encoder",
)
# R3: many clients with small requests at once, today's per-request batches against shared ones.
R3_SYSTEMS = (
    "hf-fp32",  # the reference of every workload's accuracy figures
    "server-fp16",
    "server-int8",
    "server-int8-static",
    "server-fp16-per-request",
    "server-int8-static-per-request",
)

# The same latency request in both configurations; the tiny run repeats it fewer times.
R2_LATENCY = WorkloadSpec(
    "R2",
    "one query, 2 short documents (latency)",
    Task.RERANK,
    "reranker",
    n_items=2,
    min_tokens=8,
    max_tokens=24,
    seed=2,
    primary="latency",
    repeat=RepeatPolicy(min_requests=30, min_seconds=5.0, max_requests=200),
)

R1_SPEC = WorkloadSpec(
    "R1",
    "one query, 100 documents of 20-400 tokens",
    Task.RERANK,
    "reranker",
    n_items=100,
    min_tokens=20,
    max_tokens=400,
    seed=1,
    repeat=RepeatPolicy(min_requests=2, min_seconds=15.0, max_requests=12, warmup_requests=1),
)
R3_CONCURRENT = WorkloadSpec(
    "R3",
    "32 clients at once, each request one query with 8 documents of 30-120 tokens, 256 requests",
    Task.RERANK,
    "reranker",
    n_items=8,
    min_tokens=30,
    max_tokens=120,
    seed=4,
    repeat=RepeatPolicy(min_requests=256, min_seconds=0.0, max_requests=256, warmup_requests=1),
    clients=32,
    systems=R3_SYSTEMS,
)


def cross_encoder_workloads(*specs: WorkloadSpec) -> tuple[WorkloadSpec, ...]:
    """The same rerank workloads on the real demo cross-encoder (named R1-ce, ...)."""
    return tuple(replace(spec, name=f"{spec.name}-ce", model_key=CROSS_ENCODER.key) for spec in specs)


FULL = BenchConfig(
    name="full",
    models=(
        ModelChoice(
            "reranker",
            Task.RERANK,
            "bge_reranker_base",
            "bge-reranker-base shape (XLM-R, 12 layers, hidden 768, random weights)",
            "bench/bge-reranker-base-shaped",
            real_weights=False,
        ),
        CROSS_ENCODER,
        MINILM,
    ),
    workloads=(
        R1_SPEC,
        R2_LATENCY,
        R3_CONCURRENT,
        *cross_encoder_workloads(R1_SPEC, R2_LATENCY, R3_CONCURRENT),
        WorkloadSpec(
            "E1",
            "256 inputs of 8-250 tokens",
            Task.EMBEDDINGS,
            "embedder",
            n_items=256,
            min_tokens=8,
            max_tokens=250,
            seed=3,
            repeat=RepeatPolicy(min_requests=2, min_seconds=8.0, max_requests=30, warmup_requests=1),
        ),
    ),
)

# The test suite's end-to-end proof: tiny models, few items, two timed requests each.
TINY = BenchConfig(
    name="tiny",
    models=(
        ModelChoice(
            "reranker",
            Task.RERANK,
            "xlmr_reranker",
            "tiny XLM-R reranker (random weights)",
            "bench/tiny-xlmr-reranker",
            real_weights=False,
            st_static=False,  # 130 positions
        ),
        MINILM,
    ),
    workloads=(
        WorkloadSpec(
            "R1",
            "one query, 12 documents of 10-80 tokens",
            Task.RERANK,
            "reranker",
            n_items=12,
            min_tokens=10,
            max_tokens=80,
            seed=1,
            repeat=RepeatPolicy(min_requests=2, min_seconds=0.0, max_requests=2, warmup_requests=1),
        ),
        replace(R2_LATENCY, repeat=RepeatPolicy(min_requests=3, min_seconds=0.0, max_requests=3)),
        replace(
            R3_CONCURRENT,
            title="32 clients at once, each request one query with 8 documents of 10-40 tokens, 64 requests",
            min_tokens=10,
            max_tokens=40,
            repeat=RepeatPolicy(min_requests=64, min_seconds=0.0, max_requests=64, warmup_requests=1),
        ),
        WorkloadSpec(
            "E1",
            "16 inputs of 8-120 tokens",
            Task.EMBEDDINGS,
            "embedder",
            n_items=16,
            min_tokens=8,
            max_tokens=120,
            seed=3,
            repeat=RepeatPolicy(min_requests=2, min_seconds=0.0, max_requests=2),
        ),
    ),
    peer_calibration_samples=32,
)

CONFIGS = {config.name: config for config in (FULL, TINY)}
