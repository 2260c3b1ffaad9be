"""What a model may be called: the model name, its aliases, and where its folder may go."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from export_models.errors import InvalidOptionError, InvalidRepositoryConfigError
from export_models.repository.config_json import configured_names, read_repository_config
from serving.atomic_write import write_text_atomically
from serving.repository.config import ConfigError, aliases_path, find_alias_clash, read_aliases
from serving.repository.layout import GRAPH_FILE, TOKENIZER_DIR, Task

# Folder names the layout gives a meaning inside a model folder: a model name part spelled like one
# would put that model inside another model's layout (a/rerank/3 is version 3 of a's reranker).
LAYOUT_NAMES = frozenset({TOKENIZER_DIR, *(task.model_dir for task in Task)})


def validate_model_name(model_name: str) -> None:
    """A model name is a relative path of plain parts (it may contain '/', e.g. BAAI/bge-reranker-large)."""
    parts = PurePosixPath(model_name).parts
    if (
        not model_name.strip()
        or model_name.startswith("/")
        or "\\" in model_name
        or any(part in (".", "..") or part.startswith(".") for part in parts)
        or any(ch in model_name for ch in "\n\r\t\"'")
    ):
        raise InvalidOptionError(
            f"--model_name {model_name!r} cannot name a folder in the repository: use parts like org/name "
            "without '..', quotes or a leading '/' or '.'"
        )
    clashing = [part for part in parts if part in LAYOUT_NAMES or part.isdigit()]
    if clashing:
        raise InvalidOptionError(
            f"--model_name {model_name!r} has a part named {clashing[0]!r}, which the repository layout "
            f"uses inside model folders ({', '.join(sorted(LAYOUT_NAMES))} and version numbers): rename it"
        )


def validate_aliases(model_name: str, aliases: tuple[str, ...]) -> tuple[str, ...]:
    """--alias values: printable names without spaces; the model's own name and repeats dropped."""
    for alias in aliases:
        if not alias or not alias.isprintable() or any(ch.isspace() for ch in alias):
            raise InvalidOptionError(f"--alias {alias!r}: an alias is a non-empty name without spaces")
    return tuple(dict.fromkeys(alias for alias in aliases if alias != model_name))


def _alias_table(config_path: Path) -> dict[str, tuple[str, ...]]:
    try:
        return read_aliases(config_path)
    except ConfigError as error:
        raise InvalidRepositoryConfigError(f"{error}: fix or remove it") from error


def check_alias_clashes(config_path: Path, model_name: str, aliases: tuple[str, ...]) -> None:
    """An alias may not be another model's name or alias (the server refuses that repository)."""
    names = [*configured_names(read_repository_config(config_path)), model_name]
    table = _alias_table(config_path) | {model_name: aliases}
    clash = find_alias_clash(list(dict.fromkeys(names)), table)
    if clash:
        raise InvalidOptionError(f"--alias: {clash}")


def write_aliases(config_path: Path, model_name: str, aliases: tuple[str, ...]) -> None:
    """Set the model's aliases in aliases.json (the file goes when no model has any)."""
    table = _alias_table(config_path) | {model_name: aliases}
    table = {name: list(values) for name, values in table.items() if values}
    path = aliases_path(config_path)
    if table:
        write_text_atomically(path, json.dumps({"aliases": table}, indent=2, ensure_ascii=False) + "\n")
    else:
        path.unlink(missing_ok=True)


def check_model_placement(repository: Path, model_name: str) -> None:
    """Refuse a model folder inside another model's folder, or holding one (its graph.pbtxt says so)."""
    model_dir = repository / model_name
    for enclosing in model_dir.relative_to(repository).parents:
        if enclosing != Path(".") and (repository / enclosing / GRAPH_FILE).is_file():
            raise InvalidOptionError(
                f"--model_name {model_name!r} would put its folder inside the folder of model "
                f"{enclosing.as_posix()} in {repository}: choose a name that is not below another model's"
            )
    if model_dir.is_dir():
        for folder, subfolders, files in os.walk(model_dir):
            subfolders.sort()
            if GRAPH_FILE in files and Path(folder) != model_dir:
                inner = Path(folder).relative_to(repository).as_posix()
                raise InvalidOptionError(
                    f"--model_name {model_name!r} names a folder that holds the folder of model {inner} "
                    f"in {repository}: choose a name that is not above another model's"
                )
