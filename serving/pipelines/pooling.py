"""Sentence embeddings from token embeddings: CLS / MEAN / LAST pooling, post-pooling steps,
normalization.

Padded positions are excluded with np.where, never by multiplying with the mask: a model may
leave NaN at padded positions (0 x NaN is NaN), and no padded value may reach a pooled vector.
"""

from __future__ import annotations

import numpy as np

from serving.repository.families import LAYER_NORM_EPS, PostPooling
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
    real = attention_mask.astype(bool)[:, :, None]
    summed = np.where(real, hidden, 0).sum(axis=1, dtype=np.float32)
    counts = np.maximum(real.sum(axis=1).astype(np.float32), 1e-9)  # as sentence-transformers clamps
    return summed / counts


def layer_norm(vectors: np.ndarray) -> np.ndarray:
    """torch.nn.functional.layer_norm over the last axis, without weights (nomic-embed-text-v1.5)."""
    centered = vectors - vectors.mean(axis=1, keepdims=True)
    variance = (centered * centered).mean(axis=1, keepdims=True)
    return (centered / np.sqrt(variance + LAYER_NORM_EPS)).astype(np.float32, copy=False)


POST_POOLING = {PostPooling.LAYER_NORM.value: layer_norm}


def post_pool(vectors: np.ndarray, steps: tuple[str, ...] | list[str]) -> np.ndarray:
    """Apply the export's post-pooling steps (ModelInfo.post_pooling) in order."""
    for step in steps:
        vectors = POST_POOLING[step](vectors)
    return vectors


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)  # as torch.nn.functional.normalize
