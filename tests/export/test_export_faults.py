"""Exports that die, are stopped, or run out of disk: the repository stays as it was.

Real exports (the CLI, the tiny XLM-R, fp32) into copies of a repository that already holds
version 1 of "tiny" and another model's entry in config.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from export_models import locking, repository
from export_models.repository import servable_versions, staging
from export_models.repository.staging import STAGING_LOCK, STAGING_PREFIX
from serving.repository.layout import Task

from .export_process import (
    ExportProcess,
    child_processes,
    command_line,
    process_group_alive,
    release,
    snapshot,
    staging_folders,
    start_export,
    wait_until,
)

OTHER_ENTRY = {"name": "someone/else", "base_path": "someone/else", "custom_key": [1, 2]}
STEPS = 7


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory, run_export, xlmr_reranker_source: Path) -> Path:
    repo = tmp_path_factory.mktemp("faults") / "models"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"mediapipe_config_list": [OTHER_ENTRY], "extra": True}))
    result = run_export("rerank", xlmr_reranker_source, repo, model_name="tiny")
    assert result.returncode == 0, result.stderr
    return repo


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def optimum_child(export: ExportProcess) -> int:
    """The pid of the export's optimum-cli child, once it runs."""
    found: list[int] = []

    def running() -> bool:
        found[:] = [pid for pid in child_processes(export.pid) if "optimum_cli" in command_line(pid)]
        return bool(found)

    wait_until(running, [export])
    return found[0]


def next_export_sweeps(repo: Path) -> list[Path]:
    """What the next export's repository step removes (it runs the sweep under the lock), undone after."""
    leftovers = staging_folders(repo)
    plan = repository.plan_export(repo, repo / "config.json", "tiny", Task.RERANK, None, False)
    plan.discard_staging()
    return [folder for folder in leftovers if not folder.exists()]


# --- SIGKILL ---------------------------------------------------------------------------------


# Every step of a real export, one kill each: `make check`. `make test` keeps the SIGTERM and disk-full ones.
@pytest.mark.slow
def test_sigkill_at_each_step_leaves_the_repository_unchanged(
    template_repo: Path, tmp_path: Path, xlmr_reranker_source: Path, run_export
) -> None:
    """An export killed with SIGKILL at any step leaves only its staging folder; the next one sweeps it.

    One export is held before each step in turn (its "[i/n]" line printed, the step not started)
    and its repository is copied there: the copy is what SIGKILL at that point leaves on disk,
    since nothing else is written in between. At the commit step it is killed for real. A second
    export is killed while its optimum-cli child runs: that child, in its own session, lives on
    and keeps the staging folder's lock, so the folder is not swept until it is gone.
    """
    repo = tmp_path / "models"
    shutil.copytree(template_repo, repo)
    before = snapshot(repo)
    hold = tmp_path / "hold"
    points = tuple(f"step-{step}" for step in range(1, STEPS + 1))
    export = start_export(xlmr_reranker_source, repo, "tiny", tmp_path / "held", hold, points)
    killed_at: dict[int, Path] = {}
    for step in range(1, STEPS + 1):
        wait_until(lambda step=step: export.waiting_at(f"step-{step}"), [export])
        assert f"[{step}/{STEPS}]" in export.stdout()
        if step < STEPS:
            killed_at[step] = tmp_path / f"killed-at-{step}"
            shutil.copytree(repo, killed_at[step], symlinks=True)
            release(hold, f"step-{step}")
    export.process.send_signal(signal.SIGKILL)
    assert export.process.wait(timeout=60) == -signal.SIGKILL

    for step, copy in killed_at.items():
        assert snapshot(copy, skip_staging=True) == before, f"killed at step {step}"
        # Once the repository step (2) has run, the staging folder exists; the next export removes it.
        leftovers = staging_folders(copy)
        assert len(leftovers) == (1 if step > 2 else 0), f"killed at step {step}"
        assert next_export_sweeps(copy) == leftovers, f"killed at step {step}"
        assert staging_folders(copy) == [], f"killed at step {step}"
    assert snapshot(repo, skip_staging=True) == before
    (killed_in_commit_step,) = staging_folders(repo)

    # Killed while optimum-cli converts: the orphaned child keeps the staging folder's lock.
    converting = start_export(xlmr_reranker_source, repo, "tiny", tmp_path / "converting", hold)
    orphan = optimum_child(converting)
    assert not killed_in_commit_step.exists()  # swept by this export's repository step
    converting.process.send_signal(signal.SIGKILL)
    converting.process.wait(timeout=60)
    try:
        assert snapshot(repo, skip_staging=True) == before
        (in_use,) = staging_folders(repo)
        assert next_export_sweeps(repo) == []
        assert staging_folders(repo) == [in_use]  # still used by the orphaned optimum-cli
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan, signal.SIGKILL)
    wait_until(lambda: not process_group_alive(orphan), [], timeout=60)

    # The next export sweeps what is left and succeeds.
    result = run_export("rerank", xlmr_reranker_source, repo, model_name="tiny")
    assert result.returncode == 0, result.stderr
    assert staging_folders(repo) == []
    assert servable_versions(repo / "tiny", Task.RERANK) == [1, 2]
    assert json.loads((repo / "config.json").read_text())["mediapipe_config_list"][0] == OTHER_ENTRY


