"""One server reads every kind of tree: OVMS's legacy and current forms, optimum-cli folders, ours.

Built once per module (tiny models, one server):
- plain `optimum-cli export openvino` folders (tokenizer conversion on) of the BERT cross-encoder,
  the tiny XLM-R reranker and all-MiniLM-L6-v2, named in config.json's model_config_list and
  mediapipe_config_list with no graph at all;
- a legacy OpenVINO Model Server tree (its `rerank`/`embeddings` export of 2024.5-2025.x) written
  by hand from its templates: three-node graph.pbtxt, subconfig.json with TABs, versioned IRs with the
  Hugging Face configs in `model_info` runtime info; the tokenizers' layout runtime info removed, as
  openvino-tokenizers before 2025.1 wrote none;
- the current OVMS form (`rerank_ov`) written by hand: one RerankCalculatorOV node, models_path "./";
- this exporter's --graph_format ov output, and the same IRs under this project's older graph;
and compares every answer with Hugging Face transformers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openvino as ov
import pytest

from export_models.hf_reference import HFEmbeddingReference, HFRerankReference
from export_models.ovms_compat import ovms_warnings
from serving.atomic_write import write_text_atomically
from serving.repository.layout import (
    FLAT_MODEL_XML,
    FLAT_TOKENIZER_XML,
    GraphFormat,
    Pooling,
    Task,
    read_model_info,
    read_tokenizer_info,
)
from tools.server_process import ServerProcess

from .graph_texts import OVMS_RERANK_OV, old_ovtext_rerank
from .ovms_protos import compile_protos, parse_strictly

QUERY = "what is a panda?"
DOCUMENTS = [
    "The giant panda is a bear species endemic to China.",
    "Paris is the capital of France.",
    "パンダは竹を食べます。",
    "pandas eat bamboo " * 8,
]
TEXTS = ["hello world", "The giant panda is a bear species endemic to China.", "café 😀", "a"]

# OVMS's export_model.py templates (v2024.5), as its export renders them.
SEED_GRAPH = """input_stream: "REQUEST_PAYLOAD:input"
output_stream: "RESPONSE_PAYLOAD:output"
node {
  calculator: "OpenVINOModelServerSessionCalculator"
  output_side_packet: "SESSION:tokenizer"
  node_options: {
    [type.googleapis.com / mediapipe.OpenVINOModelServerSessionCalculatorOptions]: {
      servable_name: "{{model_name}}_tokenizer_model"
    }
  }
}
node {
  calculator: "OpenVINOModelServerSessionCalculator"
  output_side_packet: "SESSION:{{task}}"
  node_options: {
    [type.googleapis.com / mediapipe.OpenVINOModelServerSessionCalculatorOptions]: {
      servable_name: "{{model_name}}_{{task}}_model"
    }
  }
}
node {
    input_side_packet: "TOKENIZER_SESSION:tokenizer"
    input_side_packet: "{{TASK}}_SESSION:{{task}}"
    calculator: "{{Calculator}}"
    input_stream: "REQUEST_PAYLOAD:input"
    output_stream: "RESPONSE_PAYLOAD:output"
{{options}}}
"""
SEED_EMBEDDINGS_OPTIONS = """    node_options: {
      [type.googleapis.com / mediapipe.EmbeddingsCalculatorOptions]: {
        normalize_embeddings: true,
      }
    }
