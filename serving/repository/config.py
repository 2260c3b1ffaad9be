"""Read a model repository: config.json -> graph entries -> graph.pbtxt + subconfig.json -> ServableSpec.

Everything here is plain file reading and validation; nothing is compiled. Errors are raised
as ConfigError with a message that names the file and the field.

Four kinds of model folder are read (docs/repository.md):
- a legacy OpenVINO Model Server graph (this exporter's --graph_format legacy): session nodes name
  the tokenizer and model servables of subconfig.json, whose folders hold numbered versions;
- a current OVMS graph (--graph_format ov): one RerankCalculatorOV/EmbeddingsCalculatorOV node whose
  models_path is a flat folder (openvino_model.xml, openvino_tokenizer.xml; version 1);
- this project's graphs from before --graph_format: one *CalculatorOV node over subconfig.json;
- a plain `optimum-cli export openvino` folder without any graph (version 1, default settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from serving.repository import layout, pbtxt
from serving.repository.layout import ModelInfo, Pooling, Task
from serving.repository.versions import VersionFiles, numbered_folders, scan_versions


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
class IRSpec:
    """One entry of subconfig.json's model_config_list (or the IR of a flat folder)."""

    name: str
    base_path: Path  # absolute: the folder holding the numbered version folders (flat: the IR's folder)
    target_device: str = "CPU"
    plugin_config: dict[str, str] = field(default_factory=dict)
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    xml_name: str = layout.MODEL_XML  # the IR's file name in a version folder


@dataclass(frozen=True)
class RerankOptions:
    """The serving settings of a reranker (defaults as in the reference server)."""

    max_allowed_chunks: int = 10000
    max_doc_length: int = 16000


@dataclass(frozen=True)
class EmbeddingsOptions:
    """The serving settings of an embedder (defaults as in the reference server)."""

    pooling: Pooling = Pooling.CLS
    normalize_embeddings: bool = True
    truncate: bool = False


@dataclass(frozen=True)
class GraphOptions:
    """What graph.pbtxt's node options say; None where they say nothing (then the version's runtime
    info, else the default decides: resolve_options)."""

    max_allowed_chunks: int | None = None
    max_doc_length: int | None = None  # this project's graphs from before --graph_format
    # OVMS's token limit of one framed sequence: caps the version's own limit.
    max_position_embeddings: int | None = None
    pooling: Pooling | None = None
    normalize_embeddings: bool | None = None
    truncate: bool | None = None


def resolve_options(
    task: Task, graph: GraphOptions, recorded: ModelInfo | None
) -> RerankOptions | EmbeddingsOptions:
    """The settings a version is served with: the graph's, else the export's runtime info, else defaults."""

    def pick(name: str, default: Any) -> Any:
        value = getattr(graph, name)
        if value is None and recorded is not None:
            value = getattr(recorded, name, None)
        return default if value is None else value

    if task is Task.RERANK:
        defaults = RerankOptions()
        return RerankOptions(
            max_allowed_chunks=int(pick("max_allowed_chunks", defaults.max_allowed_chunks)),
            max_doc_length=int(pick("max_doc_length", defaults.max_doc_length)),
        )
    embeddings = EmbeddingsOptions()
    return EmbeddingsOptions(
        pooling=Pooling(pick("pooling", embeddings.pooling)),
        normalize_embeddings=bool(pick("normalize_embeddings", embeddings.normalize_embeddings)),
        truncate=bool(pick("truncate", embeddings.truncate)),
    )


@dataclass(frozen=True)
class GraphEntry:
    """One model of config.json: a mediapipe_config_list entry, or a model_config_list entry whose
    folder holds a graph.pbtxt (OVMS reads those as graphs from 2025.1) or a flat optimum-cli folder."""

    name: str
    base_path: Path  # absolute model folder
    graph_path: Path
    subconfig_path: Path
    aliases: tuple[str, ...] = ()  # other names requests may use (aliases.json beside config.json)
    # A model_config_list entry's own target_device and plugin_config (used for a folder without graph).
    target_device: str = "CPU"
    plugin_config: tuple[tuple[str, str], ...] = ()
    # config.json's plain models: a legacy graph may name them as its servables (OVMS's demo form).
    config_models: tuple[IRSpec, ...] = ()


