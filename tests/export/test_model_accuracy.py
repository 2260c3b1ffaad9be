"""Exported rerank IRs score like the PyTorch models they came from, and are the promised size.

Same inputs (the Hugging Face tokenizer's) go to PyTorch and to the IR, compiled with
INFERENCE_PRECISION_HINT f32: on this CPU the plugin would otherwise run bf16, which would
hide the export's own error behind the runtime's.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import pytest
import torch
from scipy.stats import spearmanr
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tests.support.exports import Exported
from tools import synthetic_data

pytestmark = pytest.mark.exports(
    *(
        (kind, weight_format)
        for kind in ("cross-encoder", "xlmr")
        for weight_format in ("fp32", "fp16", "int8")
    )
)
F32 = {"INFERENCE_PRECISION_HINT": "f32"}

# Max |IR logit - PyTorch logit| / logit scale, where the logit scale is the largest |PyTorch
# logit| of the request set (at least 1). Measured on the fixtures (3 queries x 24 documents):
#            cross-encoder (MiniLM, scale 3.5)   tiny XLM-R (scale 1.9)
#   fp32     2.0e-6                              9.3e-7
#   fp16     1.3e-3                              1.1e-3
#   int8     9.3e-2                              3.2e-2
# fp32: the same arithmetic in another order, float32 rounding only.
FP32_TOLERANCE = 1e-4
# fp16 stores each weight with 11 significant bits (relative error <= 2^-11 ~ 4.9e-4 per weight);
# through 6 layers the errors add up to ~1e-3 of the scale. Allowed: 5e-3 (about 4x the measured).
FP16_TOLERANCE = 5e-3
# int8 (NNCF weight-only, asymmetric, per output channel) has 256 levels per channel: a weight
# moves by up to half a step, ~0.2% of its channel's range (small weights lose far more than
# fp16's 0.05% relative), and every matmul, the embeddings included, adds such an error:
# 3-9% of the scale measured. Allowed: 0.15 of the scale. What matters to a reranker is the
# order, checked below (Spearman, and the relevant documents staying on top).
INT8_TOLERANCE = 0.15
TOLERANCES = {"fp32": FP32_TOLERANCE, "fp16": FP16_TOLERANCE, "int8": INT8_TOLERANCE}
# Ranking: fp32 and fp16 must keep the order (Spearman >= 0.99, measured 1.0). int8 measured
# 0.9965 (cross-encoder) and 0.986 (tiny XLM-R, whose random logits lie close together); held to 0.95.
MIN_SPEARMAN = {"fp32": 0.99, "fp16": 0.99, "int8": 0.95}

N_QUERIES = 3
DOCUMENTS_PER_QUERY = 24


def rerank_requests() -> list[tuple[str, list[str], set[str]]]:
    """Held-out queries, each with 24 documents: its 3 relevant facts and 21 about other subjects."""
    rng = random.Random(3)
    subjects = synthetic_data.subjects("heldout")
    requests = []
    for subject in subjects[:N_QUERIES]:
        query = synthetic_data.HELDOUT_QUERY_TEMPLATES[0].format(name=subject.name)
        others = [fact for other in subjects if other is not subject for fact in other.facts]
        documents = list(subject.facts) + rng.sample(others, DOCUMENTS_PER_QUERY - len(subject.facts))
        rng.shuffle(documents)
        requests.append((query, documents, set(subject.facts)))
    return requests


@functools.cache
def pytorch_model(source: Path) -> tuple[Any, Any]:
    """The Hugging Face tokenizer and model, loaded once per source (each is compared with 3 exports)."""
    return AutoTokenizer.from_pretrained(source), AutoModelForSequenceClassification.from_pretrained(
        source
    ).eval()


def torch_and_ir_logits(export: Exported, config: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    tokenizer, model = pytorch_model(export.source)
    compiled = ov.Core().compile_model(export.model_xml, "CPU", config)
    input_names = {port.get_any_name() for port in compiled.inputs}
    expected, got = [], []
    for query, documents, _ in rerank_requests():
        inputs = tokenizer([query] * len(documents), documents, padding=True, return_tensors="pt")
        with torch.no_grad():
            expected.append(model(**inputs).logits[:, 0].numpy())
        feed = {name: tensor.numpy() for name, tensor in inputs.items() if name in input_names}
        got.append(compiled(feed)[compiled.output(0)][:, 0])
    return np.stack(expected), np.stack(got)


@pytest.fixture(scope="module", params=["cross-encoder", "xlmr"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("weight_format", ["fp32", "fp16", "int8"])
def test_ir_logits_match_pytorch(exported: Callable[..., Exported], kind: str, weight_format: str) -> None:
    export = exported(kind, weight_format)
    expected, got = torch_and_ir_logits(export, F32)
    assert expected.shape == (N_QUERIES, DOCUMENTS_PER_QUERY)
    scale = max(1.0, float(np.abs(expected).max()))
    relative_error = float(np.abs(got - expected).max()) / scale
    spearman = min(float(spearmanr(e, g).statistic) for e, g in zip(expected, got, strict=True))
    print(
        f"{kind} {weight_format}: max |diff| / scale = {relative_error:.2e} (scale {scale:.2f}), "
        f"min Spearman over queries = {spearman:.4f}"
    )
    assert relative_error <= TOLERANCES[weight_format]
    assert spearman >= MIN_SPEARMAN[weight_format]


def test_fp32_export_pins_f32_in_subconfig_and_is_exact_with_it(exported: Callable[..., Exported]) -> None:
    """Compiled with the plugin_config the export wrote, an fp32 export matches PyTorch."""
    export = exported("cross-encoder", "fp32")
    subconfig = json.loads((export.model_dir / "subconfig.json").read_text())
    (entry,) = [e["config"] for e in subconfig["model_config_list"] if e["config"]["base_path"] == "rerank"]
    assert entry["plugin_config"]["INFERENCE_PRECISION_HINT"] == "f32"
    expected, got = torch_and_ir_logits(export, entry["plugin_config"])
    assert np.abs(got - expected).max() / max(1.0, np.abs(expected).max()) <= FP32_TOLERANCE


def test_cross_encoder_export_still_ranks_relevant_documents_first(exported: Callable[..., Exported]) -> None:
    export = exported("cross-encoder", "int8")
    _, got = torch_and_ir_logits(export, {})  # the plugin's default precision, as served
    for (_, documents, relevant), scores in zip(rerank_requests(), got, strict=True):
        top3 = {documents[i] for i in np.argsort(-scores)[:3]}
        assert top3 == relevant


@pytest.mark.parametrize(("weight_format", "max_ratio"), [("int8", 0.30), ("fp16", 0.55)])
def test_compressed_model_bin_sizes(
    exported: Callable[..., Exported], weight_format: str, max_ratio: float
) -> None:
    fp32 = exported("cross-encoder", "fp32").model_bin.stat().st_size
    compressed = exported("cross-encoder", weight_format).model_bin.stat().st_size
    print(f"{weight_format}/fp32 model.bin = {compressed / fp32:.3f}")
    assert compressed <= max_ratio * fp32
