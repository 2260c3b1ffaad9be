"""Test repositories assembled from the session's exports, and the edits an operator would make.

Option variants (`--max_allowed_chunks 3`, `--truncate`, pooling, `--skip_normalize`,
`--max_doc_length`) are copies of an export whose graph.pbtxt node options are rewritten: the
server reads them from there (serving/repository/config.py, read_graph), so a served variant is
what the export with that flag would serve. tests/export proves each flag reaches graph.pbtxt.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from serving.atomic_write import write_text_atomically
from serving.repository.config import read_graph
from serving.repository.layout import CONFIG_FILE, GRAPH_FILE, SUBCONFIG_FILE, TOKENIZER_DIR

from .exports import Exported


def write_config(repo: Path, names: list[str], base_paths: Mapping[str, str] | None = None) -> Path:
    """config.json as the export writes it (OVMS mediapipe_config_list); returns its path."""
    base_paths = base_paths or {}
    entries = [{"name": name, "base_path": base_paths.get(name, name)} for name in names]
    config = {"model_config_list": [], "mediapipe_config_list": entries}
    write_text_atomically(repo / CONFIG_FILE, json.dumps(config, indent=2))
    return repo / CONFIG_FILE


def copy_model(exported: Exported, repo: Path, name: str | None = None) -> Path:
    """Copy an exported model folder into `repo` as `name` (default: its own); the new folder."""
    target = repo / (name or exported.model_name)
    shutil.copytree(exported.model_dir, target)
    return target


def assemble_repo(root: Path, models: Mapping[str, Exported]) -> Path:
    """A repository of copies, {served name: export}; returns config.json."""
    root.mkdir(parents=True, exist_ok=True)
    for name, exported in models.items():
        copy_model(exported, root, name)
    return write_config(root, list(models))


def _pbtxt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


# The opening line of the rerank or embeddings node's options, in either graph form.
_CALCULATOR_OPTIONS = re.compile(
    r"^(\s*)\[type\.googleapis\.com\s*/\s*mediapipe\.(?:Rerank|Embeddings)Calculator(?:OV)?Options\]:?\s*\{\s*$",
    re.MULTILINE,
)


def set_graph_options(model_folder: Path, **options: Any) -> None:
    """Rewrite node options of graph.pbtxt; one the graph lacks (OVMS's legacy message has no
    max_doc_length, pooling or truncate: the export keeps them in runtime info) is added to the
    node's options, where this server reads it first."""
    path = model_folder / GRAPH_FILE
    text = path.read_text(encoding="utf-8")
    for key, value in options.items():
        line = f"{key}: {_pbtxt_value(value)}"
        text, count = re.subn(rf"^(\s*){key}:\s*\S+\s*$", rf"\g<1>{line}", text, flags=re.MULTILINE)
        if count == 0:
            text, count = _CALCULATOR_OPTIONS.subn(rf"\g<0>\n\g<1>  {line}", text, count=1)
        if count != 1:
            raise ValueError(f"{path}: no single '{key}:' line or options block to rewrite")
    write_text_atomically(path, text)
    _, read_back = read_graph(path)  # the server's own reader sees the new values
    for key, value in options.items():
        assert getattr(read_back, key) == value, (key, getattr(read_back, key), value)


def edit_subconfig(
    model_folder: Path, change: Callable[[dict[str, Any]], None], tokenizer: bool = False
) -> None:
    """Apply `change` to the model entry's config in subconfig.json (also the tokenizer's if asked)."""
    path = model_folder / SUBCONFIG_FILE
    subconfig = json.loads(path.read_text(encoding="utf-8"))
    for item in subconfig["model_config_list"]:
        if tokenizer or item["config"]["base_path"] != TOKENIZER_DIR:
            change(item["config"])
    write_text_atomically(path, json.dumps(subconfig, indent=2))


def set_device(model_folder: Path, device: str) -> None:
    """subconfig.json's target_device of the model (the tokenizer always runs on CPU)."""
    edit_subconfig(model_folder, lambda config: config.update(target_device=device))


def set_version_policy(model_folder: Path, policy: dict[str, Any]) -> None:
    """model_version_policy of both entries, e.g. {"specific": {"versions": [1, 2]}} or {"all": {}}."""
    edit_subconfig(model_folder, lambda config: config.update(model_version_policy=policy), tokenizer=True)


def copy_version_in(source: Exported, target_model: Path, version: int) -> None:
    """Copy version 1 of `source` into `target_model` as `version`, each folder renamed into place
    only when complete (as an operator's `cp -r` then `mv` would)."""
    for kind, folder in zip((TOKENIZER_DIR, source.task.model_dir), source.version_dirs(1), strict=True):
        incoming = target_model / kind / f".incoming-{version}"
        shutil.copytree(folder, incoming)
        incoming.rename(target_model / kind / str(version))


def remove_version(model_folder: Path, version: int, task_dir: str) -> None:
    """Remove version `version` as one rename per folder (a server never sees it half deleted)."""
    for kind in (TOKENIZER_DIR, task_dir):
        folder = model_folder / kind / str(version)
        gone = folder.with_name(f".removed-{version}")
        os.rename(folder, gone)
        shutil.rmtree(gone)
