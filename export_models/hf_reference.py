"""The Hugging Face reference: what transformers itself computes for a reranker or an embedder.

compare_results.py checks the server against it and the benchmark measures it (its "HF
transformers fp32" system), so both compare with the same numbers. torch and transformers are
imported only when a reference is built: importing this module stays light.

Each model runs by its own recipe (serving/repository/families.py), as its model card does:
a causal-LM reranker scores sigmoid(logit_yes - logit_no) at the last position of its prompt
template, pieces tokenized one by one, left padding; a template classifier (*-seq-cls) takes the
same template; a plain cross-encoder scores sigmoid(logit) of the framed pair. Embedders pool
(last-token pooling handles left and right padding), apply the family's post-pooling steps
(nomic-embed-text-v1.5: layer norm) and normalize.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.pipelines.scoring import relevance_logits, sigmoid
from serving.repository.families import Family, PromptTemplate, find_family
from serving.repository.layout import Pooling, Task

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


def source_family(source: str | Path, task: Task, trust_remote_code: bool = False) -> Family | None:
    """The family recipe of a model folder or hub id, found as the export finds it."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    architectures = getattr(config, "architectures", None) or [""]
    return find_family(task, architectures[0], config.model_type, str(source))


def template_ids(
    tokenizer: Any,
    template: PromptTemplate,
    query: str,
    document: str,
    instruction: str | None,
    max_length: int,
) -> list[int]:
    """The model card's ids of one pair: each reference piece tokenized on its own; a pair over
    max_length loses the end of its document piece (Hugging Face's truncation of the body)."""
    if instruction is None:
        instruction = template.default_instruction or ""
    pieces = template.reference
    if not instruction and template.reference_without_instruction is not None:
        pieces = template.reference_without_instruction
    values = {"query": query, "document": document, "instruction": instruction}
    parts = [tokenizer(piece.format(**values), add_special_tokens=False)["input_ids"] for piece in pieces]
    excess = sum(len(part) for part in parts) - max_length
    if excess > 0:
        document_piece = next(i for i, piece in enumerate(pieces) if "{document}" in piece)
        parts[document_piece] = parts[document_piece][: max(0, len(parts[document_piece]) - excess)]
    return [int(token) for part in parts for token in part]


class HFRerankReference:
    """transformers, scored by the model's recipe (see the module docstring); sigmoid scores.

    A two-label classifier scores sigmoid(logit1 - logit0), softmax's probability of label 1: the
    server's own rule (serving/pipelines/scoring.py), taken from there.
    """

    def __init__(
        self,
        source: str | Path,
        max_length: int | None = None,
        family: Family | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        self._torch = torch
        self.family = family or source_family(source, Task.RERANK, trust_remote_code)
        self.template = self.family.template if self.family else None
        scoring = self.family.scoring if self.family else None
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            model_class = AutoModelForCausalLM if scoring else AutoModelForSequenceClassification
            self.model = model_class.from_pretrained(source, trust_remote_code=trust_remote_code).eval()
        if self.template is not None:
            self.tokenizer.padding_side = "left"  # as the model cards run them
        self.token_ids = (
            (
                self.tokenizer.convert_tokens_to_ids(scoring.yes_token),
                self.tokenizer.convert_tokens_to_ids(scoring.no_token),
            )
            if scoring
            else None
        )
        cap = self.family.max_length if self.family and self.family.max_length else MAX_LENGTH_CAP
        self.max_length = max_length or min(self.tokenizer.model_max_length, cap)

    def pair_lengths(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[int]:
        """Framed pair lengths without truncation, to tell which documents the server chunks."""
        if self.template is not None:
            return [
                len(template_ids(self.tokenizer, self.template, query, d, instruction, 1 << 30))
                for d in documents
            ]
        encoded = self.tokenizer([query] * len(documents), list(documents), truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _encode(self, query: str, documents: list[str], instruction: str | None) -> Any:
        if self.template is None:
            return self.tokenizer(
                [query] * len(documents),
                documents,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        rows = [
            {"input_ids": template_ids(self.tokenizer, self.template, query, d, instruction, self.max_length)}
            for d in documents
        ]
        return self.tokenizer.pad(rows, padding=True, return_tensors="pt")

    def logits(
        self,
        query: str,
        documents: Sequence[str],
        batch_size: int | None = None,
        instruction: str | None = None,
    ) -> np.ndarray:
        """float64 relevance logits in document order (yes - no for a causal-LM reranker)."""
        torch = self._torch
        parts = []
        with torch.inference_mode():
            for batch in _batches(documents, batch_size):
                output = self.model(**self._encode(query, batch, instruction)).logits.double()
                if self.token_ids is not None:
                    yes, no = self.token_ids
                    parts.append((output[:, -1, yes] - output[:, -1, no]).numpy())
                else:
                    parts.append(relevance_logits(output.numpy()))  # one or two labels
        return np.concatenate(parts)

    def scores(
        self,
        query: str,
        documents: Sequence[str],
        batch_size: int | None = None,
        instruction: str | None = None,
    ) -> np.ndarray:
        """float32 sigmoid scores in document order; pairs truncated to max_length."""
        logits = self.logits(query, documents, batch_size, instruction)
        return sigmoid(logits).astype(np.float32)


def post_pool_torch(pooled: Any, steps: Sequence[str]) -> Any:
    """The family's post-pooling steps in torch (as the model card writes them)."""
    import torch

    for step in steps:
        if step == "layer_norm":
            pooled = torch.nn.functional.layer_norm(pooled, normalized_shape=(pooled.shape[1],))
        else:
            raise ValueError(f"unknown post-pooling step {step!r}")
    return pooled


class HFEmbeddingReference:
    """transformers AutoModel, then the given pooling (CLS, attention-masked MEAN, or LAST: the last
    real token under left or right padding), the post-pooling steps and, when normalize, L2
    normalization: what the model card computes, and the server from the exported IR."""

    def __init__(
        self,
        source: str | Path,
        max_length: int | None,
        pooling: Pooling,
        normalize: bool,
        post_pooling: Sequence[str] = (),
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            self.model = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code).eval()
        self.max_length = _default_max_length(self.tokenizer, max_length)
        self.pooling = pooling
        self.normalize = normalize
        self.post_pooling = tuple(post_pooling)

    def embed(self, texts: Sequence[str], batch_size: int | None = None, prompt: str = "") -> np.ndarray:
        """float32 embeddings [n, dim] in input order; `prompt` prepended; inputs truncated to max_length."""
        torch = self._torch
        parts = []
        with torch.inference_mode():
            for batch in _batches([prompt + text for text in texts], batch_size):
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
                elif bool(mask[:, -1].all()):  # LAST under left padding (or none): the last position
                    pooled = hidden[:, -1]
                else:  # LAST under right padding
                    pooled = hidden[torch.arange(hidden.shape[0]), mask.sum(1) - 1]
                pooled = post_pool_torch(pooled, self.post_pooling)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                parts.append(pooled.numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)
