"""Step 1: find the source model (local folder or Hugging Face hub id) and check it fits the task."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export_models.errors import (
    HubUnavailableError,
    InvalidOptionError,
    InvalidSourceError,
    NotASequenceClassifierError,
    RemoteCodeRequiredError,
    SourceNotFoundError,
    TokenizerConversionError,
    UnsupportedArchitectureError,
)
from export_models.sentence_modules import LEGACY_POOLING_KEYS, SERVER_POOLING
from serving.repository.families import Conversion, Family, tokenizer_refusal
from serving.repository.layout import Pooling, Task

# The optimum-intel task each of our tasks exports with.
OPTIMUM_TASKS: dict[Task, str] = {
    Task.RERANK: "text-classification",
    Task.EMBEDDINGS: "feature-extraction",
}

# Label counts a reranker may have: one relevance logit, or two labels scored as softmax's probability
# of label 1 (serving/pipelines/scoring.py relevance_logits).
RERANK_LABELS = (1, 2)

# "name" or "org/name" as the Hub spells repository ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)?$")

# Files a snapshot download never needs (other frameworks' weights, other exports).
_HUB_IGNORE_PATTERNS = [
    "*.onnx",
    "onnx/*",
    "openvino/*",
    "*.msgpack",
    "*.h5",
    "*.ot",
    "tf_model*",
    "flax_model*",
    "rust_model*",
    "*.gguf",
    "coreml/*",
    "*.mlmodel",
    "*.tflite",
]


@dataclass(frozen=True)
class ResolvedSource:
    """A local folder holding the Hugging Face model, and what ModelInfo records about it."""

    path: Path
    recorded: str  # hub id as given, or the absolute path of a local folder
    is_local: bool
    config: dict[str, Any]  # config.json as stored

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architecture(self) -> str:
        architectures = self.config.get("architectures") or []
        return (
            str(architectures[0]) if architectures else f"<no architectures, model_type '{self.model_type}'>"
        )

    @property
    def default_model_name(self) -> str:
        """The hub id, or a local folder's name (an absolute path cannot name a model)."""
        return self.path.name if self.is_local else self.recorded


def looks_like_hub_id(source_model: str) -> bool:
    return bool(_HUB_ID.match(source_model)) and ".." not in source_model


def resolve_source(source_model: str) -> ResolvedSource:
    """Return the local folder of `source_model`, downloading a hub id if needed."""
    local = Path(source_model).expanduser()
    if local.exists():
        return _local_source(local.resolve(), source_model)
    if not looks_like_hub_id(source_model):
        raise SourceNotFoundError(
            f"--source_model {source_model}: local folder {local.absolute()} does not exist"
        )
    return _local_source(_download(source_model), source_model, recorded=source_model, is_local=False)


