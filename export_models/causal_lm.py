"""Step (causal-LM rerankers): turn a *ForCausalLM scored by two tokens into a one-logit classifier.

Qwen3-Reranker and mxbai-rerank-v2 score a pair by the logits of two tokens at the last position:
softmax([logit_no, logit_yes])[1] = sigmoid(logit_yes - logit_no). Both logits are rows of the LM
head applied to the last hidden state, so their difference is one row, lm_head[yes] - lm_head[no].
A *ForSequenceClassification with one label on the same body, whose score weight is that row,
gives exactly that logit at the last non-padding token; optimum-intel exports it as it exports any
classifier, and the IR is a [batch, 1] logit instead of a [batch, length, vocabulary] LM output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from export_models.errors import InvalidSourceError
from export_models.source import ResolvedSource
from serving.repository.families import TokenScoring


def token_id(tokenizer: Any, token: str) -> int:
    """The id of `token` as the model cards look it up; refused when the vocabulary lacks it."""
    value = tokenizer.convert_tokens_to_ids(token)
    if value is None or (value == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise InvalidSourceError(f"the tokenizer has no token {token!r}, which this reranker scores with")
    return int(value)


def build_token_classifier(
    source: ResolvedSource, scoring: TokenScoring, out_dir: Path, trust_remote_code: bool = False
) -> Path:
    """Save a one-label classifier sharing the causal LM's body (and its tokenizer) to out_dir."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    from export_models.hf_reference import quiet_transformers

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=trust_remote_code)
        # The checkpoint's own dtype: a large reranker is loaded once, not twice in fp32.
        language_model = AutoModelForCausalLM.from_pretrained(
            source.path, dtype="auto", trust_remote_code=trust_remote_code
        ).eval()
    yes, no = token_id(tokenizer, scoring.yes_token), token_id(tokenizer, scoring.no_token)
    if tokenizer.pad_token_id is None:
        raise InvalidSourceError("the tokenizer has no padding token, which the classifier needs")
    config = AutoConfig.from_pretrained(source.path, trust_remote_code=trust_remote_code)
    config.num_labels = 1
    config.id2label, config.label2id = {0: "relevance"}, {"relevance": 0}
    config.pad_token_id = tokenizer.pad_token_id  # the classifier reads the last non-padding token
    config.architectures = [source.architecture.replace("ForCausalLM", "ForSequenceClassification")]
    with torch.device("meta"):
        classifier = AutoModelForSequenceClassification.from_config(
            config, trust_remote_code=trust_remote_code
        )
    prefix = classifier.base_model_prefix
    setattr(classifier, prefix, getattr(language_model, prefix))  # the same body, not a copy
    head = language_model.get_output_embeddings().weight
    row = (head[yes].float() - head[no].float()).to(head.dtype)
    classifier.score = torch.nn.Linear(row.shape[0], 1, bias=False, dtype=head.dtype)
    with torch.no_grad():
        classifier.score.weight.copy_(row[None, :])
    classifier.eval()
    classifier.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