@dataclass(frozen=True)
class ServableSpec:
    """Everything needed to load one servable model, read from its folder."""

    name: str
    task: Task
    options: GraphOptions
    tokenizer: IRSpec
    model: IRSpec
    flat: bool = False  # one flat folder (version 1) instead of numbered version folders

    def scan_versions(self) -> dict[int, VersionFiles]:
        """The complete versions on disk right now (serving/repository/versions.py)."""
        return scan_versions(
            self.tokenizer.base_path,
            self.model.base_path,
            tokenizer_xml=self.tokenizer.xml_name,
            model_xml=self.model.xml_name,
            flat=self.flat,
            companions=(layout.HF_CONFIG_FILE, layout.TOKENIZER_CONFIG_FILE) if self.flat else (),
        )


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


def is_flat_folder(folder: Path) -> bool:
    """A flat model folder (optimum-cli's output): it has openvino_model.xml or openvino_tokenizer.xml."""
    return (folder / layout.FLAT_MODEL_XML).is_file() or (folder / layout.FLAT_TOKENIZER_XML).is_file()


def _graph_folder(base_path: Path) -> Path | None:
    """Where OVMS (2025.1+) finds the graph of a model_config_list entry: base_path or base_path/1."""
    for folder in (base_path, base_path / "1"):
        if (folder / layout.GRAPH_FILE).is_file():
            return folder
    return None


def read_config(config_path: Path) -> list[GraphEntry]:
    """The models of config.json (base paths resolved against its folder).

    Every mediapipe_config_list entry; of model_config_list, the entries whose folder holds a
    graph.pbtxt or a flat optimum-cli model. A model_config_list entry whose folder holds numbered
    version folders and neither is a plain OVMS model (e.g. a servable a hand-written graph names):
    not served here on its own. A missing or empty folder is taken for one of ours being replaced:
    its error is reported and what it served keeps serving.
    """
    raw = _read_json(config_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a JSON object")
    graphs_raw = raw.get("mediapipe_config_list", [])
    if not isinstance(graphs_raw, list):
        raise ConfigError(f"{config_path}: mediapipe_config_list must be a list")
    models_raw = raw.get("model_config_list", [])
    if not isinstance(models_raw, list):
        raise ConfigError(f"{config_path}: model_config_list must be a list")
    root = config_path.parent
    graphs: list[tuple[GraphEntry, str]] = []
    entries: list[GraphEntry] = []
    seen: set[str] = set()

    def add(entry: GraphEntry, where: str) -> None:
        if entry.name in seen:
            raise ConfigError(f"{where}: duplicate name '{entry.name}'")
        seen.add(entry.name)
        entries.append(entry)

    for index, item in enumerate(graphs_raw):
        where = f"{config_path}: mediapipe_config_list[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{where}: needs a non-empty string 'name'")
        name = item["name"]
        base_value = item.get("base_path", name)
        if not isinstance(base_value, str) or not base_value:
            raise ConfigError(f"{where}: base_path must be a non-empty string")
        base_path = _resolve(root, base_value)
        graph_value = item.get("graph_path", layout.GRAPH_FILE)
        subconfig_value = item.get("subconfig", layout.SUBCONFIG_FILE)
        if not isinstance(graph_value, str) or not isinstance(subconfig_value, str):
            raise ConfigError(f"{where}: graph_path and subconfig must be strings")
        graphs.append(
            (
                GraphEntry(
                    name=name,
                    base_path=base_path,
                    graph_path=_resolve(base_path, graph_value),
                    subconfig_path=_resolve(base_path, subconfig_value),
                ),
                where,
            )
        )
    plain_models: list[IRSpec] = []
    for index, item in enumerate(models_raw):
        where = f"{config_path}: model_config_list[{index}]"
        model = _model_spec(item, root, where)
        folder = _graph_folder(model.base_path)
        if folder is None and not is_flat_folder(model.base_path) and numbered_folders(model.base_path):
            plain_models.append(model)
            continue
        folder = folder or model.base_path
        graph = GraphEntry(
            name=model.name,
            base_path=folder,
            graph_path=folder / layout.GRAPH_FILE,
            subconfig_path=folder / layout.SUBCONFIG_FILE,
            target_device=model.target_device,
            plugin_config=tuple(model.plugin_config.items()),
        )
        graphs.append((graph, where))
    aliases = read_aliases(config_path)
    for graph, where in graphs:
        add(replace(graph, config_models=tuple(plain_models), aliases=aliases.get(graph.name, ())), where)
    clash = find_alias_clash([entry.name for entry in entries], {e.name: e.aliases for e in entries})
    if clash:
        raise ConfigError(f"{aliases_path(config_path)}: {clash}")
    return entries


