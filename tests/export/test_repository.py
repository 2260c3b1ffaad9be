"""What an export writes: config.json merging, versions, graph.pbtxt, subconfig.json, runtime info."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openvino as ov
import pytest

from export_models import pipeline
from export_models import source as source_module
from export_models.errors import InvalidOptionError
from export_models.repository import servable_versions
from export_models.repository.config_json import merged_config
from export_models.repository.staging import REPOSITORY_LOCK, STAGING_PREFIX
from serving.repository import pbtxt
from serving.repository.config import (
    EmbeddingsOptions,
    GraphOptions,
    RerankOptions,
    read_config,
    read_servable_spec,
    resolve_options,
)
from serving.repository.layout import MODEL_XML, Pooling, Task, read_model_info, read_tokenizer_info
from tests.support.exports import Exported
from tests.support.references import HFReranker
from tests.support.repository import copy_model
from tests.support.server import ServerProcess, scores_by_index

REPO_ROOT = Path(__file__).resolve().parents[2]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


# --- config.json and versions ------------------------------------------------------------


def steps_copying(exported: Exported) -> list[pipeline.ExportStep]:
    """The export's own steps, with the three conversion steps replaced by a copy of `exported`'s IRs:
    checking the source, choosing the version, rendering and the final move all run as they are."""

    def copy_irs(ctx: pipeline.ExportContext) -> None:
        _, plan = ctx.resolved()
        tokenizer_dir, model_dir = exported.version_dirs(1)
        shutil.copytree(tokenizer_dir, plan.staged_tokenizer_version)
        shutil.copytree(model_dir, plan.staged_model_version)
        # What the skipped steps would have recorded, for rendering and its OVMS checks.
        ctx.model_xml = plan.staged_model_version / MODEL_XML
        ctx.tokenizer_info, ctx.model_info = exported.tokenizer_info(), exported.model_info()

    conversion = (pipeline.convert_tokenizer_step, pipeline.write_irs_step)
    steps = []
    for step in pipeline.default_steps():
        if step.run is pipeline.convert_model_step:
            steps.append(pipeline.ExportStep("Copying the IRs of a session export", copy_irs))
        elif step.run not in conversion:
            steps.append(step)
    return steps


def test_config_merge_and_version_numbering(tmp_path: Path, exported: Callable[..., Exported]) -> None:
    """Versions and config.json entries as the export chooses them (conversion replaced by a copy:
    test_console_script_exports_the_next_version proves the same through the real command line)."""
    xlmr = exported("xlmr", "fp32")
    steps = steps_copying(xlmr)
    repo = tmp_path / "models"
    repo.mkdir()
    original = {
        "model_config_list": [{"config": {"name": "plain-model", "base_path": "/somewhere"}}],
        "mediapipe_config_list": [
            {"name": "keep/me", "base_path": "keep/me"},
            {"name": "tiny", "base_path": "old/place", "graph_path": "custom.pbtxt"},
        ],
        "monitoring": {"metrics": {"enable": True}},
    }
    (repo / "config.json").write_text(json.dumps(original))

    def export(**options: object) -> pipeline.ExportResult:
        request = pipeline.ExportRequest(
            task=Task.RERANK, source_model=str(xlmr.source), model_name="tiny", weight_format="fp32",
            model_repository_path=repo, **options,
        )  # fmt: skip
        return pipeline.run_export(request, steps=steps)

    # 1. A new model gets version 1; its entry is replaced in place, everything else kept.
    assert export().version == 1
    config = read_json(repo / "config.json")
    assert config["model_config_list"] == original["model_config_list"]
    assert config["monitoring"] == original["monitoring"]
    assert config["mediapipe_config_list"] == [
        {"name": "keep/me", "base_path": "keep/me"},
        {"name": "tiny", "base_path": "tiny"},
    ]
    assert servable_versions(repo / "tiny", Task.RERANK) == [1]

    # 2. Re-export: the next free number, and still one entry for the model.
    assert export().version == 2
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2]
    names = [e["name"] for e in read_json(repo / "config.json")["mediapipe_config_list"]]
    assert names == ["keep/me", "tiny"]

    # 3. An explicit --version; later defaults continue after the highest.
    assert export(version=5).version == 5
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2, 5]

    # 4. --overwrite_models with --version replaces that version (new files, same number).
    old_bin = repo / "tiny" / "rerank" / "2" / "model.bin"
    old_inode = old_bin.stat().st_ino
    assert export(version=2, overwrite_models=True).version == 2
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2, 5]
    assert old_bin.stat().st_ino != old_inode

    # 5. --overwrite_models alone replaces the latest version instead of adding one.
    latest_xml = repo / "tiny" / "tokenizer" / "5" / "model.xml"
    latest_inode = latest_xml.stat().st_ino
    assert export(overwrite_models=True).version == 5
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2, 5]
    assert latest_xml.stat().st_ino != latest_inode
    assert export().version == 6
    assert not [p for p in repo.iterdir() if p.name.startswith(STAGING_PREFIX)]  # no staging folders left


def test_merged_config_removes_duplicates_of_its_own_entry() -> None:
    existing = {
        "mediapipe_config_list": [{"name": "a"}, {"name": "m", "base_path": "x"}, {"name": "m"}],
        "k": 1,
    }
    merged = merged_config(existing, "m", "m")
    assert merged == {"mediapipe_config_list": [{"name": "a"}, {"name": "m", "base_path": "m"}], "k": 1}
    assert merged_config(None, "m", "../m") == {
        "model_config_list": [],
        "mediapipe_config_list": [{"name": "m", "base_path": "../m"}],
    }


# --- graph.pbtxt, subconfig.json, runtime info -------------------------------------------


def test_rerank_graph_and_subconfig_parse_back(exported: Callable[..., Exported]) -> None:
    """The default (--graph_format legacy) graph: OVMS's legacy three nodes."""
    export = exported("cross-encoder", "fp32")
    graph = pbtxt.parse((export.model_dir / "graph.pbtxt").read_text())
    assert graph["input_stream"] == "REQUEST_PAYLOAD:input"
    assert graph["output_stream"] == "RESPONSE_PAYLOAD:output"
    tokenizer_node, model_node, node = graph["node"]
    session = "[type.googleapis.com/mediapipe.OpenVINOModelServerSessionCalculatorOptions]"
    assert tokenizer_node["output_side_packet"] == "SESSION:tokenizer"
    assert tokenizer_node["node_options"][session] == {
        "servable_name": f"{export.model_name}_tokenizer_model"
    }
    assert model_node["output_side_packet"] == "SESSION:rerank"
    assert model_node["node_options"][session] == {"servable_name": f"{export.model_name}_rerank_model"}
    assert node["calculator"] == "RerankCalculator"
    assert node["input_side_packet"] == ["TOKENIZER_SESSION:tokenizer", "RERANK_SESSION:rerank"]
    options = node["node_options"]["[type.googleapis.com/mediapipe.RerankCalculatorOptions]"]
    assert options == {"max_allowed_chunks": 10000, "max_position_embeddings": 512}
    assert export.model_info().max_doc_length == 16000  # no such field in OVMS's message

    subconfig = read_json(export.model_dir / "subconfig.json")
    tokenizer, model = (item["config"] for item in subconfig["model_config_list"])
    assert tokenizer == {
        "name": f"{export.model_name}_tokenizer_model",
        "base_path": "tokenizer",
        "target_device": "CPU",
        "model_version_policy": {"latest": {"num_versions": 1}},
    }
    assert model == {
        "name": f"{export.model_name}_rerank_model",
        "base_path": "rerank",
        "target_device": "CPU",
        "plugin_config": {"NUM_STREAMS": "1", "INFERENCE_PRECISION_HINT": "f32"},
        "model_version_policy": {"latest": {"num_versions": 1}},
    }