"""
SEED_SUBCONFIG = """{
    "model_config_list": [
    { "config":\x20
\t    {
                "name": "{{model_name}}_tokenizer_model",
                "base_path": "tokenizer"
            }
\t},
    { "config":\x20
\t    {
                "name": "{{model_name}}_{{task}}_model",
                "base_path": "{{task}}",
                "target_device": "CPU",
                "plugin_config": { "NUM_STREAMS": 1 }
            }
\t}
   ]
}
"""
OLD_GRAPH = old_ovtext_rerank(4)  # with this project's subconfig.json of that time:
OLD_SUBCONFIG = {
    "model_config_list": [
        {"config": {"name": "old_tokenizer_model", "base_path": "tokenizer", "target_device": "CPU"}},
        {
            "config": {
                "name": "old_rerank_model",
                "base_path": "rerank",
                "target_device": "CPU",
                "plugin_config": {"NUM_STREAMS": "1", "INFERENCE_PRECISION_HINT": "f32"},
            }
        },
    ]
}
F32 = {"INFERENCE_PRECISION_HINT": "f32"}
# Largest differences allowed: exact exports pin f32; OVMS's templates leave the CPU's default
# precision (bf16 where the CPU has it), where the fp16 tolerances of docs/parity.md apply.
EXACT_SCORE, DEFAULT_PRECISION_SCORE = 1e-4, 2e-2
EXACT_COSINE, DEFAULT_PRECISION_COSINE = 1e-5, 2e-3


def render(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def optimum_cli(source: Path, task: Task, out: Path) -> None:
    """`optimum-cli export openvino --model <source> --task ... <out>`: tokenizer conversion on."""
    script = Path(sys.executable).with_name("optimum-cli")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "optimum.commands.optimum_cli"]
    optimum_task = "text-classification" if task is Task.RERANK else "feature-extraction"
    done = subprocess.run(
        [*command, "export", "openvino", "--model", str(source), "--task", optimum_task,
         "--weight-format", "fp32", str(out)],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / FLAT_TOKENIZER_XML).is_file() and (out / FLAT_MODEL_XML).is_file()


def set_model_info(model: ov.Model, config: dict[str, Any]) -> None:
    """OVMS's export (set_rt_info): every key of a config under runtime info model_info."""
    for key, value in config.items():
        try:
            model.set_rt_info(value, ["model_info", key])
        except Exception:
            model.set_rt_info(str(value), ["model_info", key])


def drop_rt_info(model: ov.Model, *keys: str) -> None:
    info = model.get_rt_info()
    for key in keys:
        del info[key]


def seed_tree(folder: Path, name: str, task: Task, source: Path, optimum_folder: Path) -> None:
    """OVMS's legacy export of `source`, version 1, by its steps: the rerank tokenizer converted
    without special tokens (model_max_length = max_doc_length), the embeddings tokenizer with them."""
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    core = ov.Core()
    hf_tokenizer = AutoTokenizer.from_pretrained(source)
    if task is Task.RERANK:
        hf_tokenizer.model_max_length = 16000
        tokenizer = convert_tokenizer(hf_tokenizer, add_special_tokens=False)
        drop_rt_info(tokenizer, "processed_post_processor_template", "add_special_tokens")
    else:
        tokenizer = core.read_model(optimum_folder / FLAT_TOKENIZER_XML)
        drop_rt_info(tokenizer, "processed_post_processor_template")
    saved = folder / "hf"
    hf_tokenizer.save_pretrained(saved)
    set_model_info(tokenizer, json.loads((saved / "tokenizer_config.json").read_text()))
    model = core.read_model(optimum_folder / FLAT_MODEL_XML)
    set_model_info(model, json.loads((optimum_folder / "config.json").read_text()))
    shutil.rmtree(saved)
    for ir, subdir in ((tokenizer, "tokenizer"), (model, task.value)):
        (folder / subdir / "1").mkdir(parents=True)
        ov.save_model(ir, folder / subdir / "1" / "model.xml", compress_to_fp16=False)
    options = "" if task is Task.RERANK else SEED_EMBEDDINGS_OPTIONS
    calculator = "RerankCalculator" if task is Task.RERANK else "EmbeddingsCalculator"
    graph = render(
        SEED_GRAPH, model_name=name, task=task.value, TASK=task.value.upper(), Calculator=calculator
    )
    (folder / "graph.pbtxt").write_text(render(graph, options=options))
    (folder / "subconfig.json").write_text(render(SEED_SUBCONFIG, model_name=name, task=task.value))


def ovms_ov_tree(folder: Path, source: Path, optimum_folder: Path) -> None:
    """OVMS's rerank_ov export: optimum's model, a tokenizer without special tokens, the graph."""
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    shutil.copytree(optimum_folder, folder)
    hf_tokenizer = AutoTokenizer.from_pretrained(source)
    hf_tokenizer.model_max_length = 16000
    hf_tokenizer.save_pretrained(folder)
    ov.save_model(convert_tokenizer(hf_tokenizer, add_special_tokens=False), folder / FLAT_TOKENIZER_XML)
    (folder / "graph.pbtxt").write_text(OVMS_RERANK_OV)


