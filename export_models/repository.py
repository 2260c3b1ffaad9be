"""Writing the model repository: versions, staging, templates, config.json, the final move.

Everything an export produces is first written into a staging folder inside the repository
(same filesystem), then renamed into place at the very end; config.json is rewritten
atomically (temp file + os.replace) as the last act. A failed export leaves the repository
as it was.

Exports may run at the same time. Choosing the version (with creating the staging folder) and
the commit each run under an flock on the repository's lock file; the commit checks again that
its version is still free, and reads, merges and writes config.json under the same lock. Each
export holds an flock on a lock file in its own staging folder while it runs, so staging folders
whose lock can be taken belong to exports that died, and the next export removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from export_models import holdpoints, locking
from export_models.errors import (
    InvalidOptionError,
    InvalidRepositoryConfigError,
    RepositoryNotWritableError,
    VersionExistsError,
)
from serving.files import write_text_atomically
from serving.repository.config import (
    ConfigError,
    aliases_path,
    find_alias_clash,
    is_flat_folder,
    read_aliases,
)
from serving.repository.layout import (
    GRAPH_FILE,
    SUBCONFIG_FILE,
    TOKENIZER_DIR,
    GraphFormat,
    Task,
    model_servable_name,
    tokenizer_servable_name,
)
from serving.repository.versions import numbered_folders, scan_versions

# templates/ at the repository root (a checkout or an editable install); a wheel installs the same
# files as data under <prefix>/share/ovtext/templates (pyproject.toml, tool.setuptools.data-files).
_CHECKOUT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATES_DIR = (
    _CHECKOUT_TEMPLATES
    if _CHECKOUT_TEMPLATES.is_dir()
    else Path(sys.prefix) / "share" / "ovtext" / "templates"
)
GRAPH_TEMPLATES = {GraphFormat.LEGACY: "graph_legacy.pbtxt.j2", GraphFormat.OV: "graph_ov.pbtxt.j2"}
SUBCONFIG_TEMPLATE = "subconfig.json.j2"
STAGING_PREFIX = ".ovtext-export-"
# config.json's list that names a model of each form (as OVMS's export script writes them).
CONFIG_LISTS = {GraphFormat.LEGACY: "mediapipe_config_list", GraphFormat.OV: "model_config_list"}

# Names of the current-form graph node and its side packet, as in OpenVINO Model Server's graphs
# (its servables are found by node name).
_NODE_NAMES = {Task.RERANK: "RerankExecutor", Task.EMBEDDINGS: "EmbeddingsExecutor"}
_SIDE_PACKETS = {
    Task.RERANK: "RERANK_NODE_RESOURCES:rerank_servable",
    Task.EMBEDDINGS: "EMBEDDINGS_NODE_RESOURCES:embeddings_servable",
}


# --- versions ----------------------------------------------------------------------------


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


# A write that failed while the disk has less than this free is taken to have filled it up.
FULL_DISK_BYTES = 1 << 20


def disk_full_reason(folder: Path) -> str | None:
    """'no space left ...' when folder's filesystem is (almost) full, else None (after a failed write)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= FULL_DISK_BYTES:
        return None
    return f"no space left on the device ({free // 1024} KiB free)"


# --- locks, plan and staging ---------------------------------------------------------------

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


def _check_writable_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RepositoryNotWritableError(
            f"cannot create {what} {folder}: {error.strerror or error}"
        ) from error
    if not folder.is_dir():
        raise RepositoryNotWritableError(f"{what} {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RepositoryNotWritableError(f"{what} {folder} is not writable")


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
    _check_writable_folder(repository, "model repository")
    _check_writable_folder(config_path.parent, "folder of config.json")
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


# --- rendering ---------------------------------------------------------------------------


def pbtxt_string(value: str) -> str:
    """A protobuf text format string literal."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # protobuf text and JSON, not HTML; JSON strings go through tojson
    )
    environment.filters["pbtxt"] = pbtxt_string
    return environment


def render_graph(
    graph_format: GraphFormat,
    model_name: str,
    task: Task,
    node_options: dict[str, Any],
    target_device: str = "CPU",
    plugin_config: dict[str, str] | None = None,
) -> str:
    """graph.pbtxt of either form (templates/graph_legacy.pbtxt.j2, graph_ov.pbtxt.j2)."""
    return (
        _templates()
        .get_template(GRAPH_TEMPLATES[graph_format])
        .render(
            task=task.value,
            calculator=task.legacy_calculator if graph_format is GraphFormat.LEGACY else task.calculator,
            session_tag=task.session_tag,
            tokenizer_servable=tokenizer_servable_name(model_name),
            model_servable=model_servable_name(model_name, task),
            node_name=_NODE_NAMES[task],
            side_packet=_SIDE_PACKETS[task],
            target_device=target_device,
            plugin_config_json=json.dumps(plugin_config or {}),
            **node_options,
        )
    )


def render_subconfig(model_name: str, task: Task, target_device: str, plugin_config: dict[str, str]) -> str:
    """subconfig.json: the tokenizer servable (CPU) and the rerank/embeddings servable."""
    text = (
        _templates()
        .get_template(SUBCONFIG_TEMPLATE)
        .render(
            tokenizer_servable=tokenizer_servable_name(model_name),
            tokenizer_dir=TOKENIZER_DIR,
            model_servable=model_servable_name(model_name, task),
            model_dir=task.model_dir,
            target_device=target_device,
            plugin_config=plugin_config,
        )
    )
    json.loads(text)  # a template bug must fail here, not in the server
    return text


# --- config.json -------------------------------------------------------------------------


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


# --- the final move ----------------------------------------------------------------------


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