def test_server_reads_what_export_writes(exported: Callable[..., Exported]) -> None:
    """The serving side's own readers accept the repository and see the exported settings."""
    rerank, embeddings = exported("cross-encoder", "int8"), exported("minilm", "fp32")
    (entry,) = read_config(rerank.config_path)
    spec = read_servable_spec(entry)
    assert spec.task is Task.RERANK
    assert resolve_options(spec.task, spec.options, rerank.model_info()) == RerankOptions(10000, 16000)
    assert spec.tokenizer.base_path == rerank.model_dir / "tokenizer"
    assert spec.model.base_path == rerank.model_dir / "rerank"
    assert spec.model.plugin_config == {"NUM_STREAMS": "1"}  # int8 keeps the plugin's default precision
    (entry,) = read_config(embeddings.config_path)
    spec = read_servable_spec(entry)
    # all-MiniLM-L6-v2's 1_Pooling/config.json says mean pooling; normalize by default.
    assert spec.task is Task.EMBEDDINGS
    assert spec.options == GraphOptions(normalize_embeddings=True)  # pooling: the runtime info's
    assert resolve_options(spec.task, spec.options, embeddings.model_info()) == EmbeddingsOptions(
        pooling=Pooling.MEAN, normalize_embeddings=True, truncate=False
    )
    assert spec.model.plugin_config["INFERENCE_PRECISION_HINT"] == "f32"


