"""Sentence embeddings from token embeddings: CLS / MEAN / LAST pooling, normalization, dimensions."""

from __future__ import annotations

import numpy as np

from serving.repository.layout import Pooling


def pool(hidden: np.ndarray, attention_mask: np.ndarray, pooling: Pooling) -> np.ndarray:
    """[rows, tokens, hidden] -> [rows, hidden]; a model output that is already [rows, hidden] passes."""
    if hidden.ndim == 2:
        return hidden.astype(np.float32, copy=False)
    if pooling is Pooling.CLS:
        return hidden[:, 0, :].astype(np.float32)
    if pooling is Pooling.LAST:
        # Right padding: the last real token sits at length - 1.
        last = attention_mask.sum(axis=1).astype(np.int64) - 1
        return hidden[np.arange(hidden.shape[0]), np.maximum(last, 0), :].astype(np.float32)
    mask = attention_mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)  # as sentence-transformers clamps
    return summed / counts


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)  # as torch.nn.functional.normalize