# --- SIGTERM ---------------------------------------------------------------------------------


def test_sigterm_during_conversion_stops_optimum_and_cleans_up(
    template_repo: Path, tmp_path: Path, xlmr_reranker_source: Path
) -> None:
    repo = tmp_path / "models"
    shutil.copytree(template_repo, repo)
    before = snapshot(repo)
    export = start_export(xlmr_reranker_source, repo, "tiny", tmp_path / "log", tmp_path / "hold")
    child = optimum_child(export)
    assert "[3/7] Converting the model" in export.stdout()
    child_group = os.getpgid(child)
    assert child_group == child != os.getpgid(export.pid)  # optimum-cli leads its own session

    export.process.send_signal(signal.SIGTERM)
    result = export.finish(timeout=120)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "SIGTERM", "repository is unchanged")
    assert not Path(f"/proc/{child}").exists() or "optimum_cli" not in command_line(child)
    assert not process_group_alive(child_group)
    assert snapshot(repo) == before  # no staging folder either


# --- disk full ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 MB tmpfs (tests run as root); skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(disk: Path, leave_bytes: int) -> None:
    """Take all the free space of `disk` but `leave_bytes`."""
    with open(disk / "filler", "wb") as filler:
        os.posix_fallocate(filler.fileno(), 0, shutil.disk_usage(disk).free - leave_bytes)


# What the export writes into its staging folder (tiny XLM-R, fp32): about 730 KB of optimum-cli
# output, then about 720 KB of IRs.
@pytest.mark.parametrize(
    ("free_kib", "where"),
    [(256, "optimum-cli could not export"), (1100, "cannot write the rerank IR")],
    ids=["during-conversion", "writing-irs"],
)
def test_disk_full_fails_in_one_line_and_leaves_nothing(
    small_disk: Path, template_repo: Path, run_export, xlmr_reranker_source: Path, free_kib: int, where: str
) -> None:
    repo = small_disk / "models"
    shutil.copytree(template_repo, repo)
    fill_disk(small_disk, free_kib * 1024)
    before = snapshot(repo)
    result = run_export("rerank", xlmr_reranker_source, repo, model_name="tiny")
    assert result.returncode == 1
    line = assert_one_line_error(result.stderr, where)
    assert "no space left" in line.lower()
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(repo) == before  # config.json byte for byte, and no staging folder


def test_disk_full_at_the_commit_undoes_the_moves(small_disk: Path) -> None:
    """config.json cannot be rewritten: the version folders and files already moved go back."""
    repo = small_disk / "models"
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "graph.pbtxt").write_text("old graph")
    (repo / "config.json").write_text(json.dumps({"mediapipe_config_list": [OTHER_ENTRY]}))
    plan = repository.plan_export(repo, repo / "config.json", "m", Task.RERANK, None, False)
    for folder in (plan.staged_tokenizer_version, plan.staged_model_version):
        folder.mkdir(parents=True)
        (folder / "model.xml").write_text("new")
        (folder / "model.bin").write_text("new")
    (plan.staged_model_dir / "subconfig.json").write_text("new subconfig")
    (plan.staged_model_dir / "graph.pbtxt").write_text("new graph")
    before = snapshot(repo, skip_staging=True)
    fill_disk(small_disk, 0)
    with pytest.raises(OSError, match="No space left"):
        repository.commit(plan)
    plan.discard_staging()
    assert snapshot(repo) == before


def test_sweep_removes_only_staging_folders_whose_lock_is_free(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    folders = {name: repo / f"{STAGING_PREFIX}{name}" for name in ("running", "dead", "unlocked", "nolock")}
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "work").mkdir()
    running = locking.acquire(folders["running"] / STAGING_LOCK)  # an export that is still running
    locking.release(locking.acquire(folders["dead"] / STAGING_LOCK))  # one that held its lock and died
    (folders["unlocked"] / STAGING_LOCK).touch()
    (repo / "tiny").mkdir()  # not a staging folder
    try:
        removed = staging.sweep_abandoned_staging(repo)
        assert sorted(removed) == sorted(folders[name] for name in ("dead", "nolock", "unlocked"))
        assert staging_folders(repo) == [folders["running"]]
        assert (repo / "tiny").is_dir()
    finally:
        locking.release(running)
    assert staging.sweep_abandoned_staging(repo) == [folders["running"]]
