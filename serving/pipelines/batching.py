"""Group framed sequences into padded batches under a token budget.

Sequences are sorted by length (longest first) so each batch pads little, and a batch is as
many rows as fit `rows * padded_length <= token_budget` (at least one row, at most
max_batch_size). The loop runs once per batch, not once per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPolicy:
    token_budget: int = 8192
    max_batch_size: int = 64

    def __post_init__(self) -> None:
        if self.token_budget < 1 or self.max_batch_size < 1:
            raise ValueError("token_budget and max_batch_size must be >= 1")


@dataclass(frozen=True)
class BatchStats:
    """What one inference call processed, for metrics."""

    rows: int
    padded_tokens: int
    seconds: float


def plan_batches(lengths: np.ndarray, policy: BatchPolicy) -> list[np.ndarray]:
    """Row indices of each batch, longest sequences first."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        rows = max(1, min(policy.max_batch_size, policy.token_budget // max(longest, 1)))
        batches.append(order[start : start + rows])
        start += rows
    return batches
