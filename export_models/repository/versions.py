"""Which version an export writes: the versions present, and the rule for the next one."""

from __future__ import annotations

from pathlib import Path

from export_models.errors import VersionExistsError
from serving.repository.config import is_flat_folder
from serving.repository.layout import TOKENIZER_DIR, GraphFormat, Task
from serving.repository.versions import numbered_folders, scan_versions


def servable_versions(model_dir: Path, task: Task) -> list[int]:
    """Versions v with both tokenizer/v and <task>/v holding model.xml + model.bin."""
    return sorted(scan_versions(model_dir / TOKENIZER_DIR, model_dir / task.model_dir))


def taken_versions(model_dir: Path, task: Task) -> set[int]:
    """Version numbers with a tokenizer/ or <task>/ folder, complete or not."""
    return set(numbered_folders(model_dir / task.model_dir)) | set(
        numbered_folders(model_dir / TOKENIZER_DIR)
    )


def model_folder_in_use(model_dir: Path) -> bool:
    """The folder holds a model already (any form): a graph, a flat IR or version folders."""
    return model_dir.is_dir() and any(model_dir.iterdir())


def choose_version(
    model_dir: Path,
    task: Task,
    model_name: str,
    requested: int | None,
    overwrite: bool,
    graph_format: GraphFormat = GraphFormat.LEGACY,
) -> tuple[int, bool]:
    """(version to write, whether it replaces an existing one).

    Default: 1 for a new model, else the next number after the highest present; with
    --overwrite_models and no --version, the highest present version is replaced. The ov form is
    one flat folder, version 1: an existing one is replaced with --overwrite_models. A folder of
    the other form is replaced as a whole, also only with --overwrite_models.
    """
    other_form = model_folder_in_use(model_dir) and (
        graph_format is GraphFormat.OV or is_flat_folder(model_dir)
    )
    if other_form:
        if not overwrite:
            what = "model" if graph_format is GraphFormat.OV else "model in the ov form"
            raise VersionExistsError(
                f"{model_name} already exists in {model_dir.parent} (a {what}): pass --overwrite_models "
                "to replace the whole folder"
            )
        return requested or 1, True
    taken = taken_versions(model_dir, task)
    if requested is None:
        if overwrite and taken:
            return max(taken), True
        return (max(taken) + 1 if taken else 1), False
    if requested in taken:
        if not overwrite:
            raise VersionExistsError(
                f"version {requested} of {model_name} already exists in {model_dir}: pass --overwrite_models "
                "to replace it, or leave out --version to add the next one"
            )
        return requested, True
    return requested, False