def _local_source(
    folder: Path, given: str, recorded: str | None = None, is_local: bool = True
) -> ResolvedSource:
    if not folder.is_dir():
        raise InvalidSourceError(f"--source_model {given}: {folder} is a file, not a model folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise InvalidSourceError(
            f"--source_model {given}: {folder} is not a Hugging Face model folder (no config.json)"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidSourceError(f"--source_model {given}: cannot read {config_file}: {error}") from error
    if not isinstance(config, dict) or "model_type" not in config:
        raise InvalidSourceError(f"--source_model {given}: {config_file} has no model_type")
    return ResolvedSource(path=folder, recorded=recorded or str(folder), is_local=is_local, config=config)


def _download(repo_id: str) -> Path:
    """snapshot_download with every hub failure turned into one HubUnavailableError message."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    hint = "pass a local model folder as --source_model"
    ignore = list(_HUB_IGNORE_PATTERNS)
    if not constants.HF_HUB_OFFLINE:
        # Only an optimisation (skip duplicate .bin weights): snapshot_download reports real problems.
        with contextlib.suppress(Exception):
            if any(name.endswith(".safetensors") for name in HfApi().list_repo_files(repo_id)):
                ignore.append("pytorch_model*.bin")
    try:
        return Path(snapshot_download(repo_id, ignore_patterns=ignore))
    except GatedRepoError as error:
        raise HubUnavailableError(
            f"'{repo_id}' is a gated model on the Hugging Face Hub: accept its terms and log in "
            f"(hf auth login), or {hint}"
        ) from error
    except RepositoryNotFoundError as error:
        raise HubUnavailableError(
            f"'{repo_id}' is neither a local folder nor a model on the Hugging Face Hub: {hint}"
        ) from error
    except LocalEntryNotFoundError as error:
        if constants.HF_HUB_OFFLINE:
            raise HubUnavailableError(
                f"'{repo_id}' is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE=1 "
                f"forbids downloading it: {hint}"
            ) from error
        raise HubUnavailableError(
            f"cannot fetch '{repo_id}' from the Hugging Face Hub (no network?): {hint}, "
            "or set HF_HUB_OFFLINE=1 to use a copy in the Hugging Face cache"
        ) from error
    except (HfHubHTTPError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubUnavailableError(
            f"cannot fetch '{repo_id}' from the Hugging Face Hub ({first_line}): {hint}, "
            "or set HF_HUB_OFFLINE=1 to use a copy in the Hugging Face cache"
        ) from error


def optimum_supported_tasks(model_type: str) -> list[str]:
    """Tasks optimum-intel's OpenVINO exporter supports for a model_type ([] if none)."""
    import optimum.exporters.openvino.model_configs  # noqa: F401  (registers the OpenVINO export configs)
    from optimum.exporters.tasks import TasksManager

    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type.replace("_", "-"), exporter="openvino", library_name="transformers"
        )
    except KeyError:
        return []
    return list(tasks)


def validate_for_task(
    source: ResolvedSource, task: Task, family: Family | None = None, trust_remote_code: bool = False
) -> list[str]:
    """Raise if the source cannot be exported for `task` (checked before any slow step).

    Returns notes for the user (e.g. which implementation runs a model that ships its own code).
    """
    architecture = source.architecture
    conversion = family.conversion if family else Conversion.OPTIMUM
    notes = check_remote_code(source, trust_remote_code)
    check_tokenizer(source)
    # A causal LM the family matched needs no head: the export builds the one-logit classifier.
    if task is Task.RERANK and conversion is not Conversion.CAUSAL_LM_TO_CLASSIFIER:
        if not architecture.endswith("ForSequenceClassification"):
            raise NotASequenceClassifierError(
                f"rerank needs a sequence classifier (*ForSequenceClassification with one or two labels); "
                f"{source.recorded} is a {architecture}"
            )
        labels = num_labels(source.config)
        if labels not in RERANK_LABELS:
            raise NotASequenceClassifierError(
                "rerank needs a one-label sequence classifier (one relevance logit) or a two-label one "
                f"(not relevant, relevant); {source.recorded} ({architecture}) has {labels} labels"
            )
    optimum_task = OPTIMUM_TASKS[task]
    if conversion in (Conversion.OPTIMUM, Conversion.CAUSAL_LM_TO_CLASSIFIER) and (
        optimum_task not in optimum_supported_tasks(source.model_type)
    ):
        raise UnsupportedArchitectureError(
            f"cannot export {architecture} (model_type '{source.model_type}'): optimum-intel's OpenVINO "
            f"exporter does not support it for {optimum_task}"
        )
    hidden_size(source.config)  # ModelInfo needs it: fail now rather than after the conversion
    return notes


