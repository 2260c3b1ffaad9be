"""A two-label reranker (labels "not relevant", "relevant"): exported, served and referenced alike.

Its relevance score is softmax's probability of label 1, sigmoid(logit1 - logit0): the export
accepts the model and records num_labels = 2, the server's pipeline scores it so, and the Hugging
Face reference (export_models/hf_reference.py, what compare_results.py and the benchmark use)
computes the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops: needed to read tokenizer IRs)
import pytest

from export_models.hf_reference import HFRerankReference
from serving.pipelines.batching import BatchPolicy
from serving.pipelines.rerank import RerankPipeline
from serving.registry.loader import load_version
from serving.repository.config import read_config, read_servable_spec
from serving.repository.layout import MODEL_XML, read_model_info
from serving.repository.versions import scan_versions
from tools import xlmr_models

QUERY = "what do pandas eat?"
DOCUMENTS = [
    "Giant pandas eat bamboo almost exclusively.",
    "The stock market closed higher today.",
    "Pandas are bears native to China.",
    "Rain is expected tomorrow afternoon.",
    "bamboo",
]


@pytest.fixture(scope="module")
def two_label_source(tmp_path_factory: pytest.TempPathFactory, xlmr_reranker_source: Path) -> Path:
    """The tiny XLM-R with a two-label head (random weights), built offline."""
    import torch
    from transformers import AutoTokenizer, XLMRobertaForSequenceClassification

    folder = tmp_path_factory.mktemp("two-label") / "tiny-xlmr-2-labels"
    tokenizer = AutoTokenizer.from_pretrained(xlmr_reranker_source)
    config = xlmr_models.xlmr_reranker_config(
        len(tokenizer), num_labels=2, initializer_range=0.2, **xlmr_models.TINY_XLMR_SHAPE
    )
    torch.manual_seed(2)
    XLMRobertaForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_two_label_reranker_scores_softmax_of_relevant_everywhere(
    tmp_path: Path, run_export, two_label_source: Path
) -> None:
    from transformers import AutoConfig

    # transformers leaves id2label out of config.json for its default two labels.
    assert AutoConfig.from_pretrained(two_label_source).num_labels == 2
    repo = tmp_path / "models"
    result = run_export("rerank", two_label_source, repo, model_name="two-labels")
    assert result.returncode == 0, result.stderr

    (entry,) = read_config(repo / "config.json")
    spec = read_servable_spec(entry)
    files = scan_versions(spec.tokenizer.base_path, spec.model.base_path)[1]
    assert read_model_info(ov.Core().read_model(spec.model.base_path / "1" / MODEL_XML)).num_labels == 2

    # The server's own loader and pipeline, on the exported version.
    servable = load_version(ov.Core(), spec, files, BatchPolicy())
    try:
        assert isinstance(servable.pipeline, RerankPipeline)
        served = servable.pipeline.rerank_blocking(QUERY, DOCUMENTS).scores
    finally:
        servable.close()

    reference = HFRerankReference(two_label_source, max_length=servable.tokenizer_info.max_length)
    expected = reference.scores(QUERY, DOCUMENTS)
    np.testing.assert_allclose(served, expected, atol=1e-4)

    # Both are softmax's probability of label 1, which the first logit alone would not give.
    import torch

    encoded = reference.tokenizer([QUERY] * len(DOCUMENTS), DOCUMENTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = reference.model(**encoded).logits
    relevant = torch.softmax(logits, dim=-1)[:, 1].numpy()
    np.testing.assert_allclose(expected, relevant, atol=1e-6)
    assert np.abs(torch.sigmoid(logits[:, 0]).numpy() - relevant).max() > 0.05