def old_tree(folder: Path, ov_export: Path) -> None:
    """Our ov export's IRs in this project's earlier layout, under its earlier graph."""
    for name, subdir in ((FLAT_TOKENIZER_XML, "tokenizer"), (FLAT_MODEL_XML, "rerank")):
        (folder / subdir / "1").mkdir(parents=True)
        for suffix in (".xml", ".bin"):
            shutil.copy(ov_export / Path(name).with_suffix(suffix), folder / subdir / "1" / f"model{suffix}")
    (folder / "graph.pbtxt").write_text(OLD_GRAPH)
    (folder / "subconfig.json").write_text(json.dumps(OLD_SUBCONFIG))


class Trees:
    """The module's repository: config.json's own folder, the sources and what each export printed."""

    def __init__(
        self, root: Path, sources: dict[str, Path], optimum: dict[str, Path], exports: dict[str, str]
    ) -> None:
        self.root = root
        self.sources = sources
        self.optimum = optimum
        self.export_output = exports

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    def write_config(self, config: dict[str, Any]) -> None:
        write_text_atomically(self.config_path, json.dumps(config, indent=4))


def model_entry(name: str, base_path: Path | str, **extra: Any) -> dict[str, Any]:
    return {"config": {"name": name, "base_path": str(base_path), **extra}}


def tree_config(trees: Trees, cross_encoder_base: Path) -> dict[str, Any]:
    optimum = trees.optimum
    return {
        "model_config_list": [
            model_entry("plain/cross-encoder", cross_encoder_base, plugin_config=F32),
            model_entry("plain/minilm", optimum["minilm"], plugin_config=F32),
            model_entry("ovms-ov/xlmr", "ovms-ov/xlmr"),
            model_entry("ours/cross-encoder-ov", "ours/cross-encoder-ov"),
            model_entry("ours/minilm-ov", "ours/minilm-ov"),
            # A plain OVMS model (numbered versions, no graph): not served on its own.
            model_entry("seed/xlmr_tokenizer_copy", "seed/xlmr/tokenizer"),
        ],
        "mediapipe_config_list": [
            {"name": "plain/minilm-default", "base_path": str(optimum["minilm"])},
            {"name": "seed/xlmr", "base_path": "seed/xlmr"},
            {"name": "seed/minilm", "base_path": "seed/minilm"},
            {"name": "old/cross-encoder", "base_path": "old/cross-encoder"},
        ],
    }


SERVED = [
    "plain/cross-encoder", "plain/minilm", "plain/minilm-default", "ovms-ov/xlmr", "ours/cross-encoder-ov",
    "ours/minilm-ov", "seed/xlmr", "seed/minilm", "old/cross-encoder",
]  # fmt: skip


@pytest.fixture(scope="module")
def trees(
    tmp_path_factory: pytest.TempPathFactory,
    run_export,
    cross_encoder_source: Path,
    xlmr_reranker_source: Path,
    minilm_source: Path,
) -> Trees:
    root = tmp_path_factory.mktemp("interop") / "models"
    root.mkdir()
    sources = {"cross-encoder": cross_encoder_source, "xlmr": xlmr_reranker_source, "minilm": minilm_source}
    tasks = {"cross-encoder": Task.RERANK, "xlmr": Task.RERANK, "minilm": Task.EMBEDDINGS}
    optimum = {kind: root.parent / f"optimum-{kind}" for kind in sources}

    def ours(kind: str) -> str:
        done = run_export(
            tasks[kind].value, sources[kind], root, "--graph_format", "ov", model_name=f"ours/{kind}-ov"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(optimum_cli, sources[kind], tasks[kind], optimum[kind]) for kind in sources]
        exports = {kind: pool.submit(ours, kind) for kind in ("cross-encoder", "minilm")}
        for job in jobs:
            job.result()
        printed = {kind: job.result() for kind, job in exports.items()}
    seed_tree(root / "seed" / "xlmr", "seed/xlmr", Task.RERANK, xlmr_reranker_source, optimum["xlmr"])
    seed_tree(root / "seed" / "minilm", "seed/minilm", Task.EMBEDDINGS, minilm_source, optimum["minilm"])
    ovms_ov_tree(root / "ovms-ov" / "xlmr", xlmr_reranker_source, optimum["xlmr"])
    old_tree(root / "old" / "cross-encoder", root / "ours" / "cross-encoder-ov")
    trees = Trees(root, sources, optimum, printed)
    trees.write_config(tree_config(trees, optimum["cross-encoder"]))
    return trees


