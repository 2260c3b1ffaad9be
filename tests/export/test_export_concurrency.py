"""Exports running at the same time into one repository: nothing is lost, every version is whole.

Real exports (the CLI, the tiny XLM-R), held by the export's test hook (export_models/holdpoints.py)
so that they meet where a race would hurt: both have picked their version and converted, and
neither has committed yet.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import openvino as ov
import pytest

from export_models.errors import VersionExistsError
from export_models.repository import plan_export, servable_versions, version_at_commit
from serving.pipelines.batching import BatchPolicy
from serving.registry.loader import LoadError, load_servable
from serving.repository.config import read_config, read_servable_spec
from serving.repository.layout import TOKENIZER_DIR, Task
from serving.repository.versions import scan_versions

from .export_process import export_ids, release, staging_folders, start_export, wait_until

COMMIT_STEP = "step-7"


@pytest.fixture(scope="module")
def raced_repo(
    tmp_path_factory: pytest.TempPathFactory, xlmr_reranker_source: Path
) -> tuple[Path, list[str]]:
    """Two exports of one model, both held just before their commit, then let go together."""
    work = tmp_path_factory.mktemp("same-model")
    repo, hold = work / "models", work / "hold"
    exports = [
        start_export(xlmr_reranker_source, repo, "tiny", work / f"log{i}", hold, (COMMIT_STEP,))
        for i in (1, 2)
    ]
    wait_until(lambda: all(e.waiting_at(COMMIT_STEP) for e in exports), exports)
    release(hold, COMMIT_STEP)
    results = [e.finish() for e in exports]
    for result in results:
        assert result.returncode == 0, result.stderr
    return repo, [r.stdout for r in results]


def test_same_model_exported_twice_at_once_gets_versions_1_and_2(raced_repo: tuple[Path, list[str]]) -> None:
    repo, outputs = raced_repo
    model_dir = repo / "tiny"
    assert servable_versions(model_dir, Task.RERANK) == [1, 2]
    reported = sorted(int(out.split("Exported tiny version ")[1].split()[0]) for out in outputs)
    assert reported == [1, 2]
    ids = {version: export_ids(model_dir, Task.RERANK, version) for version in (1, 2)}
    for tokenizer_id, model_id in ids.values():
        assert tokenizer_id is not None and tokenizer_id == model_id  # both IRs from one export
    assert ids[1] != ids[2]
    config = json.loads((repo / "config.json").read_text())
    assert config["mediapipe_config_list"] == [{"name": "tiny", "base_path": "tiny"}]
    assert staging_folders(repo) == []


def test_loader_refuses_a_version_mixed_from_two_exports(raced_repo: tuple[Path, list[str]]) -> None:
    """The tokenizer of one export beside the model of another is not served."""
    repo, _ = raced_repo
    mixed = repo.parent / "mixed"
    shutil.copytree(repo, mixed)
    model_dir = mixed / "tiny"
    shutil.copytree(model_dir / TOKENIZER_DIR / "1", model_dir / TOKENIZER_DIR / "3")
    shutil.copytree(model_dir / "rerank" / "2", model_dir / "rerank" / "3")
    (entry,) = read_config(mixed / "config.json")
    spec = read_servable_spec(entry)
    versions = scan_versions(spec.tokenizer.base_path, spec.model.base_path)
    core = ov.Core()
    servable = load_servable(core, spec, versions[2], BatchPolicy())  # a whole version loads
    servable.close()
    with pytest.raises(LoadError, match="tokenizer and the model come from different exports"):
        load_servable(core, spec, versions[3], BatchPolicy())


def test_two_models_exported_at_once_both_stay_in_config_json(
    tmp_path: Path, xlmr_reranker_source: Path
) -> None:
    """config.json is read, merged and written by one export at a time.

    Both exports are held before their commit, then at the point where config.json has been read
    and not yet written. Without a lock both get there and the second write drops the first
    entry; with it, the second export waits for the lock, so the test lets the first go on
    after a while (one waiting export is all it will see).
    """
    repo, hold = tmp_path / "models", tmp_path / "hold"
    repo.mkdir()
    other = {"name": "someone/else", "base_path": "/elsewhere"}
    (repo / "config.json").write_text(json.dumps({"mediapipe_config_list": [other], "keep": 1}))
    points = (COMMIT_STEP, "config")
    exports = [
        start_export(xlmr_reranker_source, repo, name, tmp_path / name, hold, points)
        for name in ("one", "two")
    ]
    wait_until(lambda: all(e.waiting_at(COMMIT_STEP) for e in exports), exports)
    release(hold, COMMIT_STEP)
    wait_until(lambda: any(e.waiting_at("config") for e in exports), exports)
    with contextlib.suppress(TimeoutError):  # the other export waits for the repository lock
        wait_until(lambda: all(e.waiting_at("config") for e in exports), exports, timeout=3)
    release(hold, "config")
    for export in exports:
        result = export.finish()
        assert result.returncode == 0, result.stderr

    config = json.loads((repo / "config.json").read_text())
    assert sorted(e["name"] for e in config["mediapipe_config_list"]) == ["one", "someone/else", "two"]
    assert config["keep"] == 1
    for name in ("one", "two"):
        assert servable_versions(repo / name, Task.RERANK) == [1]
        tokenizer_id, model_id = export_ids(repo / name, Task.RERANK, 1)
        assert tokenizer_id is not None and tokenizer_id == model_id


def test_commit_rechecks_a_version_taken_meanwhile(tmp_path: Path) -> None:
    """Plans made while version 1 was free, committed after another export wrote version 1 (and began 2)."""
    repo = tmp_path / "models"
    plans = {
        "default": plan_export(repo, repo / "config.json", "m", Task.RERANK, None, False),
        "explicit": plan_export(repo, repo / "config.json", "m", Task.RERANK, 1, False),
        "explicit, overwrite": plan_export(repo, repo / "config.json", "m", Task.RERANK, 1, True),
    }
    try:
        assert {plan.version for plan in plans.values()} == {1}
        for folder in ("tokenizer/1", "rerank/1", "rerank/2"):
            (repo / "m" / folder).mkdir(parents=True)
        assert version_at_commit(plans["default"]) == 3  # the next free number
        with pytest.raises(VersionExistsError, match="written by another export while this one ran"):
            version_at_commit(plans["explicit"])
        assert version_at_commit(plans["explicit, overwrite"]) == 1  # replaces it, as allowed
    finally:
        for plan in plans.values():
            plan.discard_staging()
    assert staging_folders(repo) == []
