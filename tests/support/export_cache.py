"""The session exports, cached across test runs: an unchanged exporter reuses its outputs.

An entry is keyed by a hash of everything that determines the export: the sources of the exporter
and of the serving packages it imports (layout and rt_info, config reading, the pipelines the
accuracy gate runs), the templates, the source model folder (its path and every file), the options (and the
calibration file's content), and the versions of the libraries that convert and quantize. A change
to any of them gives a new key, so that export runs again; nothing is ever invalidated by hand.

Entries are whole repositories (config.json and the model folder). One is written into a staging
folder beside it and renamed into place under a lock per key, so a concurrent session either waits
for it or finds it complete, never half written. Sessions copy an entry before using it.

Tests that check the export itself call the CLI directly (run_export) and never read this cache.
$OVTEXT_EXPORT_CACHE sets the folder (default <repo>/.cache/exports); `off` disables the cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from export_models import locking

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPORT_CACHE_ENV = "OVTEXT_EXPORT_CACHE"
# The checkout's code an export runs: the exporter, its templates, and the serving packages it
# imports (the layout it writes, the config it reads back, the pipelines of the accuracy gate).
EXPORT_CODE = ("export_models", "templates", "serving/repository", "serving/registry", "serving/pipelines")
CONVERSION_PACKAGES = (
    "openvino",
    "openvino-tokenizers",
    "optimum-intel",
    "optimum",
    "nncf",
    "transformers",
    "tokenizers",
    "torch",
)
# Entries of the same export not used for this long are removed when a new one is stored.
STALE_SECONDS = 24 * 3600


def cache_dir() -> Path | None:
    configured = os.environ.get(EXPORT_CACHE_ENV)
    if configured == "off":
        return None
    return Path(configured) if configured else REPO_ROOT / ".cache" / "exports"


def _hash_files(digest: hashlib._Hash, root: Path, files: Iterable[Path]) -> None:
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")


def _files_under(folder: Path) -> list[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc")
    ]


def code_and_versions_digest() -> str:
    """The exporter's code in this checkout and the conversion libraries' versions.

    Read again for every export (a few megabytes): the checkout may change during a session."""
    digest = hashlib.sha256()
    for entry in EXPORT_CODE:
        _hash_files(digest, REPO_ROOT, _files_under(REPO_ROOT / entry))
    for package in CONVERSION_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{package}=={version}\0".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()


@cache
def folder_digest(folder: Path) -> str:
    """Every file of a source model folder: names and contents (once a session: the fixture
    models are built before the session's first export and not changed after)."""
    digest = hashlib.sha256()
    _hash_files(digest, folder, _files_under(folder))
    return digest.hexdigest()


def export_key(source: Path, arguments: list[str], files: Iterable[Path] = ()) -> str:
    """The cache key of one export: `arguments` are its options without paths; `files` are inputs
    named by those options (a calibration file), hashed by content."""
    digest = hashlib.sha256()
    digest.update(code_and_versions_digest().encode())
    digest.update(str(source.resolve()).encode() + b"\0")  # recorded in the IR's rt_info
    digest.update(folder_digest(source.resolve()).encode())
    digest.update(json.dumps(arguments).encode())
    for path in files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def cached_repository(
    name: str, key: str, target: Path, export: Callable[[Path], None], complete: Callable[[Path], bool]
) -> bool:
    """Fill `target` (a new folder) with the repository of this export: a copy of the cache entry,
    made first by `export(folder)` when missing. True when the entry was there already.

    `complete(repo)` tells whether a repository holds the export (an entry that fails it is
    made again)."""
    cache = cache_dir()
    if cache is None:
        export(target)
        return False
    entry = cache / f"{name}-{key}"
    found = complete(entry)
    if not found:
        with locking.exclusive_lock(cache / f".{name}-{key}.lock"):
            found = complete(entry)  # another session may have stored it while this one waited
            if not found:
                staging = Path(tempfile.mkdtemp(prefix=f".{name}-{key}.", dir=cache))
                try:
                    export(staging / "repo")
                    shutil.rmtree(entry, ignore_errors=True)  # an incomplete leftover
                    (staging / "repo").rename(entry)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                _remove_stale(cache, name, keep=entry)
    os.utime(entry)  # marks it used (see STALE_SECONDS)
    shutil.copytree(entry, target)
    return found


def _remove_stale(cache: Path, name: str, keep: Path) -> None:
    """Entries of the same export with another key, unused for STALE_SECONDS (older exporters)."""
    now = time.time()
    for other in cache.glob(f"{name}-*"):
        if other == keep or not other.is_dir() or len(other.name) != len(keep.name):
            continue
        try:
            if now - other.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(other, ignore_errors=True)
        except FileNotFoundError:
            pass