@pytest.fixture(scope="module")
def server(trees: Trees) -> Iterator[ServerProcess]:
    with ServerProcess(trees.config_path, trees.root.parent / "server.log", models=SERVED) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


def rerank(client: httpx.Client, model: str, documents: list[str] = DOCUMENTS) -> tuple[np.ndarray, dict]:
    response = client.post("/v3/rerank", json={"model": model, "query": QUERY, "documents": documents})
    assert response.status_code == 200, response.text
    body = response.json()
    scores = np.zeros(len(documents))
    for result in body["results"]:
        scores[result["index"]] = result["relevance_score"]
    return scores, body["usage"]


def embed(client: httpx.Client, model: str) -> tuple[np.ndarray, dict]:
    response = client.post("/v3/embeddings", json={"model": model, "input": TEXTS})
    assert response.status_code == 200, response.text
    body = response.json()
    return np.array([item["embedding"] for item in body["data"]], dtype=np.float64), body["usage"]


@pytest.fixture(scope="module")
def hf_scores(trees: Trees) -> dict[str, np.ndarray]:
    """Hugging Face's scores (the documents fit: no chunking, no truncation)."""
    from transformers import AutoTokenizer

    scores = {}
    for kind in ("cross-encoder", "xlmr"):
        limit = AutoTokenizer.from_pretrained(trees.sources[kind]).model_max_length
        reference = HFRerankReference(trees.sources[kind], max_length=limit)
        scores[kind] = reference.scores(QUERY, DOCUMENTS)
    return scores


def test_every_tree_loads_as_version_1(client: httpx.Client) -> None:
    status = client.get("/v1/config").json()
    assert sorted(status) == sorted(SERVED)  # the plain OVMS model entry is not served on its own
    for name in SERVED:
        (version,) = status[name]["model_version_status"]
        assert (version["version"], version["state"]) == ("1", "AVAILABLE"), (name, version)


@pytest.mark.parametrize(
    ("model", "kind", "tolerance"),
    [
        ("plain/cross-encoder", "cross-encoder", EXACT_SCORE),
        ("ours/cross-encoder-ov", "cross-encoder", EXACT_SCORE),
        ("old/cross-encoder", "cross-encoder", EXACT_SCORE),
        ("seed/xlmr", "xlmr", DEFAULT_PRECISION_SCORE),
        ("ovms-ov/xlmr", "xlmr", DEFAULT_PRECISION_SCORE),
    ],
)
def test_rerank_matches_hugging_face(
    client: httpx.Client, hf_scores: dict[str, np.ndarray], model: str, kind: str, tolerance: float
) -> None:
    scores, _ = rerank(client, model)
    np.testing.assert_allclose(scores, hf_scores[kind], atol=tolerance, rtol=0)


def test_rerank_frames_pairs_as_hugging_face(client: httpx.Client, trees: Trees) -> None:
    """The optimum-cli tokenizer adds [CLS] ... [SEP] to each text; the server strips them and frames
    the pair by the IR's template: the tokens counted are Hugging Face's pair encodings."""
    from transformers import AutoTokenizer

    for model, kind in (("plain/cross-encoder", "cross-encoder"), ("seed/xlmr", "xlmr")):
        tokenizer = AutoTokenizer.from_pretrained(trees.sources[kind])
        expected = sum(len(ids) for ids in tokenizer([QUERY] * len(DOCUMENTS), DOCUMENTS)["input_ids"])
        assert rerank(client, model)[1]["prompt_tokens"] == expected, model


