"""The Hugging Face reference: what transformers itself computes for a reranker or an embedder.

compare_results.py checks the server against it and the benchmark measures it (its "HF
transformers fp32" system), so both compare with the same numbers. torch and transformers are
imported only when a reference is built: importing this module stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.repository.layout import Pooling

# The token limit when none is given: the tokenizer's own, at most BERT's 512 positions.
MAX_LENGTH_CAP = 512


def quiet_progress_bars() -> None:
    """No "Loading weights" bars from transformers 5 in printed output (warnings stay)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Load models without transformers' progress bars and load report.

    Loading a checkpoint into another head (AutoModel over a classifier, a causal LM's body)
    prints a "LOAD REPORT ... Notes: UNEXPECTED" table of the weights left out; that is expected
    here and must not leak into printed results.
    """
    from transformers.utils import logging as transformers_logging

    quiet_progress_bars()
    previous = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(previous)


def _batches(texts: Sequence[str], batch_size: int | None) -> list[list[str]]:
    """The texts in order, batch_size at a time (all at once when None)."""
    if batch_size is None:
        return [list(texts)]
    return [list(texts[start : start + batch_size]) for start in range(0, len(texts), batch_size)]


def _default_max_length(tokenizer: Any, max_length: int | None) -> int:
    return max_length or min(tokenizer.model_max_length, MAX_LENGTH_CAP)


class HFRerankReference:
    """transformers AutoModelForSequenceClassification; score = sigmoid(logit), as the reference demo does."""

    def __init__(self, source: str | Path, max_length: int | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        quiet_progress_bars()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModelForSequenceClassification.from_pretrained(source).eval()
        self.max_length = _default_max_length(self.tokenizer, max_length)

    def pair_lengths(self, query: str, documents: Sequence[str]) -> list[int]:
        """Framed pair lengths without truncation, to tell which documents the server chunks."""
        encoded = self.tokenizer([query] * len(documents), list(documents), truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def scores(self, query: str, documents: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """float32 sigmoid scores in document order; (query, document) pairs truncated to max_length."""
        torch = self._torch
        parts = []
        with torch.inference_mode():
            for batch in _batches(documents, batch_size):
                encoded = self.tokenizer(
                    [query] * len(batch),
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                logits = self.model(**encoded).logits[:, 0]
                parts.append(torch.sigmoid(logits.float()).numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)


class HFEmbeddingReference:
    """transformers AutoModel, then the given pooling (CLS, attention-masked MEAN, or LAST) and,
    when normalize, L2 normalization: what the server computes from the exported IR."""

    def __init__(self, source: str | Path, max_length: int | None, pooling: Pooling, normalize: bool) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        quiet_progress_bars()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModel.from_pretrained(source).eval()
        self.max_length = _default_max_length(self.tokenizer, max_length)
        self.pooling = pooling
        self.normalize = normalize

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """float32 embeddings [n, dim] in input order; inputs truncated to max_length."""
        torch = self._torch
        parts = []
        with torch.inference_mode():
            for batch in _batches(texts, batch_size):
                encoded = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                hidden = self.model(**encoded).last_hidden_state.float()
                mask = encoded["attention_mask"]
                if self.pooling is Pooling.CLS:
                    pooled = hidden[:, 0]
                elif self.pooling is Pooling.MEAN:
                    weights = mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                else:  # LAST: the last real token of each right-padded row
                    pooled = hidden[torch.arange(hidden.shape[0]), mask.sum(1) - 1]
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                parts.append(pooled.numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)
