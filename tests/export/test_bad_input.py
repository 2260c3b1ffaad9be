"""Bad input: a one-line error naming the problem, a non-zero exit, and the repository untouched.

Each case runs the real CLI against a copy of a repository that already holds one export (the
session's xlmr fp32 export, as 'tiny') and a config.json with another model's entry, and compares
every file before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from export_models.repository.staging import REPOSITORY_LOCK
from tests.support.exports import Exported
from tests.support.repository import copy_model
from tools.export_command import EXPORT_SCRIPT

REPO_ROOT = Path(__file__).resolve().parents[2]
OTHER_ENTRY = {"name": "someone/else", "base_path": "someone/else", "custom_key": [1, 2]}


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory, exported: Callable[..., Exported]) -> Path:
    """A repository with version 1 of 'tiny' and a foreign entry in config.json."""
    repo = tmp_path_factory.mktemp("bad-input") / "models"
    copy_model(exported("xlmr", "fp32"), repo, "tiny")
    entries = [OTHER_ENTRY, {"name": "tiny", "base_path": "tiny"}]
    (repo / "config.json").write_text(json.dumps({"mediapipe_config_list": entries, "extra": True}))
    return repo


@pytest.fixture
def repo(template_repo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(template_repo, copy)
    return copy


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` with a hash of its content; not the repository's lock
    file (an empty file any export leaves, failed or not: its flock is how exports take turns)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        if path.name == REPOSITORY_LOCK:
            continue
        relative = str(path.relative_to(folder))
        state[relative] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return state


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def assert_unchanged(repo: Path, before: dict[str, str]) -> None:
    assert snapshot(repo) == before  # includes config.json byte for byte, and no staging folder


def make_source(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_hub_id_not_in_cache_while_offline(repo: Path, run_export, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    before = snapshot(repo)
    result = run_export("rerank", "BAAI/bge-reranker-large", repo)
    assert_one_line_error(result, "'BAAI/bge-reranker-large'", "HF_HUB_OFFLINE", "local model folder")
    assert_unchanged(repo, before)


def test_hub_id_without_network(repo: Path, tmp_path: Path) -> None:
    # Online mode, but the hub endpoint is a closed local port: what a machine without network sees.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
    }
    before = snapshot(repo)
    result = subprocess.run(
        [
            sys.executable,
            str(EXPORT_SCRIPT),
            "rerank",
            "--source_model",
            "BAAI/bge-reranker-large",
            "--model_repository_path",
            str(repo),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert_one_line_error(result, "cannot fetch 'BAAI/bge-reranker-large'", "no network", "HF_HUB_OFFLINE=1")
    assert_unchanged(repo, before)


def test_local_path_that_does_not_exist(repo: Path, run_export, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "model"
    before = snapshot(repo)
    assert_one_line_error(run_export("rerank", missing, repo), str(missing), "does not exist")
    assert_unchanged(repo, before)


def test_folder_without_config_json(repo: Path, run_export, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    before = snapshot(repo)
    assert_one_line_error(run_export("embeddings", tmp_path / "empty", repo), "no config.json")
    assert_unchanged(repo, before)


@pytest.mark.parametrize(
    ("architecture", "model_type"),
    [
        (
            "NomicBertForSequenceClassification",
            "nomic_bert",
        ),  # transformers knows it, optimum-intel cannot export it, no family recipe reranks with it
        ("FooBarForSequenceClassification", "foobar"),  # nobody knows it
    ],
)
def test_architecture_that_cannot_be_exported(
    repo: Path, run_export, tmp_path: Path, architecture: str, model_type: str
) -> None:
    source = make_source(
        tmp_path / "src", {"architectures": [architecture], "model_type": model_type, "num_labels": 1}
    )
    before = snapshot(repo)
    assert_one_line_error(
        run_export("rerank", source, repo), architecture, f"model_type '{model_type}'", "cannot export"
    )
    assert_unchanged(repo, before)


def test_embedder_given_to_rerank(repo: Path, run_export, minilm_source: Path) -> None:
    before = snapshot(repo)
    assert_one_line_error(run_export("rerank", minilm_source, repo), "sequence classifier", "BertModel")
    assert_unchanged(repo, before)


def test_multi_label_classifier_given_to_rerank(repo: Path, run_export, tmp_path: Path) -> None:
    source = make_source(
        tmp_path / "nli",
        {
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "id2label": {"0": "contradiction", "1": "neutral", "2": "entailment"},
        },
    )
    before = snapshot(repo)
    assert_one_line_error(run_export("rerank", source, repo), "one-label", "3 labels")
    assert_unchanged(repo, before)


def test_existing_version_without_overwrite(repo: Path, run_export, xlmr_reranker_source: Path) -> None:
    before = snapshot(repo)
    result = run_export("rerank", xlmr_reranker_source, repo, "--version", "1", model_name="tiny")
    assert_one_line_error(result, "version 1 of tiny already exists", "--overwrite_models")
    assert_unchanged(repo, before)


def test_unwritable_repository_path(run_export, xlmr_reranker_source: Path, tmp_path: Path) -> None:
    # A regular file where a folder must go: unwritable even for root (chmod does not stop root).
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    result = run_export("rerank", xlmr_reranker_source, blocker / "models")
    assert_one_line_error(result, "cannot create", str(blocker / "models"))
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_repository(repo: Path, run_export, xlmr_reranker_source: Path) -> None:
    before = snapshot(repo)
    repo.chmod(0o555)
    try:
        result = run_export("rerank", xlmr_reranker_source, repo, model_name="new")
    finally:
        repo.chmod(0o755)
    assert_one_line_error(result, "not writable", str(repo))
    assert_unchanged(repo, before)


def test_config_file_path_under_a_file(
    repo: Path, run_export, xlmr_reranker_source: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    before = snapshot(repo)
    result = run_export(
        "rerank",
        xlmr_reranker_source,
        repo,
        "--config_file_path",
        str(blocker / "config.json"),
        model_name="new",
    )
    assert_one_line_error(result, "folder of config.json")
    assert_unchanged(repo, before)


def test_broken_config_json_is_left_alone(repo: Path, run_export, xlmr_reranker_source: Path) -> None:
    (repo / "config.json").write_text('{"mediapipe_config_list": [')
    before = snapshot(repo)
    assert_one_line_error(
        run_export("rerank", xlmr_reranker_source, repo, model_name="new"), "not valid JSON"
    )
    assert_unchanged(repo, before)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--model_name", "../escape"), "--model_name '../escape'"),
        (("--extra_quantization_params", '"unclosed'), "cannot be parsed"),
    ],
)
def test_bad_option_values(
    repo: Path, run_export, xlmr_reranker_source: Path, extra: tuple, fragment: str
) -> None:
    before = snapshot(repo)
    assert_one_line_error(run_export("rerank", xlmr_reranker_source, repo, *extra), fragment)
    assert_unchanged(repo, before)


def test_failure_during_conversion_leaves_nothing_behind(
    repo: Path, run_export, xlmr_reranker_source: Path
) -> None:
    """A late failure (optimum-cli rejects an option) after the staging folder exists."""
    before = snapshot(repo)
    result = run_export(
        "rerank",
        xlmr_reranker_source,
        repo,
        "--extra_quantization_params",
        "--no-such-option",
        model_name="tiny",
    )
    assert_one_line_error(result, "optimum-cli could not export", "--no-such-option")
    assert "[3/7]" in result.stdout  # it failed in the conversion step, not before
    assert_unchanged(repo, before)
