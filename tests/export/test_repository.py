"""What an export writes: config.json merging, versions, graph.pbtxt, subconfig.json, runtime info."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest

from export_models import source as source_module
from export_models.errors import InvalidOptionError
from export_models.repository import REPOSITORY_LOCK, STAGING_PREFIX, merged_config, servable_versions
from serving.repository import pbtxt
from serving.repository.config import (
    EmbeddingsOptions,
    GraphOptions,
    RerankOptions,
    read_config,
    read_servable_spec,
    resolve_options,
)
from serving.repository.layout import Pooling, Task, read_model_info, read_tokenizer_info

from .conftest import ExportedFactory

REPO_ROOT = Path(__file__).resolve().parents[2]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


# --- config.json and versions ------------------------------------------------------------


def test_config_merge_and_version_numbering(tmp_path: Path, run_export, xlmr_reranker_source: Path) -> None:
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

    # 1. A new model gets version 1; its entry is replaced in place, everything else kept.
    ok(run_export("rerank", xlmr_reranker_source, repo, model_name="tiny"))
    config = read_json(repo / "config.json")
    assert config["model_config_list"] == original["model_config_list"]
    assert config["monitoring"] == original["monitoring"]
    assert config["mediapipe_config_list"] == [
        {"name": "keep/me", "base_path": "keep/me"},
        {"name": "tiny", "base_path": "tiny"},
    ]
    assert servable_versions(repo / "tiny", Task.RERANK) == [1]

    # 2. Re-export: the next free number, and still one entry for the model.
    ok(run_export("rerank", xlmr_reranker_source, repo, model_name="tiny"))
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2]
    names = [e["name"] for e in read_json(repo / "config.json")["mediapipe_config_list"]]
    assert names == ["keep/me", "tiny"]

    # 3. An explicit --version; later defaults continue after the highest.
    ok(run_export("rerank", xlmr_reranker_source, repo, "--version", "5", model_name="tiny"))
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2, 5]

    # 4. --overwrite_models with --version replaces that version (new files, same number).
    old_bin = repo / "tiny" / "rerank" / "2" / "model.bin"
    old_inode = old_bin.stat().st_ino
    ok(
        run_export(
            "rerank", xlmr_reranker_source, repo, "--version", "2", "--overwrite_models", model_name="tiny"
        )
    )
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2, 5]
    assert old_bin.stat().st_ino != old_inode

    # 5. --overwrite_models alone replaces the latest version instead of adding one.
    latest_xml = repo / "tiny" / "tokenizer" / "5" / "model.xml"
    latest_inode = latest_xml.stat().st_ino
    ok(run_export("rerank", xlmr_reranker_source, repo, "--overwrite_models", model_name="tiny"))
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2, 5]
    assert latest_xml.stat().st_ino != latest_inode
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


def test_rerank_graph_and_subconfig_parse_back(exported: ExportedFactory) -> None:
    """The default (--graph_format legacy) graph: OVMS's seed-era three nodes."""
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


def test_server_reads_what_export_writes(exported: ExportedFactory) -> None:
    """The serving side's own readers accept the repository and see the exported settings."""
    rerank, embeddings = exported("cross-encoder", "int8"), exported("minilm", "fp32")
    assert rerank.repo == embeddings.repo
    entries = {entry.name: entry for entry in read_config(rerank.repo / "config.json")}
    spec = read_servable_spec(entries[rerank.model_name])
    assert spec.task is Task.RERANK
    assert resolve_options(spec.task, spec.options, rerank.model_info()) == RerankOptions(10000, 16000)
    assert spec.tokenizer.base_path == rerank.model_dir / "tokenizer"
    assert spec.model.base_path == rerank.model_dir / "rerank"
    assert spec.model.plugin_config == {"NUM_STREAMS": "1"}  # int8 keeps the plugin's default precision
    spec = read_servable_spec(entries[embeddings.model_name])
    # all-MiniLM-L6-v2's 1_Pooling/config.json says mean pooling; normalize by default.
    assert spec.task is Task.EMBEDDINGS
    assert spec.options == GraphOptions(normalize_embeddings=True)  # pooling: the runtime info's
    assert resolve_options(spec.task, spec.options, embeddings.model_info()) == EmbeddingsOptions(
        pooling=Pooling.MEAN, normalize_embeddings=True, truncate=False
    )
    assert spec.model.plugin_config["INFERENCE_PRECISION_HINT"] == "f32"


def test_runtime_info_records_the_source_and_shapes(exported: ExportedFactory) -> None:
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
    overrides the model's own pooling, and a relative --source_model is recorded as an absolute path."""
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
    ok(run_export("embeddings", relative_source, repo, *extra, model_name="org/emb", weight_format="fp16"))
    model_dir = repo / "org" / "emb"
    options = pbtxt.parse((model_dir / "graph.pbtxt").read_text())["node"][2]["node_options"]
    assert options["[type.googleapis.com/mediapipe.EmbeddingsCalculatorOptions]"] == {
        "normalize_embeddings": False
    }
    _, model = (item["config"] for item in read_json(model_dir / "subconfig.json")["model_config_list"])
    assert model["name"] == "org/emb_embeddings_model" and model["base_path"] == "embeddings"
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


def test_console_script_exports(tmp_path: Path, xlmr_reranker_source: Path) -> None:
    repo = tmp_path / "models"
    result = subprocess.run(
        [
            console_script(),
            "rerank",
            "--source_model",
            str(xlmr_reranker_source),
            "--model_repository_path",
            str(repo),
            "--model_name",
            "BAAI/bge-reranker-tiny",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    ok(result)
    assert "[1/7]" in result.stdout  # progress is shown
    assert servable_versions(repo / "BAAI" / "bge-reranker-tiny", Task.RERANK) == [1]
    # The default weight format is int8.
    info = read_model_info(
        ov.Core().read_model(repo / "BAAI" / "bge-reranker-tiny" / "rerank" / "1" / "model.xml")
    )
    assert info.weight_format == "int8"


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