def aliases_path(config_path: Path) -> Path:
    return config_path.parent / layout.ALIASES_FILE


def read_aliases(config_path: Path) -> dict[str, tuple[str, ...]]:
    """aliases.json beside config.json, {"aliases": {model name: [alias, ...]}}; none without the file.

    A model's own name and repeats are dropped from its list.
    """
    path = aliases_path(config_path)
    if not path.exists():
        return {}
    raw = _read_json(path)
    table = raw.get("aliases") if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f'{path}: expected {{"aliases": {{model name: [alias, ...]}}}}')
    aliases: dict[str, tuple[str, ...]] = {}
    for name, values in table.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError(f"{path}: the aliases of '{name}' must be a list of non-empty strings")
        aliases[name] = tuple(dict.fromkeys(alias for alias in values if alias != name))
    return aliases


def find_alias_clash(names: list[str], aliases: dict[str, tuple[str, ...]]) -> str | None:
    """Every name and alias must lead to one model: the first that does not, said; else None."""
    owners = {name: (name, "the name") for name in names}
    for model, model_aliases in aliases.items():
        for alias in model_aliases:
            owner, role = owners.get(alias, (model, ""))
            if owner != model:
                return f"alias '{alias}' of '{model}' is also {role} of '{owner}'"
            owners[alias] = (model, "an alias")
    return None


@dataclass(frozen=True)
class ServableRef:
    """What a legacy graph's session node opens: a servable of subconfig.json, by name (and version)."""

    name: str
    version: int | None = None


@dataclass(frozen=True)
class Graph:
    """What graph.pbtxt says."""

    task: Task
    options: GraphOptions
    # Current OVMS form: the flat model folder, relative to the graph's folder; device and plugin_config.
    models_path: str | None = None
    target_device: str | None = None
    plugin_config: dict[str, str] = field(default_factory=dict)
    # Legacy form: the tokenizer's and the model's servables (None: this project's older one-node graph).
    tokenizer_servable: ServableRef | None = None
    model_servable: ServableRef | None = None


def _node_options(node: pbtxt.Message, message: str) -> pbtxt.Message:
    """The options of `message` type: a node_options Any, or an `options { [mediapipe.X.ext] {...} }`."""
    for options in pbtxt.all_values(node, "node_options"):
        if not isinstance(options, dict):
            continue
        for key, value in options.items():
            if key.endswith(("/mediapipe." + message + "]", "[mediapipe." + message + "]")) and isinstance(
                value, dict
            ):
                return value
    for options in pbtxt.all_values(node, "options"):
        if isinstance(options, dict):
            value = options.get(f"[mediapipe.{message}.ext]")
            if isinstance(value, dict):
                return value
    return {}


def _int_option(options: pbtxt.Message, key: str, path: Path) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{path}: {key} must be an integer >= 1, got {value!r}")
    return value


def _bool_option(options: pbtxt.Message, key: str, path: Path) -> bool | None:
    value = options.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def _string_option(options: pbtxt.Message, key: str, path: Path) -> str | None:
    value = options.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string, got {value!r}")
    return value


def _pooling_option(options: pbtxt.Message, path: Path) -> Pooling | None:
    value = options.get("pooling")
    if value is None:
        # The legacy message's mean_pooling (OVMS itself pooled CLS anyway; asking for mean gets it here).
        return Pooling.MEAN if _bool_option(options, "mean_pooling", path) else None
    try:
        return Pooling(value)
    except ValueError as err:
        choices = ", ".join(p.value for p in Pooling)
        raise ConfigError(f"{path}: pooling must be one of {choices}, got {value!r}") from err