@pytest.mark.parametrize(
    ("model", "pooling", "tolerance"),
    [
        ("plain/minilm", Pooling.CLS, EXACT_COSINE),  # no graph: OVMS's default pooling
        ("ours/minilm-ov", Pooling.MEAN, EXACT_COSINE),  # the model's own, in the graph
        ("plain/minilm-default", Pooling.CLS, DEFAULT_PRECISION_COSINE),
        ("seed/minilm", Pooling.CLS, DEFAULT_PRECISION_COSINE),
    ],
)
def test_embeddings_match_hugging_face(
    client: httpx.Client, trees: Trees, model: str, pooling: Pooling, tolerance: float
) -> None:
    from transformers import AutoTokenizer

    reference = HFEmbeddingReference(trees.sources["minilm"], max_length=512, pooling=pooling, normalize=True)
    expected = reference.embed(TEXTS).astype(np.float64)
    vectors, usage = embed(client, model)
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(expected, axis=1)
    assert float(np.max(1 - np.sum(vectors * expected, axis=1) / norms)) < tolerance
    tokenizer = AutoTokenizer.from_pretrained(trees.sources["minilm"])
    assert usage["prompt_tokens"] == sum(len(ids) for ids in tokenizer(TEXTS)["input_ids"])


def test_old_graph_options_still_apply(client: httpx.Client) -> None:
    """The earlier graph's max_allowed_chunks (4) still applies."""
    documents = [*DOCUMENTS, "one more"]
    response = client.post(
        "/v3/rerank", json={"model": "old/cross-encoder", "query": QUERY, "documents": documents}
    )
    assert response.status_code == 400 and "max_allowed_chunks" in response.text


def test_exported_graphs_load_in_ovms_and_warn_where_it_cannot_serve(trees: Trees, tmp_path: Path) -> None:
    pool = compile_protos(tmp_path)
    for kind in ("cross-encoder", "minilm"):
        parse_strictly(pool, (trees.root / "ours" / f"{kind}-ov" / "graph.pbtxt").read_text())
    # BERT frames [CLS] q [SEP] d [SEP] with token type 1: OVMS's rerank_ov would not.
    printed = trees.export_output["cross-encoder"]
    assert "warning: OpenVINO Model Server 2025.2 and later (--graph_format ov)" in printed
    assert "token type 1" in printed and "frames a pair as [0] query [0, 102] document [0]" in printed
    assert "warning" not in trees.export_output["minilm"]
    # The legacy form's calculator refuses it outright.
    folder = trees.root / "ours" / "cross-encoder-ov"
    core = ov.Core()
    model = core.read_model(folder / FLAT_MODEL_XML)
    reasons = ovms_warnings(
        GraphFormat.LEGACY,
        Task.RERANK,
        json.loads((folder / "config.json").read_text()),
        read_tokenizer_info(core.read_model(folder / FLAT_TOKENIZER_XML)),
        read_model_info(model),
        {port.get_any_name() for port in model.inputs},
        None,
    )
    assert any("bos_token_id, eos_token_id" in reason for reason in reasons)
    assert any("also has token_type_ids" in reason for reason in reasons)


def test_a_flat_folder_swaps_when_config_names_a_new_one(
    client: httpx.Client, trees: Trees, hf_scores: dict[str, np.ndarray]
) -> None:
    """plain/cross-encoder is pointed at a new folder (the XLM-R model): while that folder is
    incomplete the old one keeps serving; once complete (and settled) it is loaded and swapped in."""
    new_folder = trees.root.parent / "replacement"
    shutil.copytree(trees.optimum["xlmr"], new_folder)
    weights = new_folder / "openvino_model.bin"
    held_back = weights.rename(new_folder.parent / "held-back.bin")
    config = tree_config(trees, new_folder)
    trees.write_config(config)
    assert client.post("/v1/config/reload").status_code == 200
    scores, _ = rerank(client, "plain/cross-encoder")
    np.testing.assert_allclose(scores, hf_scores["cross-encoder"], atol=EXACT_SCORE, rtol=0)

    held_back.rename(weights)
    assert client.post("/v1/config/reload").status_code == 200
    scores, _ = rerank(client, "plain/cross-encoder")
    np.testing.assert_allclose(scores, hf_scores["xlmr"], atol=EXACT_SCORE, rtol=0)
    (version,) = client.get("/v1/config").json()["plain/cross-encoder"]["model_version_status"]
    assert (version["version"], version["state"]) == ("1", "AVAILABLE")
