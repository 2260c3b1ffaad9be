"""Independent references computed in the test process (tests may use torch; the server may not).

Rerank: transformers' AutoModelForSequenceClassification on the Hugging Face tokenizer's own
framing. Embeddings: sentence-transformers, either the model as published (its modules.json)
or assembled with another pooling / without normalization.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serving.pipelines.scoring import relevance_logits
from serving.repository.layout import Pooling

# Pairs per forward pass: keeps padding (and memory) small for requests of hundreds of documents.
REFERENCE_BATCH = 32
ST_POOLING_MODES = {Pooling.CLS: "cls", Pooling.MEAN: "mean", Pooling.LAST: "lasttoken"}


class HFReranker:
    def __init__(self, source: Path) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModelForSequenceClassification.from_pretrained(source).eval()

    def _logits(self, batch: Any) -> np.ndarray:
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.model.config.type_vocab_size == 1:
            inputs.pop("token_type_ids", None)  # XLM-R: one token type
        with self.torch.no_grad():
            return relevance_logits(self.model(**inputs).logits.double().numpy())  # 1 or 2 labels

    def chunk_windows(self, query: str, document: str, max_length: int) -> Any:
        """Hugging Face's own chunking: the query in every window, the document split (stride 0)."""
        return self.tokenizer(
            [query], [document], truncation="only_second", max_length=max_length, stride=0,
            return_overflowing_tokens=True, padding=True, return_tensors="pt",
        )  # fmt: skip

    def window_logits(self, query: str, document: str, max_length: int) -> np.ndarray:
        return self._logits(self.chunk_windows(query, document, max_length))

    def logits(self, query: str, documents: list[str], max_length: int | None = None) -> np.ndarray:
        """One logit per (query, document), in document order; batched by length to pad little.

        With max_length, pairs are cut to it as transformers does (truncation=True)."""
        cut = {"truncation": True, "max_length": max_length} if max_length else {}
        order = np.argsort([len(document) for document in documents], kind="stable")
        logits = np.empty(len(documents))
        for start in range(0, len(documents), REFERENCE_BATCH):
            rows = order[start : start + REFERENCE_BATCH]
            batch = [documents[i] for i in rows]
            encoded = self.tokenizer([query] * len(batch), batch, padding=True, return_tensors="pt", **cut)
            logits[rows] = self._logits(encoded)
        return logits

    def scores(self, query: str, documents: list[str], max_length: int | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(query, documents, max_length)))

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def sentence_embedder(source: Path, pooling: Pooling | None = None, normalize: bool = True) -> Any:
    """sentence-transformers on `source`: as published when pooling is None, else Transformer ->
    Pooling(pooling) [-> Normalize], the modules a model with that configuration would list."""
    from sentence_transformers import SentenceTransformer

    if pooling is None:
        return SentenceTransformer(str(source), device="cpu")
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Transformer,
    )
    from sentence_transformers.sentence_transformer.modules import (
        Pooling as PoolingModule,
    )

    published = SentenceTransformer(str(source), device="cpu")  # for its max_seq_length
    word = Transformer(str(source), max_seq_length=published.max_seq_length)
    modules = [word, PoolingModule(word.get_embedding_dimension(), pooling_mode=ST_POOLING_MODES[pooling])]
    return SentenceTransformer(modules=[*modules, Normalize()] if normalize else modules, device="cpu")


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return 1.0 - (a * b).sum(-1)
