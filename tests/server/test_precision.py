"""The precision a model is computed in: f32 for f32 weights unless its plugin_config says otherwise,
and shown in the model list.

A plain optimum-cli folder carries no plugin_config: the CPU plugin would compute it in bf16 on CPUs
that have it (a tiny XLM-R reranker was 0.11 off Hugging Face that way). On a CPU without bf16 the
scores match either way, so the test also asserts the precision the server reports, which is the
compiled model's own INFERENCE_PRECISION_HINT.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from serving.repository.layout import (
    FLAT_MODEL_XML,
    FLAT_TOKENIZER_XML,
    HF_CONFIG_FILE,
    TOKENIZER_CONFIG_FILE,
)
from tests.support.exports import Exported
from tests.support.references import HFReranker
from tests.support.server import ServerProcess, scores_by_index

QUERY = "what is a panda?"
DOCUMENTS = ["The giant panda is a bear species endemic to China.", "The stock market closed higher.", "hi"]


def flat_folder(exported: Exported, folder: Path) -> Path:
    """An optimum-cli-style folder of the export's IRs and its source's configs: no plugin_config."""
    folder.mkdir(parents=True)
    tokenizer, model = exported.version_dirs(1)
    for target, source in ((FLAT_TOKENIZER_XML, tokenizer), (FLAT_MODEL_XML, model)):
        shutil.copy(source / "model.xml", folder / target)
        shutil.copy(source / "model.bin", (folder / target).with_suffix(".bin"))
    for name in (HF_CONFIG_FILE, TOKENIZER_CONFIG_FILE):
        shutil.copy(exported.source / name, folder / name)
    return folder


def test_f32_weights_without_a_precision_setting_run_at_f32(
    exported: Callable[..., Exported], start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    xlmr = exported("xlmr")
    root = tmp_path / "models"
    flat_folder(xlmr, root / "flat")
    config = {"model_config_list": [{"config": {"name": "flat/xlmr", "base_path": "flat"}}]}
    (root / "config.json").write_text(json.dumps(config))
    server = start_server(root / "config.json")
    server.wait_ready(models=["flat/xlmr"])
    with httpx.Client(base_url=server.url, timeout=60) as http:
        (card,) = http.get("/v3/models").json()["data"]
        assert card["inference_precision"] == "f32", card
        body = {"model": "flat/xlmr", "query": QUERY, "documents": DOCUMENTS}
        response = http.post("/v3/rerank", json=body)
        assert response.status_code == 200, response.text
    scores = scores_by_index(response.json(), len(DOCUMENTS))
    expected = HFReranker(xlmr.source).scores(QUERY, DOCUMENTS)
    assert np.abs(scores - expected).max() < 1e-4
