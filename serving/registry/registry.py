"""ModelRegistry: which versions of which models are loaded, and swapping them while serving.

One loading thread polls config.json and the version folders (and POST /v1/config/reload runs
the same reload). A new version is built completely (compiled, warmed up) before requests see
it; the switch is one reference change under a lock. Requests hold a Lease on the servable
they started with, so in-flight requests finish on the old version, which is closed when its
last request is done. Whatever fails to load leaves what was serving in service and is
reported per model and version in config_status() (GET /v1/config).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import openvino as ov

from serving.errors import InvalidRequest, ModelNotFound, ModelUnavailable
from serving.pipelines.batching import BatchPolicy
from serving.pipelines.run import RequestLimits
from serving.registry.loader import LoadedVersion, LoadError, load_version
from serving.repository.config import (
    ConfigError,
    GraphEntry,
    ServableSpec,
    read_config,
    read_servable_spec,
    with_cpu_plugin_config,
)
from serving.repository.layout import ModelInfo, Task, TokenizerInfo
from serving.repository.versions import VersionFiles, stable_versions

log = logging.getLogger(__name__)


class VersionState(str, Enum):
    """Version states as the reference server (OVMS) reports them."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


OK = "OK"
FAILED = "UNKNOWN"  # OVMS reports a version that failed to load as LOADING with error_code UNKNOWN


@dataclass
class VersionStatus:
    version: int
    state: VersionState = VersionState.START
    error_code: str = OK
    error_message: str = OK
    servable: LoadedVersion | None = None
    files: VersionFiles | None = None  # the files the servable was loaded from
    spec: ServableSpec | None = None  # the configuration it was loaded with
    # The last load that failed: retried when the files or configuration change again, or on
    # POST /v1/config/reload; a servable loaded earlier keeps serving meanwhile.
    failed_files: VersionFiles | None = None
    failed_spec: ServableSpec | None = None

    @property
    def failed(self) -> bool:
        return self.error_code != OK

    def as_json(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "state": self.state.value,
            "status": {"error_code": self.error_code, "error_message": self.error_message},
        }


@dataclass
class ModelState:
    """The registry's state of one configured model: its spec, its versions and which of them serve."""

    name: str
    task: Task | None = None
    spec: ServableSpec | None = None
    versions: dict[int, VersionStatus] = field(default_factory=dict)
    serving: list[int] = field(default_factory=list)  # highest first; requests use serving[0]
    error: str | None = None  # the model's configuration could not be read
    removed: bool = False
    aliases: tuple[str, ...] = ()  # other names requests may use (aliases.json)
    seen: dict[int, VersionFiles] = field(default_factory=dict)  # last observation of the folders


@dataclass(frozen=True)
class ServedModel:
    name: str
    task: Task
    version: int
    loaded_at: float
    tokenizer_info: TokenizerInfo | None = None  # its prompts and templates, for the model list
    aliases: tuple[str, ...] = ()
    model_info: ModelInfo | None = None  # its weight format and accuracy report, for the model list


