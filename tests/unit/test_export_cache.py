"""The session exports' cache across test runs (tests/support/export_cache.py).

`export` here writes a small repository and counts its calls: what is under test is when the cache
exports, reuses, and what it leaves on disk, not the export itself.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.support import export_cache


class CountingExport:
    def __init__(self, fail: bool = False, seconds: float = 0.0) -> None:
        self.calls = 0
        self.fail = fail
        self.seconds = seconds

    def __call__(self, repo: Path) -> None:
        self.calls += 1
        time.sleep(self.seconds)
        (repo / "model").mkdir(parents=True)
        (repo / "model" / "model.xml").write_text(f"export {self.calls}")
        if self.fail:
            raise RuntimeError("the export failed")


def complete(repo: Path) -> bool:
    return (repo / "model" / "model.xml").is_file()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(export_cache.EXPORT_CACHE_ENV, str(folder))
    return folder


def test_an_export_runs_once_and_is_copied_to_every_session(cache: Path, tmp_path: Path):
    export = CountingExport()
    assert not export_cache.cached_repository("xlmr-fp32", "k1", tmp_path / "a", export, complete)
    assert export_cache.cached_repository("xlmr-fp32", "k1", tmp_path / "b", export, complete)
    assert export.calls == 1
    for session in ("a", "b"):
        assert (tmp_path / session / "model" / "model.xml").read_text() == "export 1"
    (tmp_path / "a" / "model" / "model.xml").write_text("a session's edit")  # a copy: the entry is intact
    assert (cache / "xlmr-fp32-k1" / "model" / "model.xml").read_text() == "export 1"
    assert export_cache.cached_repository("xlmr-fp32", "k2", tmp_path / "c", export, complete) is False
    assert export.calls == 2  # another key: exported again


def test_a_failed_export_leaves_no_entry(cache: Path, tmp_path: Path):
    with pytest.raises(RuntimeError, match="the export failed"):
        export_cache.cached_repository("xlmr-fp32", "k1", tmp_path / "a", CountingExport(fail=True), complete)
    assert [path.name for path in cache.iterdir() if not path.name.endswith(".lock")] == []
    export = CountingExport()
    export_cache.cached_repository("xlmr-fp32", "k1", tmp_path / "b", export, complete)
    assert export.calls == 1


def test_an_incomplete_entry_is_made_again(cache: Path, tmp_path: Path):
    (cache / "xlmr-fp32-k1" / "model").mkdir(parents=True)  # say, a copy that was cut short
    export = CountingExport()
    export_cache.cached_repository("xlmr-fp32", "k1", tmp_path / "a", export, complete)
    assert export.calls == 1 and complete(tmp_path / "a")


def test_sessions_at_the_same_time_export_once(cache: Path, tmp_path: Path):
    export = CountingExport(seconds=0.3)
    threads = [
        threading.Thread(
            target=export_cache.cached_repository,
            args=("xlmr-fp32", "k1", tmp_path / f"session{i}", export, complete),
        )
        for i in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert export.calls == 1
    assert all(complete(tmp_path / f"session{i}") for i in range(3))


def test_off_exports_every_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(export_cache.EXPORT_CACHE_ENV, "off")
    export = CountingExport()
    for session in ("a", "b"):
        assert not export_cache.cached_repository("xlmr-fp32", "k1", tmp_path / session, export, complete)
    assert export.calls == 2


def test_the_key_follows_the_options_inputs_and_source_files(tmp_path: Path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text('{"hidden_size": 64}')
    calibration = tmp_path / "calibration.jsonl"
    calibration.write_text('{"query": "q", "documents": ["d"]}\n')
    key = export_cache.export_key(source, ["rerank", "fp32"], [calibration])
    assert export_cache.export_key(source, ["rerank", "fp32"], [calibration]) == key
    assert export_cache.export_key(source, ["rerank", "int8"], [calibration]) != key
    calibration.write_text('{"query": "q2", "documents": ["d"]}\n')
    assert export_cache.export_key(source, ["rerank", "fp32"], [calibration]) != key
    copy = tmp_path / "copy"  # the same files elsewhere: the source path is recorded in the IR
    shutil.copytree(source, copy)
    assert export_cache.folder_digest(copy) == export_cache.folder_digest(source)
    assert export_cache.export_key(copy, ["rerank", "fp32"], []) != export_cache.export_key(
        source, ["rerank", "fp32"], []
    )


def test_a_changed_source_file_changes_the_key(tmp_path: Path):
    # folder_digest is cached per folder for a session: a fresh folder name per state
    first, second = tmp_path / "one", tmp_path / "two"
    for folder, hidden in ((first, 64), (second, 65)):
        folder.mkdir()
        (folder / "config.json").write_text(f'{{"hidden_size": {hidden}}}')
    assert export_cache.folder_digest(first) != export_cache.folder_digest(second)
    assert export_cache.code_and_versions_digest() == export_cache.code_and_versions_digest()
