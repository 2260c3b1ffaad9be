"""Rerank scores from classifier logits, and the max over a document's chunks."""

from __future__ import annotations

import numpy as np

from serving.errors import NonFiniteOutput


def relevance_logits(logits: np.ndarray) -> np.ndarray:
    """One relevance logit per row.

    One label: that logit. Two labels (a "not relevant / relevant" classifier): the logit
    difference, so sigmoid of it is softmax's probability of "relevant".
    """
    if logits.ndim == 1:
        return logits.astype(np.float64)
    if logits.shape[1] == 1:
        return logits[:, 0].astype(np.float64)
    if logits.shape[1] == 2:
        return (logits[:, 1] - logits[:, 0]).astype(np.float64)
    raise ValueError(f"a reranker has 1 or 2 labels, this model gives {logits.shape[1]}")


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def max_per_owner(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """For each of `count` owners, the largest of its values (every owner has at least one)."""
    result = np.full(count, -np.inf, dtype=np.float64)
    np.maximum.at(result, owner, values)
    return result


def require_finite(values: np.ndarray) -> np.ndarray:
    """`values` unchanged; a NaN or infinity from the model is a server fault, never a client's result."""
    if not np.isfinite(values).all():
        raise NonFiniteOutput("the model produced a non-finite value (NaN or infinity) for this request")
    return values
