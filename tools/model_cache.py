"""The on-disk cache of built source models, shared by `make models`, the tests and the benchmark.

Every model is built into a temporary folder beside its cache entry and renamed into place,
so a killed build never leaves a half-written model; a lock file keeps concurrent test
sessions from building the same model twice. The cache folder is <repo>/.cache/fixtures
unless OVTEXT_FIXTURE_CACHE says otherwise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from export_models import locking

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CACHE_ENV = "OVTEXT_FIXTURE_CACHE"


def fixture_cache_dir() -> Path:
    """Where built models are cached: $OVTEXT_FIXTURE_CACHE or <repo>/.cache/fixtures."""
    configured = os.environ.get(FIXTURE_CACHE_ENV)
    return Path(configured) if configured else REPO_ROOT / ".cache" / "fixtures"


def cached_build(entry: str, build: Callable[[Path], None], cache_dir: Path | None) -> Path:
    """Return cache_dir/entry, building it first (into a temp folder, then renamed) if missing."""
    cache = cache_dir or fixture_cache_dir()
    target = cache / entry
    if target.is_dir():
        return target
    with locking.exclusive_lock(cache / f".{entry}.lock"):
        if target.is_dir():  # another process built it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{entry}.", dir=cache))
        try:
            build(staging)
            staging.chmod(0o755)  # mkdtemp creates it private; the cache is shared
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