class Lease:
    """A request's hold on one servable; release it when the request is done."""

    def __init__(self, registry: ModelRegistry, servable: LoadedVersion) -> None:
        self._registry = registry
        self.servable = servable
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._registry._release(self.servable)

    def __enter__(self) -> LoadedVersion:
        return self.servable

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class ModelRegistry:
    def __init__(
        self,
        config_path: Path,
        batching: BatchPolicy | None = None,
        limits: RequestLimits | None = None,
        poll_interval: float = 1.0,
        settle_seconds: float | None = None,
        core: ov.Core | None = None,
        cpu_plugin_config: dict[str, str] | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        # --plugin_config: merged over the plugin_config of every model compiled on CPU (the
        # operator's settings, such as threads tied to a container's CPU limit).
        self.cpu_plugin_config = dict(cpu_plugin_config or {})
        self.batching = batching or BatchPolicy()
        self.limits = limits or RequestLimits()
        self.root = self.config_path.parent
        self.poll_interval = poll_interval
        # How long a new or changed version folder must stay unchanged before it is loaded.
        self.settle_seconds = min(0.5, poll_interval) if settle_seconds is None else settle_seconds
        self.core = core or ov.Core()
        # Read weights into memory instead of mapping model.bin: a served model.bin overwritten in
        # place (cp over it) would otherwise crash the process with SIGBUS on its next inference.
        self.core.set_property({"ENABLE_MMAP": False})
        self.config_error: str | None = None
        self._models: dict[str, ModelState] = {}
        self._aliases: dict[str, str] = {}  # alias -> model name (read_config checks they are unique)
        self._lock = threading.RLock()  # guards the state above
        self._reload_lock = threading.Lock()  # one reload at a time
        self._retiring: dict[int, tuple[LoadedVersion, VersionStatus | None]] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Load in the background, then poll; `ready` turns true after the first load."""
        self._thread = threading.Thread(target=self._run, name="model-registry", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._reload_quietly(force=True)
        finally:
            self._ready.set()
        while not self._stop.wait(self.poll_interval):
            self._reload_quietly(force=False)

    def _reload_quietly(self, force: bool) -> None:
        try:
            self.reload(force=force)
        except ConfigError:
            pass  # recorded in config_error and logged once by reload()
        except Exception:
            log.exception("reloading %s failed", self.config_path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for model in self._models.values():
                for status in model.versions.values():
                    if status.servable is not None:
                        status.servable.close()
                        status.servable = None
                model.serving = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    # ---- reloading -------------------------------------------------------------------------

    def reload(self, force: bool = False) -> None:
        """Apply config.json and the version folders as they are now.

        Raises ConfigError when config.json cannot be used (nothing changes then).
        `force` retries versions that failed to load even if their files did not change.
        """
        with self._reload_lock:
            try:
                entries = read_config(self.config_path)
            except ConfigError as err:
                message = self.public(str(err))
                if message != self.config_error:
                    log.error("%s; keeping the models that are loaded", message)
                self.config_error = message
                raise ConfigError(message) from err
            if self.config_error is not None:
                log.info("%s is valid again", self.config_path)
            self.config_error = None
            wanted = {entry.name for entry in entries}
            with self._lock:
                self._aliases = {alias: entry.name for entry in entries for alias in entry.aliases}
                for model in self._models.values():
                    if model.name not in wanted and not model.removed:
                        log.info("model %s was removed from %s: unloading", model.name, self.config_path)
                        self._remove(model)
            specs = [item for item in (self._read_spec(entry) for entry in entries) if item is not None]
            observed = self._observe(specs)
            for model, spec in specs:
                stable, present = observed[model.name]
                self._apply(model, spec, stable, present, force)

    def _remove(self, model: ModelState) -> None:
        model.removed = True
        for version in model.serving:
            self._retire(model, version)
        model.serving = []
        for status in model.versions.values():
            if status.state is VersionState.LOADING:
                status.state = VersionState.END

    def _read_spec(self, entry: GraphEntry) -> tuple[ModelState, ServableSpec] | None:
        """The model's configuration, or None (error recorded; what serves keeps serving)."""
        with self._lock:
            model = self._models.get(entry.name)
            if model is None or model.removed:
                model = ModelState(name=entry.name)
                self._models[entry.name] = model
        try:
            spec = read_servable_spec(entry)
        except (ConfigError, OSError, ValueError) as err:  # one bad model never stops the others
            message = self.public(
                str(err) if isinstance(err, ConfigError) else f"cannot read its files: {err}"
            )
            with self._lock:
                if model.error != message:
                    log.error("model %s: %s", model.name, message)
                model.error = message
            return None
        with self._lock:
            if model.error is not None:
                log.info("model %s: configuration is valid again", model.name)
            model.spec, model.task, model.error = spec, spec.task, None
            model.aliases = entry.aliases
        return model, spec

    def _observe(
        self, specs: list[tuple[ModelState, ServableSpec]]
    ) -> dict[str, tuple[dict[int, VersionFiles], set[int]]]:
        """Per model: (versions complete and not changing, versions complete now).

        Folders unchanged since the last reload count as settled; when anything is new or
        changed, all are looked at again after `settle_seconds` (one wait for all models).
        """

        def scan(spec: ServableSpec) -> dict[int, VersionFiles]:
            try:
                return spec.scan_versions()
            except (OSError, ValueError) as err:  # e.g. a base_path the filesystem rejects
                log.error("model %s: cannot list its version folders: %s", spec.name, err)
                return {}

        first = {model.name: scan(spec) for model, spec in specs}
        settled = all(
            v in model.seen and model.seen[v].signature == files.signature
            for model, _ in specs
            for v, files in first[model.name].items()
        )
        if not settled:
            time.sleep(self.settle_seconds)
        observed = {}
        for model, spec in specs:
            if settled:
                second = first[model.name]
                observed[model.name] = (second, set(second))
            else:
                second = scan(spec)
                observed[model.name] = (stable_versions(first[model.name], second), set(second))
            model.seen = second
        return observed

    def _apply(
        self,
        model: ModelState,
        spec: ServableSpec,
        stable: dict[int, VersionFiles],
        present: set[int],
        force: bool,
    ) -> None:
        """Load what the version policy wants, then switch requests to it.

        A loaded version whose files are changing right now stays selectable (and serving) until
        they settle; it is rebuilt then. Without this, the policy would fall back to an older
        version for the few seconds a copy takes, and come back after.
        """
        # A version loaded with another configuration (config.json now names a new flat folder, say)
        # keeps serving while its own files are there, until the new one is complete and settled.
        present = present | {
            v
            for v, status in model.versions.items()
            if status.servable is not None
            and status.spec != spec
            and status.files is not None
            and status.files.model_xml.is_file()
        }
        loaded = {
            v
            for v in present
            if (status := model.versions.get(v)) is not None and status.servable is not None
        }
        desired = spec.model.version_policy.select(set(stable) | loaded)
        for version in desired:
            if version in stable and self._needs_load(
                model.versions.get(version), stable[version], spec, force
            ):
                self._load(model, spec, stable[version])

        with self._lock:
            serving_now = [v for v in desired if model.versions[v].servable is not None]
            # Nothing wanted could be loaded: keep serving what serves, while its files are there.
            serving = serving_now or [v for v in model.serving if v in present]
            for version in model.serving:
                if version not in serving:
                    self._retire(model, version)
            if serving != model.serving:
                log.info("model %s: serving version(s) %s", model.name, serving or "none")
            model.serving = serving
            for version, status in model.versions.items():
                if version not in present and status.state is VersionState.LOADING:
                    status.state = VersionState.END  # a failed version whose folder is gone

    @staticmethod
    def _needs_load(
        status: VersionStatus | None, files: VersionFiles, spec: ServableSpec, force: bool
    ) -> bool:
        if status is None or status.state in (VersionState.START, VersionState.END, VersionState.UNLOADING):
            return True
        serving_these = status.files is not None and status.files.signature == files.signature
        if status.servable is not None and serving_these and status.spec == spec:
            return False  # serving exactly these files
        failed_before = (
            status.failed_files is not None
            and status.failed_files.signature == files.signature
            and status.failed_spec == spec
        )
        # These files (and configuration) failed before: retry only when asked to.
        return force if failed_before else True

    def _load(self, model: ModelState, spec: ServableSpec, files: VersionFiles) -> None:
        with self._lock:
            status = model.versions.setdefault(files.version, VersionStatus(files.version))
            if status.servable is None:
                status.state = VersionState.LOADING
        try:
            servable = load_version(
                self.core,
                with_cpu_plugin_config(spec, self.cpu_plugin_config),
                files,
                self.batching,
                self.limits,
                self.root,
            )
        except LoadError as err:
            message = self.public(str(err))
            log.error("model %s version %d failed to load: %s", model.name, files.version, message)
        except Exception as err:  # a bug or an unexpected OpenVINO error: still keep serving
            message = self.public(f"{type(err).__name__}: {err}")
            log.exception("model %s version %d failed to load", model.name, files.version)
        else:
            with self._lock:
                previous = status.servable
                status.servable = servable
                status.state, status.error_code, status.error_message = VersionState.AVAILABLE, OK, OK
                status.files, status.spec = files, spec
                status.failed_files = status.failed_spec = None
                if previous is not None:
                    self._retire_servable(previous, None)
            return
        with self._lock:
            status.failed_files, status.failed_spec = files, spec
            if status.servable is None:
                status.state, status.error_code, status.error_message = VersionState.LOADING, FAILED, message
            else:  # the earlier files keep serving; say why the new ones are not
                status.error_message = (
                    f"serving the earlier files of this version; the changed files failed: {message}"
                )

    def public(self, message: str) -> str:
        """A message for clients: file names relative to the repository, not the server's paths."""
        return message.replace(f"{self.root}/", "").replace(str(self.config_path), self.config_path.name)

    def _retire(self, model: ModelState, version: int) -> None:
        status = model.versions[version]
        servable, status.servable = status.servable, None
        if servable is None:
            status.state = VersionState.END
            return
        status.state = VersionState.UNLOADING
        self._retire_servable(servable, status)

    def _retire_servable(self, servable: LoadedVersion, status: VersionStatus | None) -> None:
        servable.retired = True
        if servable.inflight == 0:
            self._close(servable, status)
        else:
            self._retiring[id(servable)] = (servable, status)

    def _close(self, servable: LoadedVersion, status: VersionStatus | None) -> None:
        servable.close()
        log.info("unloaded %s version %d", servable.name, servable.version)
        if status is not None and status.state is VersionState.UNLOADING:
            status.state = VersionState.END

    # ---- requests --------------------------------------------------------------------------

    def acquire(self, name: str | None, task: Task) -> Lease:
        """A lease on the version that serves `name` (any single model of `task` when None)."""
        with self._lock:
            model = self._find(name, task)
            if not model.serving:
                reason = self._unavailable_reason(model)
                raise ModelUnavailable(f"model '{model.name}' has no loaded version{reason}")
            servable = model.versions[model.serving[0]].servable
            assert servable is not None
            if servable.task is not task:  # the graph changed task; its new versions are loading
                raise ModelUnavailable(f"model '{model.name}' is being reloaded as a different kind of model")
            servable.inflight += 1
            return Lease(self, servable)

    def canonical(self, name: str) -> str:
        """The model's configured name for a name or an alias (unknown names come back unchanged)."""
        with self._lock:
            return name if name in self._models else self._aliases.get(name, name)

    def _find(self, name: str | None, task: Task) -> ModelState:
        active = [m for m in self._models.values() if not m.removed]
        if name is None:
            candidates = [m for m in active if m.task is task]
            if len(candidates) == 1:
                return candidates[0]
            if not candidates:
                raise ModelNotFound(f"no {task.value} model is configured")
            names = ", ".join(sorted(m.name for m in candidates))
            raise InvalidRequest(f"required: several {task.value} models are served ({names})", field="model")
        model = self._models.get(self.canonical(name))
        if model is None or model.removed:
            served = ", ".join(sorted(m.name for m in active if m.task is task)) or "none"
            raise ModelNotFound(f"model '{name}' is not served ({task.value} models: {served})")
        if model.task is not None and model.task is not task:
            raise InvalidRequest(
                f"'{name}' is {model.task.article} model, not {task.article} model", field="model"
            )
        return model

    @staticmethod
    def _unavailable_reason(model: ModelState) -> str:
        if model.error:
            return f": {model.error}"
        failed = [s for s in model.versions.values() if s.failed and s.state is VersionState.LOADING]
        if failed:
            return f": version {failed[-1].version}: {failed[-1].error_message}"
        if any(s.state is VersionState.LOADING for s in model.versions.values()):
            return " yet: loading"
        return ": no complete version folder found"

    def _release(self, servable: LoadedVersion) -> None:
        with self._lock:
            servable.inflight -= 1
            if servable.retired and servable.inflight == 0:
                retiring = self._retiring.pop(id(servable), None)
                if retiring is not None:
                    self._close(*retiring)

    # ---- reporting -------------------------------------------------------------------------

    def config_status(self) -> dict[str, Any]:
        """GET /v1/config: per model, each version's state and status, as OVMS reports them."""
        with self._lock:
            report: dict[str, Any] = {}
            for model in self._models.values():
                versions = sorted(model.versions.values(), key=lambda s: s.version, reverse=True)
                entry: dict[str, Any] = {"model_version_status": [s.as_json() for s in versions]}
                if model.error:
                    entry["error"] = model.error
                report[model.name] = entry
            return report

    def served_models(self) -> list[ServedModel]:
        with self._lock:
            served = []
            for model in self._models.values():
                if model.removed or not model.serving or model.task is None:
                    continue
                servable = model.versions[model.serving[0]].servable
                if servable is not None:
                    served.append(
                        ServedModel(
                            model.name,
                            model.task,
                            servable.version,
                            servable.loaded_at,
                            servable.tokenizer_info,
                            model.aliases,
                            servable.model_info,
                        )
                    )
            return served

    def is_known(self, name: str) -> bool:
        with self._lock:
            model = self._models.get(self.canonical(name))
            return model is not None and not model.removed

    def is_model_ready(self, name: str) -> bool:
        with self._lock:
            model = self._models.get(self.canonical(name))
            return model is not None and not model.removed and bool(model.serving)

    def queue_sizes(self) -> dict[str, int]:
        """Requests waiting for an infer request of each served model's current version."""
        with self._lock:
            sizes = {}
            for model in self._models.values():
                if model.serving and not model.removed:
                    servable = model.versions[model.serving[0]].servable
                    if servable is not None:
                        sizes[model.name] = servable.waiting
            return sizes
