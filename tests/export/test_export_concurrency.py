"""Exports running at the same time into one repository: nothing is lost, every version is whole.

Three real exports (the CLI, the tiny XLM-R) start together: two of model "tiny" and one of
model "other". The export's test hook (export_models/holdpoints.py) holds them where a race
would hurt: first where all three have picked their version and converted and none has
committed (both "tiny" exports picked version 1), then in the commit, where config.json has been
read and not yet written. Without a lock all three get there and the last write drops the other
entries; with it, the others wait for the lock, so the test lets the first one go on after a
while (one waiting export is all it will see).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import openvino as ov
import pytest

from export_models.errors import VersionExistsError
from export_models.repository import plan_export, servable_versions
from export_models.repository.commit import version_at_commit
from serving.pipelines.batching import BatchPolicy
from serving.registry.loader import LoadError, load_version
from serving.repository.config import read_config, read_servable_spec
from serving.repository.layout import TOKENIZER_DIR, Task
from serving.repository.versions import scan_versions

from .export_process import export_ids, release, staging_folders, start_export, wait_until

COMMIT_STEP = "step-7"
OTHER_ENTRY = {"name": "someone/else", "base_path": "/elsewhere"}


@dataclass(frozen=True)
class Race:
    repo: Path
    stdout: dict[str, list[str]]  # model name -> what its exports printed


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory, xlmr_reranker_source: Path) -> Race:
    work = tmp_path_factory.mktemp("race")
    repo, hold = work / "models", work / "hold"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"mediapipe_config_list": [OTHER_ENTRY], "keep": 1}))
    points = (COMMIT_STEP, "config")
    names = ("tiny", "tiny", "other")
    exports = [
        start_export(xlmr_reranker_source, repo, name, work / f"log{i}", hold, points)
        for i, name in enumerate(names)
    ]
    wait_until(lambda: all(e.waiting_at(COMMIT_STEP) for e in exports), exports)
    release(hold, COMMIT_STEP)
    wait_until(lambda: any(e.waiting_at("config") for e in exports), exports)
    with contextlib.suppress(TimeoutError):  # the others wait for the repository lock
        wait_until(lambda: all(e.waiting_at("config") for e in exports), exports, timeout=3)
    release(hold, "config")
    stdout: dict[str, list[str]] = {name: [] for name in names}
    for name, export in zip(names, exports, strict=True):
        result = export.finish()
        assert result.returncode == 0, result.stderr
        stdout[name].append(result.stdout)
    return Race(repo, stdout)


@pytest.mark.slow  # the three held exports: `make check`
def test_same_model_exported_twice_at_once_gets_versions_1_and_2(race: Race) -> None:
    model_dir = race.repo / "tiny"
    assert servable_versions(model_dir, Task.RERANK) == [1, 2]
    reported = sorted(int(out.split("Exported tiny version ")[1].split()[0]) for out in race.stdout["tiny"])
    assert reported == [1, 2]
    ids = {version: export_ids(model_dir, Task.RERANK, version) for version in (1, 2)}
    for tokenizer_id, model_id in ids.values():
        assert tokenizer_id is not None and tokenizer_id == model_id  # both IRs from one export
    assert ids[1] != ids[2]
    assert staging_folders(race.repo) == []


@pytest.mark.slow  # the three held exports: `make check`
def test_models_exported_at_once_all_stay_in_config_json(race: Race) -> None:
    config = json.loads((race.repo / "config.json").read_text())
    first, *added = config["mediapipe_config_list"]  # in commit order after the entry that was there
    assert first == OTHER_ENTRY
    assert sorted(added, key=lambda e: e["name"]) == [
        {"name": "other", "base_path": "other"},
        {"name": "tiny", "base_path": "tiny"},
    ]
    assert config["keep"] == 1
    assert servable_versions(race.repo / "other", Task.RERANK) == [1]
    tokenizer_id, model_id = export_ids(race.repo / "other", Task.RERANK, 1)
    assert tokenizer_id is not None and tokenizer_id == model_id


@pytest.mark.slow  # the three held exports: `make check`
def test_loader_refuses_a_version_mixed_from_two_exports(race: Race) -> None:
    """The tokenizer of one export beside the model of another is not served."""
    mixed = race.repo.parent / "mixed"
    shutil.copytree(race.repo, mixed)
    model_dir = mixed / "tiny"
    shutil.copytree(model_dir / TOKENIZER_DIR / "1", model_dir / TOKENIZER_DIR / "3")
    shutil.copytree(model_dir / "rerank" / "2", model_dir / "rerank" / "3")
    (entry,) = [entry for entry in read_config(mixed / "config.json") if entry.name == "tiny"]
    spec = read_servable_spec(entry)
    versions = scan_versions(spec.tokenizer.base_path, spec.model.base_path)
    core = ov.Core()
    servable = load_version(core, spec, versions[2], BatchPolicy())  # a whole version loads
    servable.close()
    with pytest.raises(LoadError, match="tokenizer and the model come from different exports"):
        load_version(core, spec, versions[3], BatchPolicy())


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
