"""Read a model repository: config.json -> graph entries -> graph.pbtxt + subconfig.json -> ServableSpec.

Everything here is plain file reading and validation; nothing is compiled. Errors are raised
as ConfigError with a message that names the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from serving.repository import layout, pbtxt
from serving.repository.layout import Pooling, Task


class ConfigError(ValueError):
    """A configuration file is missing or wrong; the message names the file."""


@dataclass(frozen=True)
class VersionPolicy:
    """OVMS model_version_policy: latest N, specific versions, or all."""

    kind: str = "latest"  # latest | specific | all
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: set[int] | list[int]) -> list[int]:
        """The versions to serve out of those on disk, highest first."""
        ordered = sorted(set(available), reverse=True)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[: self.num_versions]

    @classmethod
    def parse(cls, raw: Any, where: str) -> VersionPolicy:
        if raw is None:
            return cls()
        if not isinstance(raw, dict) or len(raw) != 1:
            raise ConfigError(f"{where}: model_version_policy must have one key: latest, specific or all")
        ((kind, body),) = raw.items()
        body = body or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: model_version_policy.{kind} must be an object")
        if kind == "latest":
            num = body.get("num_versions", 1)
            if not isinstance(num, int) or isinstance(num, bool) or num < 1:
                raise ConfigError(
                    f"{where}: model_version_policy.latest.num_versions must be an integer >= 1"
                )
            return cls(kind="latest", num_versions=num)
        if kind == "specific":
            versions = body.get("versions")
            if (
                not isinstance(versions, list)
                or not versions
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions)
            ):
                raise ConfigError(
                    f"{where}: model_version_policy.specific.versions must be a list of versions"
                )
            return cls(kind="specific", versions=tuple(sorted(versions)))
        if kind == "all":
            return cls(kind="all")
        raise ConfigError(f"{where}: unknown model_version_policy '{kind}' (latest, specific or all)")


@dataclass(frozen=True)
class ModelSpec:
    """One entry of subconfig.json's model_config_list."""

    name: str
    base_path: Path  # absolute: the folder holding the numbered version folders
    target_device: str = "CPU"
    plugin_config: dict[str, str] = field(default_factory=dict)
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)


@dataclass(frozen=True)
class RerankOptions:
    """RerankCalculatorOVOptions in graph.pbtxt (defaults as in the reference server)."""

    max_allowed_chunks: int = 10000
    max_doc_length: int = 16000


@dataclass(frozen=True)
class EmbeddingsOptions:
    """EmbeddingsCalculatorOVOptions in graph.pbtxt (defaults as in the reference server)."""

    pooling: Pooling = Pooling.CLS
    normalize_embeddings: bool = True
    truncate: bool = False


@dataclass(frozen=True)
class GraphEntry:
    """One mediapipe_config_list entry of config.json."""

    name: str
    base_path: Path  # absolute model folder
    graph_path: Path
    subconfig_path: Path


@dataclass(frozen=True)
class ServableSpec:
    """Everything needed to load one servable model, read from its folder."""

    name: str
    task: Task
    options: RerankOptions | EmbeddingsOptions
    tokenizer: ModelSpec
    model: ModelSpec


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: invalid JSON: {err}") from err
    except RecursionError as err:
        raise ConfigError(f"{path}: JSON nested too deeply") from err


