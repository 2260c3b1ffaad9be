"""The final move: the staged folders renamed into place, then config.json rewritten atomically.

Everything an export produces is first written into a staging folder inside the repository
(same filesystem), then renamed into place at the very end; config.json is rewritten atomically
as the last act. A failed export leaves the repository as it was. The commit runs under the
repository lock and checks again that its version is still free.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from export_models import holdpoints
from export_models.errors import VersionExistsError
from export_models.repository.config_json import config_base_path, merged_config, read_repository_config
from export_models.repository.names import check_model_placement, write_aliases
from export_models.repository.staging import RepositoryPlan, repository_lock
from export_models.repository.versions import model_folder_in_use, taken_versions
from serving.atomic_write import write_text_atomically
from serving.repository.config import is_flat_folder
from serving.repository.layout import GRAPH_FILE, SUBCONFIG_FILE, TOKENIZER_DIR


def _keep_copy(path: Path, copy: Path) -> None:
    """Keep path's current content at copy for undo; path itself never disappears."""
    try:
        os.link(path, copy)
    except OSError:  # filesystems without hard links
        shutil.copy2(path, copy)


def version_at_commit(plan: RepositoryPlan) -> int:
    """The version to write now, under the repository lock.

    Another export may have written the planned version since it was chosen: then a default
    version moves to the next free number, and an explicit --version is refused unless
    --overwrite_models allows replacing it.
    """
    if plan.flat and model_folder_in_use(plan.model_dir) and not plan.overwrite:
        raise VersionExistsError(
            f"{plan.model_name} was written by another export while this one ran: pass --overwrite_models "
            "to replace it"
        )
    taken = taken_versions(plan.model_dir, plan.task)
    if plan.replaces_version or plan.version not in taken:
        return plan.version
    if plan.requested_version is None:
        return max(taken) + 1
    if plan.overwrite:
        return plan.version
    raise VersionExistsError(
        f"version {plan.version} of {plan.model_name} was written by another export while this one ran: "
        "pass --overwrite_models to replace it, or leave out --version to add the next one"
    )


def commit(plan: RepositoryPlan) -> int:
    """Move the staged version folders, graph and subconfig into place, then update config.json.

    Runs under the repository lock and returns the version written. Each move is a rename on
    the same filesystem. If any of them fails, the ones already done are undone, so the
    repository is left as it was.
    """
    with repository_lock(plan.repository, plan.config_path):
        check_model_placement(plan.repository, plan.model_name)
        version = version_at_commit(plan)
        _move_into_place(plan, version)
    return version


def _make_folders(folder: Path, undo: list[Callable[[], None]]) -> None:
    """mkdir -p, with an undo action removing each folder it created (a new model's folders)."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):  # undo runs backwards: the deepest folder goes first
        undo.append(lambda created=created: created.rmdir())


def _move_into_place(plan: RepositoryPlan, version: int) -> None:
    undo: list[Callable[[], None]] = []
    try:
        model_dir = plan.model_dir
        if model_folder_in_use(model_dir) and (plan.flat or is_flat_folder(model_dir)):
            # One form replaces the other, or a flat folder its predecessor: the old folder goes
            # aside (back on failure). The server sees the model missing for that moment and keeps
            # serving what it loaded.
            aside = plan.staging / "replaced-model"
            model_dir.rename(aside)
            undo.append(lambda: aside.rename(model_dir))
        if plan.flat:
            _make_folders(model_dir.parent, undo)
            if model_dir.exists():  # an empty folder
                model_dir.rmdir()
            plan.staged_model_dir.rename(model_dir)
            undo.append(lambda: model_dir.rename(plan.staged_model_dir))
        else:
            _move_version_into_place(plan, version, undo)
        existing = read_repository_config(plan.config_path)
        holdpoints.hold("config")
        config = merged_config(
            existing, plan.model_name, config_base_path(plan.config_path, model_dir), plan.graph_format
        )
        write_text_atomically(plan.config_path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        if plan.aliases is not None:
            write_aliases(plan.config_path, plan.model_name, plan.aliases)
    except BaseException:
        for action in reversed(undo):
            with contextlib.suppress(OSError):
                action()
        raise


def _move_version_into_place(plan: RepositoryPlan, version: int, undo: list[Callable[[], None]]) -> None:
    """The legacy form: the version folders, subconfig.json and graph.pbtxt."""
    model_dir = plan.model_dir
    # The tokenizer first: a version becomes servable when its model folder appears.
    for staged_folder, subdir in (
        (plan.staged_tokenizer_version, TOKENIZER_DIR),
        (plan.staged_model_version, plan.task.model_dir),
    ):
        final = model_dir / subdir / str(version)
        _make_folders(final.parent, undo)
        if final.exists():
            replaced = plan.staging / f"replaced-{subdir}"
            final.rename(replaced)
            undo.append(lambda replaced=replaced, final=final: replaced.rename(final))
        staged_folder.rename(final)
        undo.append(lambda staged_folder=staged_folder, final=final: final.rename(staged_folder))
    for name in (SUBCONFIG_FILE, GRAPH_FILE):
        final = model_dir / name
        if final.exists():
            kept = plan.staging / f"replaced-{name}"
            _keep_copy(final, kept)
            undo.append(lambda kept=kept, final=final: os.replace(kept, final))
        else:
            undo.append(lambda final=final: final.unlink())
        os.replace(plan.staged_model_dir / name, final)
