"""The accuracy report of a quantized export against its fp32 IR, and the gate (--max_accuracy_drop).

Both IRs answer the held-out evaluation set through the server's own pipeline
(export_models/serving_run.py): the fp32 IR compiled with INFERENCE_PRECISION_HINT f32 (exact),
the candidate with the plugin_config the server will use. Figures:

- rerank, per query of the evaluation set: largest and mean score difference (sigmoid scores),
  Spearman correlation of the scores (mean and lowest over queries), top-1 agreement (the share of
  queries whose best document under fp32 is also the candidate's best), and NDCG@10 of the
  candidate's ranking with fp32's ranking as the truth (fp32's k-th best document has gain
  10 - k, the rest 0; linear gains, log2 discount), averaged over queries;
- embeddings: cosine similarity of each input's two embeddings (lowest and mean), and recall@10
  of nearest neighbours (for each input, the share of fp32's 10 nearest other inputs that are
  among the candidate's 10 nearest), averaged.

The gate: each gated figure must be within its allowed drop of identity (1 for similarities, 0
for the score difference). Defaults (issue 13): NDCG@10 >= 0.99 and top-1 agreement >= 0.95
(rerank), lowest cosine >= 0.99 (embeddings). `--max_accuracy_drop` takes `NAME=DROP[,NAME=DROP]`
for named figures, or one number for every figure of the task (0 asks for identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from export_models.errors import InvalidOptionError
from serving.repository.layout import Task

NDCG_DEPTH = 10
NEIGHBOURS = 10

# Figures the gate can check: name -> (task, higher is better). Lower-is-better figures are
# differences (identity 0); the others are similarities (identity 1).
GATED: dict[str, tuple[Task, bool]] = {
    "ndcg@10": (Task.RERANK, True),
    "top1": (Task.RERANK, True),
    "spearman": (Task.RERANK, True),  # the lowest over queries
    "max_diff": (Task.RERANK, False),
    "cosine": (Task.EMBEDDINGS, True),  # the lowest over inputs
    "recall@10": (Task.EMBEDDINGS, True),
}
DEFAULT_DROPS: dict[Task, dict[str, float]] = {
    Task.RERANK: {"ndcg@10": 0.01, "top1": 0.05},
    Task.EMBEDDINGS: {"cosine": 0.01},
}
# Where each gated figure sits in the report's metrics.
METRIC_OF = {"spearman": "spearman_min", "cosine": "cosine_min"}


@dataclass(frozen=True)
class AccuracyGate:
    task: Task
    drops: dict[str, float]  # gated figure -> largest drop allowed

    def thresholds(self) -> dict[str, float]:
        """Figure -> the bound it must meet (>= for similarities, <= for differences)."""
        return {name: (1.0 - drop if GATED[name][1] else drop) for name, drop in self.drops.items()}

    def failures(self, metrics: dict[str, float]) -> list[str]:
        failed = []
        for name, bound in self.thresholds().items():
            value = metrics[METRIC_OF.get(name, name)]
            higher = GATED[name][1]
            if (value < bound) if higher else (value > bound):
                failed.append(f"{name} {value:.4g} {'<' if higher else '>'} {bound:.4g}")
        return failed

    def describe(self) -> str:
        return ", ".join(f"{name} {'>=' if GATED[name][1] else '<='} {bound:.4g}"
                         for name, bound in self.thresholds().items())  # fmt: skip


def parse_gate(task: Task, text: str | None) -> AccuracyGate:
    """--max_accuracy_drop: None (the defaults), one number (every figure of the task), NAME=DROP,..."""
    if text is None:
        return AccuracyGate(task, dict(DEFAULT_DROPS[task]))
    names = [name for name, (kind, _) in GATED.items() if kind is task]
    option = f"--max_accuracy_drop {text!r}"
    try:
        return AccuracyGate(task, dict.fromkeys(names, _drop(text)))
    except ValueError:
        pass
    drops = dict(DEFAULT_DROPS[task])
    for part in text.split(","):
        name, equals, value = part.strip().partition("=")
        name = name.strip().lower()
        if not equals or name not in names:
            raise InvalidOptionError(
                f"{option}: give one number, or NAME=DROP pairs with NAME one of {', '.join(names)} "
                f"for {task.value}"
            )
        try:
            drops[name] = _drop(value)
        except ValueError as error:
            raise InvalidOptionError(f"{option}: {error}") from None
    return AccuracyGate(task, drops)


def _drop(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0 or value != value:
        raise ValueError(f"a drop is a number from 0 to 1, not {text}")
    return value


@dataclass(frozen=True)
class ModelFormat:
    """What a written model is: its weights, and whether its activations are int8 too."""

    weight_format: str  # fp32 | fp16 | int8
    quantization: str  # none | weight-only | static

    @classmethod
    def plain(cls, weight_format: str) -> ModelFormat:
        return cls(weight_format, "weight-only" if weight_format == "int8" else "none")

    @property
    def label(self) -> str:
        if self.quantization == "static":
            return "static int8"
        return "int8 weights" if self.weight_format == "int8" else self.weight_format


STATIC_INT8 = ModelFormat("int8", "static")
# What --weight-format auto measures, in this order.
AUTO_CANDIDATES = (ModelFormat.plain("fp16"), ModelFormat.plain("int8"), STATIC_INT8)


# --- figures ---------------------------------------------------------------------------------


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse = np.unique(values, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denominator == 0.0:  # a constant ranking: it agrees only with itself
        return 1.0 if np.array_equal(ra, rb) else 0.0
    return float((ra * rb).sum() / denominator)


def ndcg_at(reference: np.ndarray, candidate: np.ndarray, depth: int = NDCG_DEPTH) -> float:
    """NDCG@depth of the candidate's order, with gains from the reference's order (module docstring)."""
    reference_order = np.argsort(-reference, kind="stable")
    gains = np.zeros(len(reference), dtype=np.float64)
    top = reference_order[:depth]
    gains[top] = depth - np.arange(len(top), dtype=np.float64)
    discount = 1.0 / np.log2(np.arange(2, depth + 2, dtype=np.float64))
    ideal = float((gains[reference_order[:depth]] * discount[: len(top)]).sum())
    chosen = np.argsort(-candidate, kind="stable")[:depth]
    return float((gains[chosen] * discount[: len(chosen)]).sum()) / ideal if ideal else 1.0


def rerank_metrics(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]:
    differences = np.abs(np.concatenate(reference) - np.concatenate(candidate))
    spearmans = [spearman(r, c) for r, c in zip(reference, candidate, strict=True)]
    top1 = [float(r[int(np.argmax(c))] == r.max()) for r, c in zip(reference, candidate, strict=True)]
    ndcgs = [ndcg_at(r, c) for r, c in zip(reference, candidate, strict=True)]
    return {
        "max_diff": float(differences.max()),
        "mean_diff": float(differences.mean()),
        "spearman_mean": float(np.mean(spearmans)),
        "spearman_min": float(np.min(spearmans)),
        "top1": float(np.mean(top1)),
        "ndcg@10": float(np.mean(ndcgs)),
    }


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _neighbours(unit: np.ndarray, depth: int) -> np.ndarray:
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :depth]


def embeddings_metrics(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]:
    ref, cand = _unit(np.concatenate(reference)), _unit(np.concatenate(candidate))
    cosine = np.sum(ref * cand, axis=1)
    depth = min(NEIGHBOURS, len(ref) - 1)
    recall = 1.0
    if depth > 0:
        ref_nn, cand_nn = _neighbours(ref, depth), _neighbours(cand, depth)
        recall = float(
            np.mean([len(np.intersect1d(a, b)) / depth for a, b in zip(ref_nn, cand_nn, strict=True)])
        )
    return {"cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean()), "recall@10": recall}


def metrics(task: Task, reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]:
    return (rerank_metrics if task is Task.RERANK else embeddings_metrics)(reference, candidate)


# --- the report ------------------------------------------------------------------------------

# Rows of the printed table: (metric key, label, digits).
ROWS: dict[Task, tuple[tuple[str, str, str], ...]] = {
    Task.RERANK: (
        ("max_diff", "largest score difference", ".2e"),
        ("mean_diff", "mean score difference", ".2e"),
        ("spearman_mean", "Spearman per query, mean", ".4f"),
        ("spearman_min", "Spearman per query, lowest", ".4f"),
        ("top1", "top-1 agreement", ".4f"),
        ("ndcg@10", "NDCG@10", ".4f"),
    ),
    Task.EMBEDDINGS: (
        ("cosine_min", "cosine, lowest", ".5f"),
        ("cosine_mean", "cosine, mean", ".5f"),
        ("recall@10", "recall@10 of neighbours", ".4f"),
    ),
}


@dataclass
class Candidate:
    """One quantized (or fp16) model measured against the fp32 IR."""

    format: ModelFormat
    metrics: dict[str, float]
    failures: list[str]
    tokens_per_s: float | None = None  # --weight-format auto only

    @property
    def label(self) -> str:
        return self.format.label

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class AccuracyReport:
    task: Task
    gate: AccuracyGate
    evaluation: str  # which evaluation set, how many items
    calibration: str  # which calibration set, how many items and batches
    candidates: list[Candidate] = field(default_factory=list)
    chosen: str | None = None  # the label of the candidate written
    recipe: dict[str, object] = field(default_factory=dict)  # how static int8 was quantized
    speed: str = ""  # how `auto` measured speed

    def to_json(self) -> dict[str, object]:
        chosen = next((c for c in self.candidates if c.label == self.chosen), None)
        return {
            "task": self.task.value,
            "reference": "the fp32 IR, INFERENCE_PRECISION_HINT f32",
            "evaluation": self.evaluation,
            "calibration": self.calibration,
            "gate": self.gate.thresholds(),
            "chosen": self.chosen,
            "metrics": dict(chosen.metrics) if chosen else {},
            "passed": chosen.passed if chosen else False,
            "recipe": self.recipe,
            "speed": self.speed,
            "candidates": [
                {
                    "label": c.label,
                    "weight_format": c.format.weight_format,
                    "quantization": c.format.quantization,
                    "metrics": c.metrics,
                    "passed": c.passed,
                    "failures": c.failures,
                    "tokens_per_s": c.tokens_per_s,
                }
                for c in self.candidates
            ],
        }

    def _cells(self, text: Callable[[Candidate], str], width: int) -> str:
        return "".join(f"{text(candidate):>{width}}" for candidate in self.candidates)

    def table(self) -> list[str]:
        """The report as text lines: one column per candidate."""
        width = max(len(label) for _, label, _ in ROWS[self.task]) + 2
        columns = [c.label + (" *" if c.label == self.chosen and len(self.candidates) > 1 else "")
                   for c in self.candidates]  # fmt: skip
        column_width = max(14, *(len(c) + 2 for c in columns))
        lines = [f"{'vs fp32 IR':<{width}}" + "".join(f"{c:>{column_width}}" for c in columns)]
        gated = {METRIC_OF.get(name, name): name for name in self.gate.drops}
        bounds = self.gate.thresholds()
        for key, label, digits in ROWS[self.task]:
            row = f"{label:<{width}}" + self._cells(
                lambda c, k=key, d=digits: format(c.metrics[k], d), column_width
            )
            if key in gated:
                name = gated[key]
                row += f"   gate {'>=' if GATED[name][1] else '<='} {bounds[name]:.4g}"
            lines.append(row)
        if any(c.tokens_per_s is not None for c in self.candidates):
            speed = self._cells(lambda c: f"{c.tokens_per_s or 0:,.0f}", column_width)
            lines.append(f"{'tokens/s on this CPU':<{width}}{speed}")
        passed = self._cells(lambda c: "yes" if c.passed else "NO", column_width)
        lines.append(f"{'passes the gate':<{width}}{passed}")
        return lines