def _resolve(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (base / path)


def read_config(config_path: Path) -> list[GraphEntry]:
    """The graph entries of config.json (base paths resolved against its folder)."""
    raw = _read_json(config_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a JSON object")
    entries_raw = raw.get("mediapipe_config_list", [])
    if not isinstance(entries_raw, list):
        raise ConfigError(f"{config_path}: mediapipe_config_list must be a list")
    root = config_path.parent
    entries: list[GraphEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(entries_raw):
        where = f"{config_path}: mediapipe_config_list[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{where}: needs a non-empty string 'name'")
        name = item["name"]
        if name in seen:
            raise ConfigError(f"{where}: duplicate name '{name}'")
        seen.add(name)
        base_value = item.get("base_path", name)
        if not isinstance(base_value, str) or not base_value:
            raise ConfigError(f"{where}: base_path must be a non-empty string")
        base_path = _resolve(root, base_value)
        graph_value = item.get("graph_path", layout.GRAPH_FILE)
        subconfig_value = item.get("subconfig", layout.SUBCONFIG_FILE)
        if not isinstance(graph_value, str) or not isinstance(subconfig_value, str):
            raise ConfigError(f"{where}: graph_path and subconfig must be strings")
        entries.append(
            GraphEntry(
                name=name,
                base_path=base_path,
                graph_path=_resolve(base_path, graph_value),
                subconfig_path=_resolve(base_path, subconfig_value),
            )
        )
    return entries


def _graph_node(graph: pbtxt.Message, path: Path) -> tuple[Task, pbtxt.Message]:
    calculators = {task.calculator: task for task in Task}
    for node in pbtxt.all_values(graph, "node"):
        if isinstance(node, dict) and node.get("calculator") in calculators:
            return calculators[node["calculator"]], node
    raise ConfigError(f"{path}: no node with calculator {' or '.join(calculators)}")


def _node_options(node: pbtxt.Message, suffix: str) -> pbtxt.Message:
    for options in pbtxt.all_values(node, "node_options"):
        if not isinstance(options, dict):
            continue
        for key, value in options.items():
            if key.endswith(suffix + "]") and isinstance(value, dict):
                return value
    return {}


def _int_option(options: pbtxt.Message, key: str, default: int, path: Path) -> int:
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{path}: {key} must be an integer >= 1, got {value!r}")
    return value


def _bool_option(options: pbtxt.Message, key: str, default: bool, path: Path) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def read_graph(path: Path) -> tuple[Task, RerankOptions | EmbeddingsOptions]:
    text = _read_text(path)
    try:
        graph = pbtxt.parse(text)
    except pbtxt.PbtxtError as err:
        raise ConfigError(f"{path}: {err}") from err
    except RecursionError as err:
        raise ConfigError(f"{path}: messages nested too deeply") from err
    task, node = _graph_node(graph, path)
    if task is Task.RERANK:
        options = _node_options(node, "RerankCalculatorOVOptions")
        return task, RerankOptions(
            max_allowed_chunks=_int_option(
                options, "max_allowed_chunks", RerankOptions.max_allowed_chunks, path
            ),
            max_doc_length=_int_option(options, "max_doc_length", RerankOptions.max_doc_length, path),
        )
    options = _node_options(node, "EmbeddingsCalculatorOVOptions")
    pooling_value = options.get("pooling", EmbeddingsOptions.pooling.value)
    try:
        pooling = Pooling(pooling_value)
    except ValueError as err:
        choices = ", ".join(p.value for p in Pooling)
        raise ConfigError(f"{path}: pooling must be one of {choices}, got {pooling_value!r}") from err
    return task, EmbeddingsOptions(
        pooling=pooling,
        normalize_embeddings=_bool_option(options, "normalize_embeddings", True, path),
        truncate=_bool_option(options, "truncate", False, path),
    )


def property_strings(properties: dict[Any, Any]) -> dict[str, str]:
    """OpenVINO properties as OpenVINO takes them: strings (JSON numbers and booleans as written)."""
    return {str(k): (str(v).upper() if isinstance(v, bool) else str(v)) for k, v in properties.items()}


def parse_plugin_config(text: str) -> dict[str, str]:
    """An operator's OpenVINO properties given as a JSON object (--plugin_config); ValueError if not."""
    try:
        parsed = json.loads(text)
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(parsed, dict) or not all(
        isinstance(v, str | int | float | bool) for v in parsed.values()
    ):
        raise ValueError("must be a JSON object of properties")
    return property_strings(parsed)


def with_cpu_plugin_config(spec: ServableSpec, overrides: dict[str, str]) -> ServableSpec:
    """`spec` with `overrides` merged over its model's plugin_config when the model runs on CPU
    (the operator's settings win over subconfig.json's, e.g. threads tied to a CPU limit)."""
    if not overrides or spec.model.target_device != "CPU":
        return spec
    plugin_config = {**spec.model.plugin_config, **overrides}
    return replace(spec, model=replace(spec.model, plugin_config=plugin_config))


def _model_spec(raw: Any, model_folder: Path, where: str) -> ModelSpec:
    config = raw.get("config") if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: each model_config_list item needs a 'config' object")
    name, base_path = config.get("name"), config.get("base_path")
    if not isinstance(name, str) or not isinstance(base_path, str) or not base_path:
        raise ConfigError(f"{where}: config needs string 'name' and 'base_path'")
    device = config.get("target_device", "CPU")
    if not isinstance(device, str) or not device:
        raise ConfigError(f"{where}: target_device must be a non-empty string")
    plugin_raw = config.get("plugin_config", {}) or {}
    if not isinstance(plugin_raw, dict):
        raise ConfigError(f"{where}: plugin_config must be an object")
    plugin_config = property_strings(plugin_raw)
    return ModelSpec(
        name=name,
        base_path=_resolve(model_folder, base_path),
        target_device=device,
        plugin_config=plugin_config,
        version_policy=VersionPolicy.parse(config.get("model_version_policy"), f"{where} ({name})"),
    )


def read_subconfig(path: Path, model_folder: Path, task: Task) -> tuple[ModelSpec, ModelSpec]:
    """(tokenizer, model) entries, found by base_path: 'tokenizer' and the task's folder."""
    raw = _read_json(path)
    items = raw.get("model_config_list") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: model_config_list must be a list")
    specs = [_model_spec(item, model_folder, str(path)) for item in items]

    def find(folder: str, name_suffix: str) -> ModelSpec:
        for spec in specs:
            if spec.base_path.name == folder:
                return spec
        for spec in specs:
            if spec.name.endswith(name_suffix):
                return spec
        raise ConfigError(f"{path}: no model_config_list entry with base_path '{folder}'")

    tokenizer = find(layout.TOKENIZER_DIR, "_tokenizer_model")
    model = find(task.model_dir, f"_{task.value}_model")
    return tokenizer, model


def read_servable_spec(entry: GraphEntry) -> ServableSpec:
    task, options = read_graph(entry.graph_path)
    tokenizer, model = read_subconfig(entry.subconfig_path, entry.base_path, task)
    return ServableSpec(name=entry.name, task=task, options=options, tokenizer=tokenizer, model=model)
