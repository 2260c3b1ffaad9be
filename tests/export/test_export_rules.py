"""Export rules checked without converting a model: model names and folders that would collide with
the repository layout, config.json behind a symlink, and the token limit of sentence-transformers models."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from export_models import convert_tokenizer, source
from export_models.errors import InvalidOptionError
from export_models.repository.names import check_model_placement, validate_model_name
from serving.atomic_write import write_text_atomically
from serving.repository.layout import GRAPH_FILE

# --- model names and folders ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a/rerank/3",  # would be version 3 of model a's rerank servable
        "a/tokenizer/1",
        "tokenizer",
        "org/embeddings",
        "org/rerank",
        "a/7",
        "7",
        "org/01",
        "org/٣",  # a digit that is not ASCII still reads as one
    ],
)
def test_names_with_a_layout_part_are_refused(name: str) -> None:
    with pytest.raises(InvalidOptionError, match="--model_name") as caught:
        validate_model_name(name)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["BAAI/bge-reranker-large", "a/b/c", "rerank-model", "org/v1", "e5-3"])
def test_ordinary_names_pass(name: str) -> None:
    validate_model_name(name)


def test_model_folder_inside_or_around_another_model_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    for model in ("a", "org/b"):
        (repo / model).mkdir(parents=True)
        (repo / model / GRAPH_FILE).write_text("node {}\n")

    with pytest.raises(InvalidOptionError, match=r"inside the folder of model a\b"):
        check_model_placement(repo, "a/x")
    with pytest.raises(InvalidOptionError, match=r"inside the folder of model a\b"):
        check_model_placement(repo, "a/x/y")
    with pytest.raises(InvalidOptionError, match=r"holds the folder of model org/b\b"):
        check_model_placement(repo, "org")

    for fine in ("a", "org/b", "org/c", "c/d"):  # the same model again, siblings, new folders
        check_model_placement(repo, fine)


def test_cli_refuses_a_nesting_name_in_one_line(
    tmp_path: Path, run_export, xlmr_reranker_source: Path
) -> None:
    repo = tmp_path / "models"
    (repo / "a").mkdir(parents=True)
    (repo / "a" / GRAPH_FILE).write_text("node {}\n")
    (repo / "config.json").write_text('{"mediapipe_config_list": [{"name": "a", "base_path": "a"}]}\n')
    before = {str(p): p.read_bytes() if p.is_file() else b"" for p in repo.rglob("*")}

    result = run_export("rerank", xlmr_reranker_source, repo, model_name="a/rerank/3")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --model_name 'a/rerank/3'"), result.stderr
    assert {str(p): p.read_bytes() if p.is_file() else b"" for p in repo.rglob("*")} == before


# --- config.json behind a symlink (a Kubernetes ConfigMap) -----------------------------------


def test_symlinked_config_json_is_written_through_the_link(tmp_path: Path, monkeypatch) -> None:
    # The shape of a ConfigMap volume: config.json -> ..data/config.json, ..data -> ..<timestamp>
    versioned = tmp_path / "..2026_11_30_12_00_00.123"
    versioned.mkdir()
    (versioned / "config.json").write_text('{"old": true}\n')
    (versioned / "config.json").chmod(0o640)
    (tmp_path / "..data").symlink_to(versioned.name)
    link = tmp_path / "config.json"
    link.symlink_to("..data/config.json")

    synced_folders: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_folders.append(Path(os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_text_atomically(link, '{"new": true}\n')

    assert link.is_symlink() and os.readlink(link) == "..data/config.json"
    assert json.loads(link.read_text()) == {"new": True}
    assert stat.S_IMODE((versioned / "config.json").stat().st_mode) == 0o640  # the file's mode is kept
    assert synced_folders == [versioned]  # the rename is made durable in the folder that holds it
    assert sorted(p.name for p in versioned.iterdir()) == ["config.json"]  # no temp file left
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "..2026_11_30_12_00_00.123",
        "..data",
        "config.json",
    ]


def test_plain_config_json_folder_is_synced(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(os.fstat(fd).st_mode)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_text_atomically(tmp_path / "config.json", "{}\n")
    assert (tmp_path / "config.json").read_text() == "{}\n"
    assert [stat.S_ISDIR(mode) for mode in synced] == [False, True]  # the file, then its folder


# --- the token limit -----------------------------------------------------------------------


def test_sentence_transformers_limit_is_capped_at_the_position_limit(
    tmp_path: Path, xlmr_reranker_source: Path
) -> None:
    folder = tmp_path / "st-model"
    folder.mkdir()
    for item in xlmr_reranker_source.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 1024}))
    resolved = source.resolve_source(str(folder))
    tokenizer = convert_tokenizer.load_hf_tokenizer(resolved)
    st_limit = source.sentence_transformers_max_seq_length(resolved)
    offset = convert_tokenizer.position_offset(resolved)
    assert (st_limit, offset) == (1024, 2)

    # 514 positions (bge-m3, XLM-R): 512 tokens fit, whatever sentence-transformers asks for.
    positions_514 = {**resolved.config, "max_position_embeddings": 514}
    assert convert_tokenizer.max_sequence_length(tokenizer, positions_514, offset, st_limit) == 512
    # The fixture itself has 130 positions: 128 tokens.
    assert convert_tokenizer.max_sequence_length(tokenizer, resolved.config, offset, st_limit) == 128
    # A smaller sentence-transformers limit still wins (it may be below the tokenizer's own).
    assert convert_tokenizer.max_sequence_length(tokenizer, positions_514, offset, 64) == 64
