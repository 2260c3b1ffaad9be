"""The benchmark's configurations as data: which models, which workloads, which systems.

Adding a workload or a system is adding an entry here (systems: benchmark/systems.py, SYSTEMS).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from benchmark.workloads import RepeatPolicy, WorkloadSpec
from serving.repository.layout import Task

WEIGHT_FORMATS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelChoice:
    """A source model for the benchmark: which builder of export_models/demo_models.py makes it."""

    key: str  # "reranker" | "embedder": what workloads refer to
    task: Task
    builder: str  # "bge_reranker_base" | "xlmr_reranker" | "cross_encoder" | "minilm"
    label: str
    served_name: str


@dataclass(frozen=True)
class BenchConfig:
    name: str  # "full" | "tiny"
    models: tuple[ModelChoice, ...]
    workloads: tuple[WorkloadSpec, ...]
    concurrencies: tuple[int, ...] = (1, 4)
    # Targets (issue 4): ratios measured in the same run.
    target_r1_speedup: float = 4.0
    target_r2_latency_ratio: float = 1 / 5
    target_efficiency: float = 0.85


MINILM = ModelChoice(
    "embedder",
    Task.EMBEDDINGS,
    "minilm",
    "all-MiniLM-L6-v2 (real weights)",
    "sentence-transformers/all-MiniLM-L6-v2",
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

FULL = BenchConfig(
    name="full",
    models=(
        ModelChoice(
            "reranker",
            Task.RERANK,
            "bge_reranker_base",
            "bge-reranker-base shape (XLM-R, 12 layers, hidden 768, random weights)",
            "bench/bge-reranker-base-shaped",
        ),
        MINILM,
    ),
    workloads=(
        WorkloadSpec(
            "R1",
            "one query, 100 documents of 20-400 tokens",
            Task.RERANK,
            "reranker",
            n_items=100,
            min_tokens=20,
            max_tokens=400,
            seed=1,
            repeat=RepeatPolicy(min_requests=2, min_seconds=15.0, max_requests=12, warmup_requests=1),
        ),
        R2_LATENCY,
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
)

CONFIGS = {config.name: config for config in (FULL, TINY)}
