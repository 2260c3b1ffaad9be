"""Locks, the export's plan and its staging folder.

Exports may run at the same time. Choosing the version (with creating the staging folder) and
the commit each run under an flock on the repository's lock file. Each export holds an flock on a
lock file in its own staging folder while it runs, so staging folders whose lock can be taken
belong to exports that died, and the next export removes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from export_models import locking
from export_models.errors import InvalidRepositoryConfigError, RepositoryNotWritableError
from export_models.repository.config_json import read_repository_config
from export_models.repository.disk import check_writable_folder
from export_models.repository.names import (
    check_alias_clashes,
    check_model_placement,
    validate_aliases,
    validate_model_name,
)
from export_models.repository.versions import choose_version
from serving.repository.layout import TOKENIZER_DIR, GraphFormat, Task

STAGING_PREFIX = ".ovtext-export-"
REPOSITORY_LOCK = ".ovtext-export.lock"  # in the repository (and in config.json's folder)
STAGING_LOCK = "lock"  # in each staging folder, held by the export writing there


@contextlib.contextmanager
def repository_lock(repository: Path, config_path: Path) -> Iterator[None]:
    """One export at a time picks a version, sweeps or commits in this repository and config.json."""
    with contextlib.ExitStack() as locks:
        for folder in sorted({repository, config_path.parent}):  # one order for all: no deadlock
            locks.enter_context(locking.exclusive_lock(folder / REPOSITORY_LOCK))
        yield


def sweep_abandoned_staging(repository: Path) -> list[Path]:
    """Remove the staging folders of exports that died; call it holding the repository lock."""
    removed = []
    for folder in sorted(repository.glob(f"{STAGING_PREFIX}*")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            descriptor = locking.try_acquire(folder / STAGING_LOCK)
        except FileNotFoundError:  # its export died before locking it (both happen under the repository lock)
            descriptor = None
        else:
            if descriptor is None:
                continue  # its export (or that export's optimum-cli, which inherits the lock) is running
        shutil.rmtree(folder, ignore_errors=True)
        if descriptor is not None:
            locking.release(descriptor)
        removed.append(folder)
    return removed


@dataclass(frozen=True)
class RepositoryPlan:
    """Where one export goes, decided before any slow step runs."""

    repository: Path
    config_path: Path
    model_name: str
    task: Task
    version: int  # as planned; the commit may take the next free one (see version_at_commit)
    replaces_version: bool
    requested_version: int | None
    overwrite: bool
    aliases: tuple[str, ...] | None  # --alias values; None: keep the entry's aliases
    staging: Path  # temporary folder inside the repository
    staging_lock: int  # descriptor holding the staging folder's lock
    graph_format: GraphFormat = GraphFormat.LEGACY

    @property
    def model_dir(self) -> Path:
        return self.repository / self.model_name

    @property
    def staged_model_dir(self) -> Path:
        """The model folder as it will be (ov: all of it; legacy: graph, subconfig, new version)."""
        return self.staging / "model"

    @property
    def flat(self) -> bool:
        return self.graph_format is GraphFormat.OV

    @property
    def staged_model_version(self) -> Path:
        """The new version's model IR folder; it gets its number when committed (ov: the flat folder)."""
        return self.staged_model_dir if self.flat else self.staged_model_dir / self.task.model_dir

    @property
    def staged_tokenizer_version(self) -> Path:
        return self.staged_model_dir if self.flat else self.staged_model_dir / TOKENIZER_DIR

    @property
    def work_dir(self) -> Path:
        """Scratch space for intermediate files (optimum's output)."""
        return self.staging / "work"

    def discard_staging(self) -> None:
        """Remove the staging folder, then drop its lock."""
        shutil.rmtree(self.staging, ignore_errors=True)
        locking.release(self.staging_lock)


def plan_export(
    repository: Path,
    config_path: Path,
    model_name: str,
    task: Task,
    requested_version: int | None,
    overwrite: bool,
    *,
    aliases: tuple[str, ...] = (),
    graph_format: GraphFormat = GraphFormat.LEGACY,
) -> RepositoryPlan:
    """Check the repository can take the export, pick the version and create the staging folder.

    Under the repository lock: staging folders of dead exports are swept first.
    """
    validate_model_name(model_name)
    chosen_aliases = validate_aliases(model_name, aliases) if aliases else None
    repository = repository.absolute()
    config_path = config_path.absolute()
    if config_path.is_dir():
        raise InvalidRepositoryConfigError(f"--config_file_path {config_path} is a folder, not a file")
    check_writable_folder(repository, "model repository")
    check_writable_folder(config_path.parent, "folder of config.json")
    with repository_lock(repository, config_path):
        sweep_abandoned_staging(repository)
        read_repository_config(config_path)
        if chosen_aliases is not None:
            check_alias_clashes(config_path, model_name, chosen_aliases)
        check_model_placement(repository, model_name)
        model_dir = repository / model_name
        if model_dir.exists() and not model_dir.is_dir():
            raise RepositoryNotWritableError(f"{model_dir} exists and is not a folder")
        if model_dir.is_dir() and not os.access(model_dir, os.W_OK | os.X_OK):
            raise RepositoryNotWritableError(f"model folder {model_dir} is not writable")
        version, replaces = choose_version(
            model_dir, task, model_name, requested_version, overwrite, graph_format
        )
        try:
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=repository))
        except OSError as error:
            raise RepositoryNotWritableError(
                f"cannot write to the model repository {repository}: {error.strerror or error}"
            ) from error
        staging_lock = locking.acquire(staging / STAGING_LOCK)
    return RepositoryPlan(
        repository=repository,
        config_path=config_path,
        model_name=model_name,
        task=task,
        version=version,
        replaces_version=replaces,
        requested_version=requested_version,
        overwrite=overwrite,
        aliases=chosen_aliases,
        staging=staging,
        staging_lock=staging_lock,
        graph_format=graph_format,
    )