def check_remote_code(source: ResolvedSource, trust_remote_code: bool) -> list[str]:
    """A model whose config.json maps to its own code (auto_map) runs that code only with the flag.

    Without it transformers would silently use its built-in class of the same model_type, whose
    weights and computation may differ: refused, unless every mapped class lives in another hub
    repository and transformers has a built-in implementation of the type (nomic-embed-text's
    nomic_bert, for example), which then runs.
    """
    auto_map = source.config.get("auto_map")
    if not isinstance(auto_map, dict) or not auto_map or trust_remote_code:
        return []
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    references = [str(value[0] if isinstance(value, list) else value) for value in auto_map.values()]
    built_in = source.model_type in CONFIG_MAPPING_NAMES
    if built_in and all("--" in reference for reference in references):
        return [
            f"config.json maps to code in another repository ({references[0]}); transformers' built-in "
            f"'{source.model_type}' runs instead (--trust_remote_code would fetch and run that code)"
        ]
    raise RemoteCodeRequiredError(
        f"{source.recorded} ships its own model code ({source.architecture}, auto_map {references[0]}): "
        "pass --trust_remote_code to run it (only for code you trust)"
    )


def tokenizer_config(source: ResolvedSource) -> dict[str, Any]:
    """tokenizer_config.json of the source ({} when missing or unreadable)."""
    path = source.path / "tokenizer_config.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def check_tokenizer(source: ResolvedSource) -> None:
    """Refuse tokenizers openvino-tokenizers cannot reproduce (before loading them: they may need
    packages that are not installed, such as MeCab's)."""
    reason = tokenizer_refusal(tokenizer_config(source))
    if reason is not None:
        raise TokenizerConversionError(f"cannot convert the tokenizer of {source.recorded}: {reason}")


def num_labels(config: dict[str, Any]) -> int:
    """transformers' rule: the size of id2label, else num_labels, else 2."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    return int(config.get("num_labels", 2))


def hidden_size(config: dict[str, Any]) -> int:
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    raise InvalidSourceError(f"config.json of model_type '{config.get('model_type')}' has no hidden size")


def _pooling_config_file(folder: Path) -> Path | None:
    """The sentence-transformers Pooling module's config.json (via modules.json, else 1_Pooling)."""
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            modules = []
        for module in modules if isinstance(modules, list) else []:
            if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
                candidate = folder / str(module.get("path", "")) / "config.json"
                if candidate.is_file():
                    return candidate
    fallback = folder / "1_Pooling" / "config.json"
    return fallback if fallback.is_file() else None


def default_pooling(source: ResolvedSource, fallback: Pooling = Pooling.CLS) -> Pooling:
    """The pooling of the model's sentence-transformers Pooling module, else `fallback`."""
    config_file = _pooling_config_file(source.path)
    if config_file is None:
        return fallback
    try:
        pooling_config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidSourceError(f"cannot read {config_file}: {error}") from error
    mode = pooling_config.get("pooling_mode")
    if mode is None:
        modes = [name for key, name in LEGACY_POOLING_KEYS.items() if pooling_config.get(key)]
    else:
        modes = [mode] if isinstance(mode, str) else list(mode)
    if len(modes) == 1 and modes[0] in SERVER_POOLING:
        return SERVER_POOLING[modes[0]]
    raise InvalidOptionError(
        f"{config_file} asks for pooling {'+'.join(modes) or 'none'}, which the server does not implement: "
        "choose one with --pooling CLS|MEAN|LAST"
    )


def sentence_transformers_max_seq_length(source: ResolvedSource) -> int | None:
    """max_seq_length from sentence_bert_config.json, if the model has one."""
    config_file = source.path / "sentence_bert_config.json"
    if not config_file.is_file():
        return None
    try:
        value = json.loads(config_file.read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, json.JSONDecodeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def sentence_transformers_prompts(source: ResolvedSource) -> tuple[dict[str, str], str | None]:
    """`prompts` and `default_prompt_name` of config_sentence_transformers.json ({} and None without it)."""
    config_file = source.path / "config_sentence_transformers.json"
    if not config_file.is_file():
        return {}, None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidSourceError(f"cannot read {config_file}: {error}") from error
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise InvalidSourceError(f"{config_file}: prompts must map names to strings")
    default = config.get("default_prompt_name")
    return {str(k): v for k, v in prompts.items()}, (str(default) if default else None)