def _graph_options(options: pbtxt.Message, path: Path) -> GraphOptions:
    return GraphOptions(
        max_allowed_chunks=_int_option(options, "max_allowed_chunks", path),
        max_doc_length=_int_option(options, "max_doc_length", path),
        max_position_embeddings=_int_option(options, "max_position_embeddings", path),
        pooling=_pooling_option(options, path),
        normalize_embeddings=_bool_option(options, "normalize_embeddings", path),
        truncate=_bool_option(options, "truncate", path),
    )


def _plugin_config_option(options: pbtxt.Message, path: Path) -> dict[str, str]:
    """OVMS's plugin_config option: a JSON object in a string."""
    text = _string_option(options, "plugin_config", path)
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: plugin_config must be a JSON object in a string: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: plugin_config must be a JSON object in a string")
    return property_strings(raw)


def _side_packets(node: pbtxt.Message, field_name: str) -> dict[str, str]:
    """TAG -> packet name of "TAG:name" (or "TAG:index:name") side packets."""
    packets = {}
    for value in pbtxt.all_values(node, field_name):
        if isinstance(value, str) and ":" in value:
            tag, _, name = value.partition(":")
            packets[tag] = name.rpartition(":")[2]
    return packets


def _session(graph: pbtxt.Message, packet: str | None, path: Path) -> ServableRef:
    """The session node giving `packet`, and the servable it opens."""
    for node in pbtxt.all_values(graph, "node"):
        if not isinstance(node, dict) or node.get("calculator") != layout.SESSION_CALCULATOR:
            continue
        if packet is None or _side_packets(node, "output_side_packet").get("SESSION") != packet:
            continue
        options = _node_options(node, "OpenVINOModelServerSessionCalculatorOptions")
        name = _string_option(options, "servable_name", path)
        if not name:
            raise ConfigError(f"{path}: the session node of '{packet}' needs a servable_name")
        version = _string_option(options, "servable_version", path)
        if version is not None and not version.isdigit():
            raise ConfigError(f"{path}: servable_version must be a version number, got {version!r}")
        return ServableRef(name=name, version=int(version) if version else None)
    raise ConfigError(f"{path}: no {layout.SESSION_CALCULATOR} node gives the side packet '{packet}'")


def parse_graph(path: Path) -> Graph:
    text = _read_text(path)
    try:
        graph = pbtxt.parse(text)
    except pbtxt.PbtxtError as err:
        raise ConfigError(f"{path}: {err}") from err
    except RecursionError as err:
        raise ConfigError(f"{path}: messages nested too deeply") from err
    by_calculator = {task.calculator: (task, False) for task in Task}
    by_calculator |= {task.legacy_calculator: (task, True) for task in Task}
    for node in pbtxt.all_values(graph, "node"):
        if isinstance(node, dict) and node.get("calculator") in by_calculator:
            task, legacy = by_calculator[node["calculator"]]
            break
    else:
        names = " or ".join(by_calculator)
        raise ConfigError(f"{path}: no node with calculator {names}")
    if legacy:
        options = _node_options(node, f"{node['calculator']}Options")
        packets = _side_packets(node, "input_side_packet")
        return Graph(
            task=task,
            options=_graph_options(options, path),
            tokenizer_servable=_session(graph, packets.get("TOKENIZER_SESSION"), path),
            model_servable=_session(graph, packets.get(task.session_tag), path),
        )
    options = _node_options(node, f"{node['calculator']}Options")
    return Graph(
        task=task,
        options=_graph_options(options, path),
        models_path=_string_option(options, "models_path", path),
        target_device=_string_option(options, "target_device", path) or None,
        plugin_config=_plugin_config_option(options, path),
    )


def read_graph(path: Path) -> tuple[Task, GraphOptions]:
    """The task and the node options of a graph.pbtxt."""
    graph = parse_graph(path)
    return graph.task, graph.options


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


def _model_spec(raw: Any, model_folder: Path, where: str) -> IRSpec:
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
    return IRSpec(
        name=name,
        base_path=_resolve(model_folder, base_path),
        target_device=device,
        plugin_config=plugin_config,
        version_policy=VersionPolicy.parse(config.get("model_version_policy"), f"{where} ({name})"),
    )


