"""config.json as the export reads and merges it: one model's entry added or replaced, all else kept."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from export_models.errors import InvalidRepositoryConfigError
from serving.repository.layout import GraphFormat

# config.json's list that names a model of each form (as OVMS's export script writes them).
CONFIG_LISTS = {GraphFormat.LEGACY: "mediapipe_config_list", GraphFormat.OV: "model_config_list"}


def read_repository_config(config_path: Path) -> dict[str, Any] | None:
    """The existing config.json (None when missing), checked to be a repository config."""
    if not config_path.exists():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidRepositoryConfigError(f"cannot read {config_path}: {error}") from error
    except json.JSONDecodeError as error:
        raise InvalidRepositoryConfigError(
            f"{config_path} is not valid JSON ({error}): fix or remove it"
        ) from error
    if not isinstance(config, dict) or not isinstance(config.get("mediapipe_config_list", []), list):
        raise InvalidRepositoryConfigError(
            f"{config_path} is not a repository config (an object whose mediapipe_config_list is a list)"
        )
    return config


def config_base_path(config_path: Path, model_dir: Path) -> str:
    """base_path of the model's entry: relative to config.json's folder, '/'-separated."""
    return Path(os.path.relpath(model_dir, config_path.parent)).as_posix()


def configured_names(config: dict[str, Any] | None) -> list[str]:
    """The names of config.json's entries, in both lists."""
    names = (_entry_name(e, name) for name in CONFIG_LISTS.values() for e in (config or {}).get(name, []))
    return [name for name in names if isinstance(name, str)]


def _entry_name(entry: Any, list_name: str) -> Any:
    if not isinstance(entry, dict):
        return None
    if list_name == "model_config_list":
        inner = entry.get("config")
        return inner.get("name") if isinstance(inner, dict) else None
    return entry.get("name")


def merged_config(
    existing: dict[str, Any] | None,
    model_name: str,
    base_path: str,
    graph_format: GraphFormat = GraphFormat.LEGACY,
) -> dict[str, Any]:
    """existing with this model's entry added or replaced in place; all else kept.

    The legacy form goes into mediapipe_config_list as {"name", "base_path"}, the ov form into
    model_config_list as {"config": {"name", "base_path"}} (OVMS reads a graph there from 2025.1);
    an entry of the model in the other list is removed.
    """
    config: dict[str, Any] = (
        dict(existing) if existing else {"model_config_list": [], "mediapipe_config_list": []}
    )
    target = CONFIG_LISTS[graph_format]
    fields = {"name": model_name, "base_path": base_path}
    for list_name in CONFIG_LISTS.values():
        if list_name not in config and list_name != target:
            continue
        entries = list(config.get(list_name, []))
        positions = [i for i, e in enumerate(entries) if _entry_name(e, list_name) == model_name]
        if list_name == target:
            entry = {"config": fields} if list_name == "model_config_list" else fields
            if positions:
                entries[positions[0]] = entry
            else:
                entries.append(entry)
            positions = positions[1:]  # no duplicates survive
        entries = [e for i, e in enumerate(entries) if i not in positions]
        config[list_name] = entries
    return config
