"""--graph_format ov commits: one flat folder, replaced as a whole; config.json's list follows the form.

The commit is driven with staged files (no conversion): what the last step of an export does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export_models import repository
from export_models.errors import VersionExistsError
from serving.repository.config import read_config, read_servable_spec
from serving.repository.layout import FLAT_MODEL_XML, FLAT_TOKENIZER_XML, GraphFormat, Task

OTHER = {"name": "other", "base_path": "other"}


def stage(plan: repository.RepositoryPlan, content: str) -> None:
    """What the export's steps leave in the staging folder, with `content` in every file."""
    if plan.flat:
        folder = plan.staged_model_dir
        folder.mkdir(parents=True)
        for name in (FLAT_MODEL_XML, FLAT_TOKENIZER_XML):
            (folder / name).write_text(content)
            (folder / name).with_suffix(".bin").write_text(content)
        (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    else:
        for folder in (plan.staged_tokenizer_version, plan.staged_model_version):
            folder.mkdir(parents=True)
            (folder / "model.xml").write_text(content)
            (folder / "model.bin").write_text(content)
        (plan.staged_model_dir / "subconfig.json").write_text("{}")
    (plan.staged_model_dir / "graph.pbtxt").write_text(content)


def export(repo: Path, graph_format: GraphFormat, content: str, overwrite: bool = False) -> int:
    plan = repository.plan_export(
        repo, repo / "config.json", "org/m", Task.RERANK, None, overwrite, graph_format
    )
    try:
        stage(plan, content)
        return repository.commit(plan)
    finally:
        plan.discard_staging()


def test_ov_folder_is_replaced_whole_and_moves_between_config_lists(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"mediapipe_config_list": [OTHER], "keep": 1}))
    model_dir = repo / "org" / "m"

    assert export(repo, GraphFormat.OV, "first") == 1
    config = json.loads((repo / "config.json").read_text())
    assert config["model_config_list"] == [{"config": {"name": "org/m", "base_path": "org/m"}}]
    assert config["mediapipe_config_list"] == [OTHER] and config["keep"] == 1
    (model_dir / "leftover").write_text("from the first export")

    with pytest.raises(VersionExistsError, match="--overwrite_models"):
        export(repo, GraphFormat.OV, "second")
    assert (model_dir / "graph.pbtxt").read_text() == "first"

    assert export(repo, GraphFormat.OV, "second", overwrite=True) == 1
    assert (model_dir / "graph.pbtxt").read_text() == "second"
    assert not (model_dir / "leftover").exists()  # the whole folder was replaced

    # The legacy form replaces the flat folder too, only with --overwrite_models; the entry moves lists.
    with pytest.raises(VersionExistsError, match="ov form"):
        export(repo, GraphFormat.LEGACY, "legacy")
    assert export(repo, GraphFormat.LEGACY, "legacy", overwrite=True) == 1
    assert not (model_dir / FLAT_MODEL_XML).exists()
    assert (model_dir / "rerank" / "1" / "model.xml").read_text() == "legacy"
    config = json.loads((repo / "config.json").read_text())
    assert config["model_config_list"] == []
    assert config["mediapipe_config_list"] == [OTHER, {"name": "org/m", "base_path": "org/m"}]


def test_the_server_reads_an_ov_entry_as_a_flat_folder(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    repo.mkdir()
    export(repo, GraphFormat.OV, "content")
    # A graph the reader understands (the content above is not one).
    (repo / "org" / "m" / "graph.pbtxt").write_text(
        'node { name: "RerankExecutor" calculator: "RerankCalculatorOV" node_options: {\n'
        "  [type.googleapis.com / mediapipe.RerankCalculatorOVOptions]: {\n"
        '    models_path: "./" plugin_config: \'{"NUM_STREAMS": "2"}\' max_allowed_chunks: 7 } } }\n'
    )
    (entry,) = read_config(repo / "config.json")
    spec = read_servable_spec(entry)
    assert spec.flat and spec.task is Task.RERANK and spec.options.max_allowed_chunks == 7
    assert spec.model.base_path == repo / "org" / "m" and spec.model.plugin_config == {"NUM_STREAMS": "2"}
    assert list(spec.scan_versions()) == [1]
    assert spec.scan_versions()[1].model_xml == repo / "org" / "m" / FLAT_MODEL_XML


def test_ov_takes_no_other_version(tmp_path: Path, run_export, xlmr_reranker_source: Path) -> None:
    done = run_export(
        "rerank", xlmr_reranker_source, tmp_path / "models", "--graph_format", "ov", "--version", "2"
    )
    assert done.returncode == 1 and "served as version 1" in done.stderr
