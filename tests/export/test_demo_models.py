"""The offline fixture models are what the other tests assume they are."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from tools import synthetic_data, xlmr_models


def test_cross_encoder_ranks_relevant_above_unrelated_on_heldout_subjects(cross_encoder_source: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(cross_encoder_source)
    model = AutoModelForSequenceClassification.from_pretrained(cross_encoder_source).eval()
    assert model.config.num_labels == 1
    assert model.config.architectures == ["BertForSequenceClassification"]
    # Held-out subjects and query phrasings the model never saw in fine-tuning.
    pairs = synthetic_data.rerank_pairs("heldout", seed=7, negatives_per_positive=3)
    train_queries = {p.query for p in synthetic_data.rerank_pairs("train")}
    assert not train_queries & {p.query for p in pairs}
    with torch.no_grad():
        inputs = tokenizer(
            [p.query for p in pairs], [p.document for p in pairs], padding=True, return_tensors="pt"
        )
        logits = model(**inputs).logits[:, 0].tolist()
    by_query: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for pair, logit in zip(pairs, logits, strict=True):
        by_query[pair.query][0 if pair.relevant else 1].append(logit)
    comparisons = [
        (pos, neg) for relevant, unrelated in by_query.values() for pos in relevant for neg in unrelated
    ]
    accuracy = sum(pos > neg for pos, neg in comparisons) / len(comparisons)
    assert len(comparisons) > 300
    assert accuracy >= 0.95, f"pairwise accuracy on held-out pairs {accuracy:.3f}"


def test_heldout_and_train_subjects_are_disjoint() -> None:
    train = {s.name for s in synthetic_data.subjects("train")}
    heldout = {s.name for s in synthetic_data.subjects("heldout")}
    assert train and heldout and not train & heldout
    assert len(train | heldout) == len(synthetic_data.SUBJECTS)


def test_xlmr_fixture_is_an_xlmr_reranker_with_a_unigram_metaspace_tokenizer(
    xlmr_reranker_source: Path,
) -> None:
    config = AutoConfig.from_pretrained(xlmr_reranker_source)
    assert config.architectures == ["XLMRobertaForSequenceClassification"]
    assert config.num_labels == 1 and config.pad_token_id == 1
    tokenizer = AutoTokenizer.from_pretrained(xlmr_reranker_source)
    backend = tokenizer.backend_tokenizer
    assert type(backend.model).__name__ == "Unigram"
    assert "NFKC" in str(backend.normalizer)
    assert type(backend.pre_tokenizer).__name__ == "Metaspace"
    assert [tokenizer.convert_tokens_to_ids(t) for t in xlmr_models.XLMR_SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    # XLM-R positions start at padding_idx + 1 = 2.
    assert tokenizer.model_max_length == config.max_position_embeddings - 2
    assert len(tokenizer) <= config.vocab_size
    assert tokenizer("a", "b")["input_ids"][0] == 0
    pair_ids = tokenizer("a", "b")["input_ids"]
    assert pair_ids[-1] == 2 and pair_ids.count(2) == 3  # <s> a </s></s> b </s>


def test_bge_shaped_configs_match_the_published_models() -> None:
    # Shapes only, on the meta device: the real random-weight models are built by the benchmark.
    expected_parameters = {"base": 278_000_000, "large": 560_000_000}
    for size, shape in xlmr_models.BGE_RERANKER_SHAPES.items():
        config = xlmr_models.bge_reranker_config(size)  # type: ignore[arg-type]
        assert config.vocab_size == 250002 and config.max_position_embeddings == 514
        assert config.num_hidden_layers == shape["num_hidden_layers"]
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
        parameters = sum(p.numel() for p in model.parameters())
        assert abs(parameters - expected_parameters[size]) / expected_parameters[size] < 0.01, parameters