def _read_model_list(path: Path) -> list[IRSpec]:
    """subconfig.json's model_config_list; base paths are relative to its folder (as in OVMS)."""
    raw = _read_json(path)
    items = raw.get("model_config_list") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: model_config_list must be a list")
    return [_model_spec(item, path.parent, str(path)) for item in items]


def read_subconfig(path: Path, task: Task) -> tuple[IRSpec, IRSpec]:
    """(tokenizer, model) entries of this project's older graphs, found by base_path: 'tokenizer' and
    the task's folder (else by the name's suffix)."""
    specs = _read_model_list(path)

    def find(folder: str, name_suffix: str) -> IRSpec:
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


def _servable_specs(entry: GraphEntry, graph: Graph) -> tuple[IRSpec, IRSpec]:
    """A legacy graph's two servables: subconfig.json's entries named by the session nodes, or
    config.json's own plain models (the form of OVMS's hand-written demo graph)."""
    assert graph.tokenizer_servable is not None and graph.model_servable is not None
    known = list(entry.config_models)
    if entry.subconfig_path.is_file():
        known = _read_model_list(entry.subconfig_path) + known
    found = []
    for servable in (graph.tokenizer_servable, graph.model_servable):
        spec = next((spec for spec in known if spec.name == servable.name), None)
        if spec is None:
            raise ConfigError(
                f"{entry.graph_path}: servable_name '{servable.name}' is not in "
                f"{entry.subconfig_path.name} or config.json's model_config_list"
            )
        if servable.version is not None:
            spec = replace(spec, version_policy=VersionPolicy(kind="specific", versions=(servable.version,)))
        found.append(spec)
    tokenizer, model = found
    if graph.tokenizer_servable.version != graph.model_servable.version and None not in (
        graph.tokenizer_servable.version,
        graph.model_servable.version,
    ):
        raise ConfigError(
            f"{entry.graph_path}: the tokenizer and the model servable_version differ; this server pairs "
            "tokenizer and model versions by number"
        )
    return tokenizer, model


def _hf_task(folder: Path) -> Task:
    """A flat folder without graph: a *ForSequenceClassification in its config.json is a reranker."""
    config = _read_json(folder / layout.HF_CONFIG_FILE)
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if isinstance(architectures, list) and any(
        isinstance(name, str) and name.endswith("ForSequenceClassification") for name in architectures
    ):
        return Task.RERANK
    return Task.EMBEDDINGS


def _flat_specs(
    name: str, folder: Path, target_device: str, plugin_config: dict[str, str]
) -> tuple[IRSpec, IRSpec]:
    tokenizer = IRSpec(
        name=layout.tokenizer_servable_name(name), base_path=folder, xml_name=layout.FLAT_TOKENIZER_XML
    )
    model = IRSpec(
        name=name,
        base_path=folder,
        target_device=target_device,
        plugin_config=plugin_config,
        xml_name=layout.FLAT_MODEL_XML,
    )
    return tokenizer, model


def read_servable_spec(entry: GraphEntry) -> ServableSpec:
    if not entry.graph_path.is_file() and is_flat_folder(entry.base_path):
        # optimum-cli's output folder: the task from its config.json, every setting at its default.
        tokenizer, model = _flat_specs(
            entry.name, entry.base_path, entry.target_device, dict(entry.plugin_config)
        )
        task = _hf_task(entry.base_path)
        return ServableSpec(entry.name, task, GraphOptions(), tokenizer, model, flat=True)
    graph = parse_graph(entry.graph_path)
    if graph.tokenizer_servable is not None:
        tokenizer, model = _servable_specs(entry, graph)
        return ServableSpec(entry.name, graph.task, graph.options, tokenizer, model)
    if graph.models_path is not None:
        folder = _resolve(entry.graph_path.parent, graph.models_path)
        # An empty target_device lets current OVMS choose; this server runs it on CPU.
        tokenizer, model = _flat_specs(entry.name, folder, graph.target_device or "CPU", graph.plugin_config)
        return ServableSpec(entry.name, graph.task, graph.options, tokenizer, model, flat=True)
    tokenizer, model = read_subconfig(entry.subconfig_path, graph.task)
    return ServableSpec(entry.name, graph.task, graph.options, tokenizer, model)