def test_runtime_info_records_the_source_and_shapes(exported: Callable[..., Exported]) -> None:
    rerank, embeddings = exported("cross-encoder", "fp32"), exported("minilm", "fp32")
    info = rerank.model_info()
    assert info.task == "rerank" and info.weight_format == "fp32"
    assert info.source_model == str(rerank.source.resolve())  # compare_results.py finds the HF model here
    assert info.architecture == "BertForSequenceClassification"
    assert (info.hidden_size, info.num_labels) == (384, 1)
    info = embeddings.model_info()
    assert (info.task, info.architecture, info.hidden_size, info.num_labels) == (
        "embeddings",
        "BertModel",
        384,
        0,
    )
    tokenizer_info = embeddings.tokenizer_info()
    assert tokenizer_info.special_tokens["cls"] == 101 == tokenizer_info.single_prefix[0]


def test_embeddings_options_and_relative_source(
    tmp_path: Path, run_export, xlmr_reranker_source: Path
) -> None:
    """--pooling/--skip_normalize/--truncate/--target_device/--num_streams reach the files, --pooling
    overrides the model's own pooling, a relative --source_model is recorded as an absolute path, and
    without --model_name the model is named after the source folder."""
    source = tmp_path / "with-pooling"
    source.mkdir()
    for item in xlmr_reranker_source.iterdir():
        (source / item.name).symlink_to(item)
    (source / "1_Pooling").mkdir()
    (source / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_lasttoken": True}))
    assert source_module.default_pooling(source_module.resolve_source(str(source))) is Pooling.LAST

    repo = tmp_path / "models"
    relative_source = os.path.relpath(source, REPO_ROOT)
    extra = (
        "--pooling",
        "mean",
        "--skip_normalize",
        "--truncate",
        "--target_device",
        "HETERO:GPU,CPU",
        "--num_streams",
        "2",
    )
    ok(run_export("embeddings", relative_source, repo, *extra, weight_format="fp16"))
    assert [entry.name for entry in read_config(repo / "config.json")] == ["with-pooling"]
    model_dir = repo / "with-pooling"
    options = pbtxt.parse((model_dir / "graph.pbtxt").read_text())["node"][2]["node_options"]
    assert options["[type.googleapis.com/mediapipe.EmbeddingsCalculatorOptions]"] == {
        "normalize_embeddings": False
    }
    _, model = (item["config"] for item in read_json(model_dir / "subconfig.json")["model_config_list"])
    assert model["name"] == "with-pooling_embeddings_model" and model["base_path"] == "embeddings"
    assert model["target_device"] == "HETERO:GPU,CPU"
    assert model["plugin_config"] == {"NUM_STREAMS": "2"}
    core = ov.Core()
    info = read_model_info(core.read_model(model_dir / "embeddings" / "1" / "model.xml"))
    assert (info.pooling, info.normalize_embeddings, info.truncate) == ("MEAN", False, True)
    assert info.source_model == str(source.resolve())
    assert (info.task, info.weight_format, info.num_labels) == ("embeddings", "fp16", 0)
    assert read_tokenizer_info(core.read_model(model_dir / "tokenizer" / "1" / "model.xml")).max_length == 128


@pytest.mark.parametrize(
    ("pooling_config", "expected"),
    [
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, Pooling.CLS),
        ({"pooling_mode_mean_tokens": True}, Pooling.MEAN),
        ({"pooling_mode_lasttoken": True}, Pooling.LAST),
        ({"pooling_mode": "mean"}, Pooling.MEAN),  # sentence-transformers >= 5 spelling
        ({"pooling_mode": "lasttoken"}, Pooling.LAST),
        (None, Pooling.CLS),  # no Pooling module
    ],
)
def test_default_pooling_from_sentence_transformers_config(
    tmp_path: Path, pooling_config: dict | None, expected: Pooling
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    if pooling_config is not None:
        (tmp_path / "1_Pooling").mkdir()
        (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    assert source_module.default_pooling(source_module.resolve_source(str(tmp_path))) is expected


def test_unsupported_pooling_mode_asks_for_the_flag(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(InvalidOptionError, match="--pooling"):
        source_module.default_pooling(source_module.resolve_source(str(tmp_path)))


# --- the console script --------------------------------------------------------------------


def console_script() -> str:
    return str(Path(sys.executable).parent / "ovtext-export")


def test_console_script_help_lists_every_option() -> None:
    top = subprocess.run([console_script(), "--help"], capture_output=True, text=True, check=True).stdout
    assert "rerank" in top and "embeddings" in top
    common = [
        "--source_model",
        "--model_name",
        "--weight-format",
        "--model_repository_path",
        "--config_file_path",
        "--target_device",
        "--num_streams",
        "--version",
        "--overwrite_models",
        "--extra_quantization_params",
    ]
    for command, own in (
        ("rerank", ["--max_doc_length", "--max_allowed_chunks"]),
        ("embeddings", ["--pooling", "--skip_normalize", "--truncate"]),
    ):
        text = subprocess.run(
            [console_script(), command, "--help"], capture_output=True, text=True, check=True
        ).stdout
        for option in common + own:
            assert option in text, f"{command} --help lacks {option}"


TINY = "BAAI/bge-reranker-tiny"


@dataclass(frozen=True)
class ConsoleExport:
    """`ovtext-export rerank ...` run once into a repository that already had version 1 of the model,
    with config.json in a folder of its own."""

    result: subprocess.CompletedProcess
    repo: Path
    config_path: Path
    original_config: dict
    version_1_before: dict[str, str]


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def console_export(
    tmp_path_factory: pytest.TempPathFactory, exported: Callable[..., Exported], xlmr_reranker_source: Path
) -> ConsoleExport:
    root = tmp_path_factory.mktemp("console")
    repo, config_dir = root / "models", root / "conf"
    config_dir.mkdir()
    copy_model(exported("xlmr", "fp32"), repo, TINY)  # version 1, there before
    original = {
        "model_config_list": [{"config": {"name": "plain-model", "base_path": "/somewhere"}}],
        "mediapipe_config_list": [
            {"name": "keep/me", "base_path": "../models/keep/me"},
            {"name": TINY, "base_path": "old/place", "graph_path": "custom.pbtxt"},
        ],
        "monitoring": {"metrics": {"enable": True}},
    }
    config_path = config_dir / "config.json"
    config_path.write_text(json.dumps(original))
    before = file_hashes(repo / TINY / "rerank" / "1") | file_hashes(repo / TINY / "tokenizer" / "1")
    result = subprocess.run(
        [
            console_script(), "rerank", "--source_model", str(xlmr_reranker_source),
            "--model_repository_path", str(repo), "--config_file_path", str(config_path),
            "--model_name", TINY, "--max_doc_length", "300", "--max_allowed_chunks", "3",
        ],
        capture_output=True, text=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=root,
    )  # fmt: skip
    return ConsoleExport(result, repo, config_path, original, before)


def test_console_script_exports_the_next_version(console_export: ConsoleExport) -> None:
    ok(console_export.result)
    assert "[1/7]" in console_export.result.stdout  # progress is shown
    model_dir = console_export.repo / TINY
    assert servable_versions(model_dir, Task.RERANK) == [1, 2]
    after = file_hashes(model_dir / "rerank" / "1") | file_hashes(model_dir / "tokenizer" / "1")
    assert after == console_export.version_1_before  # version 1 untouched
    # The default weight format is int8.
    info = read_model_info(ov.Core().read_model(model_dir / "rerank" / "2" / "model.xml"))
    assert info.weight_format == "int8"


def test_config_outside_the_repository_gets_a_relative_base_path(console_export: ConsoleExport) -> None:
    ok(console_export.result)
    config = read_json(console_export.config_path)
    original = console_export.original_config
    assert config["model_config_list"] == original["model_config_list"]
    assert config["monitoring"] == original["monitoring"]
    assert config["mediapipe_config_list"] == [
        original["mediapipe_config_list"][0],  # another model's entry, as it was
        {"name": TINY, "base_path": f"../models/{TINY}"},  # relative to config.json's folder
    ]


def test_rerank_options_reach_the_graph(console_export: ConsoleExport) -> None:
    ok(console_export.result)
    graph = pbtxt.parse((console_export.repo / TINY / "graph.pbtxt").read_text())
    options = graph["node"][2]["node_options"]["[type.googleapis.com/mediapipe.RerankCalculatorOptions]"]
    assert options["max_allowed_chunks"] == 3
    # OVMS's message has no max_doc_length: the runtime info keeps it.
    model_xml = console_export.repo / TINY / "rerank" / "2" / "model.xml"
    assert read_model_info(ov.Core().read_model(model_xml)).max_doc_length == 300


def test_the_console_export_serves_from_the_outside_config(
    console_export: ConsoleExport, start_server: Callable[..., ServerProcess], xlmr_reranker_source: Path
) -> None:
    """The server finds the model through the relative base_path, serves version 2, and applies the
    graph options the command line wrote: a 1000-token document is cut to 300 tokens (3 chunks),
    within max_allowed_chunks 3, where uncut it would be about 9 chunks."""
    ok(console_export.result)
    server = start_server(console_export.config_path)
    models = httpx.get(f"{server.url}/v3/models").json()["data"]
    assert [(m["id"], m["version"]) for m in models] == [(TINY, 2)]
    hf = HFReranker(xlmr_reranker_source)
    query, long_document = "what is a panda?", "The panda eats bamboo in the forest. " * 100
    assert len(hf.ids(long_document)) > 900
    short = ["a bear", "a car"]
    response = httpx.post(f"{server.url}/v3/rerank", json={"model": TINY, "query": query, "documents": short})
    assert response.status_code == 200, response.text
    # int8 weights: compare_results' int8 tolerance (measured 4.4e-3 on this model).
    assert np.abs(scores_by_index(response.json(), 2) - hf.scores(query, short)).max() < 5e-2

    response = httpx.post(
        f"{server.url}/v3/rerank", json={"model": TINY, "query": query, "documents": [long_document]}
    )
    assert response.status_code == 200, response.text
    query_and_specials = len(hf.tokenizer(query, "a bear")["input_ids"]) - len(hf.ids("a bear"))
    chunks = -(-300 // (hf.tokenizer.model_max_length - query_and_specials))
    assert chunks == 3
    assert response.json()["usage"]["prompt_tokens"] == chunks * query_and_specials + 300
    # One more chunk in the request is one too many.
    body = {"model": TINY, "query": query, "documents": [long_document, "a bear"]}
    response = httpx.post(f"{server.url}/v3/rerank", json=body)
    assert response.status_code == 400 and "max_allowed_chunks" in response.json()["error"]


# --- the final move is all or nothing ------------------------------------------------------


def test_commit_undoes_its_moves_when_a_later_move_fails(tmp_path: Path) -> None:
    """Version folders already moved go back (and replaced ones return) if a later rename fails."""
    from export_models.repository import commit, plan_export

    repo = tmp_path / "models"
    model_dir = repo / "m"
    for sub in ("tokenizer/1", "rerank/1"):
        (model_dir / sub).mkdir(parents=True)
        (model_dir / sub / "model.xml").write_text(f"old {sub}")
        (model_dir / sub / "model.bin").write_text("old")
    (model_dir / "subconfig.json").write_text("old subconfig")
    (model_dir / "graph.pbtxt").write_text("old graph")
    (repo / "config.json").write_text('{"mediapipe_config_list": [{"name": "m", "base_path": "m"}]}')
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}

    plan = plan_export(repo, repo / "config.json", "m", Task.RERANK, requested_version=1, overwrite=True)
    assert plan.replaces_version
    for folder in (plan.staged_tokenizer_version, plan.staged_model_version):
        folder.mkdir(parents=True)
        (folder / "model.xml").write_text("new")
        (folder / "model.bin").write_text("new")
    (plan.staged_model_dir / "subconfig.json").write_text("new subconfig")
    # No staged graph.pbtxt: its move fails after both version folders and subconfig.json moved.
    with pytest.raises(FileNotFoundError):
        commit(plan)
    after = {
        p: p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and plan.staging not in p.parents and p.name != REPOSITORY_LOCK  # the lock file stays
    }
    assert after == before
