"""The benchmark's models: the Hugging Face source folders and their exports, made with the project's CLI.

Sources come from tools/ (demo_models.py, xlmr_models.py) (built offline, cached in .cache/fixtures). Each
(model, weight format) is exported into its own repository under <work_dir>/repos/, reused by the
next run as long as the source and the export code are unchanged (a stamp file records both).
With --exports_dir the exports are taken as they are from <exports_dir>/<model key>-<weight
format>/config.json (one model each, the same name in every format), and nothing is exported.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.config import EXPORTS_BY_KEY, ModelChoice
from export_models.pipeline import ACCURACY_FILE
from serving.repository.config import ConfigError, read_config
from serving.repository.layout import CONFIG_FILE, Task
from tools.export_command import export_command_line

REPO_ROOT = Path(__file__).resolve().parent.parent
STAMP_FILE = "bench_export_stamp.json"


@dataclass(frozen=True)
class PreparedModel:
    """A source model and its exported repositories (one per weight format)."""

    key: str
    task: Task
    label: str
    source: Path
    served_name: str
    repositories: dict[str, Path] = field(default_factory=dict)  # export key (config.EXPORTS) -> config.json
    # Export key -> the export's accuracy report against its fp32 IR (accuracy.json), when it has one.
    accuracy: dict[str, dict[str, object]] = field(default_factory=dict)
    st_static: Path | None = None  # sentence-transformers' own static int8 model (benchmark/peers.py)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "task": self.task.value,
            "label": self.label,
            "source": str(self.source),
            "served_name": self.served_name,
            "repositories": {k: str(v) for k, v in self.repositories.items()},
            "accuracy": self.accuracy,
            "st_static": str(self.st_static) if self.st_static else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PreparedModel:
        repositories = data["repositories"]
        assert isinstance(repositories, dict)
        return cls(
            key=str(data["key"]),
            task=Task(data["task"]),
            label=str(data["label"]),
            source=Path(str(data["source"])),
            served_name=str(data["served_name"]),
            repositories={k: Path(v) for k, v in repositories.items()},
            accuracy=dict(data.get("accuracy") or {}),  # type: ignore[call-overload]
            st_static=Path(str(data["st_static"])) if data.get("st_static") else None,
        )


def _builders() -> dict[str, Callable[[], Path]]:
    from tools import demo_models, xlmr_models

    return {
        "bge_reranker_base": lambda: xlmr_models.bge_reranker_shaped_source("base"),
        "xlmr_reranker": xlmr_models.xlmr_reranker_source,
        "cross_encoder": demo_models.cross_encoder_source,
        "minilm": demo_models.minilm_source,
    }


def source_folder(choice: ModelChoice, override: Path | None = None) -> Path:
    """The Hugging Face folder of a model: an explicit override, or built by tools/."""
    if override is not None:
        return override
    return _builders()[choice.builder]()


def _export_code_digest() -> str:
    """Exports are redone when the exporter or its templates change."""
    digest = hashlib.sha256()
    for folder in (
        REPO_ROOT / "export_models",
        REPO_ROOT / "templates",
        REPO_ROOT / "serving" / "repository",
    ):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in {".py", ".j2", ".jinja", ".pbtxt", ".json", ".jinja2"}:
                digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _source_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(source)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def accuracy_report(config_path: Path, served_name: str, task: Task) -> dict[str, object] | None:
    """The accuracy.json of the export's latest version, if it has one."""
    versions = config_path.parent / served_name / task.model_dir
    numbered = sorted((p for p in versions.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    report = numbered[-1] / ACCURACY_FILE if numbered else None
    return json.loads(report.read_text()) if report is not None and report.is_file() else None


def export_repository(
    choice: ModelChoice, source: Path, weight_format: str, work_dir: Path, log: Callable[[str], None]
) -> Path:
    """Export source with `python export_models/export_model.py` into its own repository; config.json path.

    `weight_format` is an export key (config.EXPORTS): a weight format, or int8-static.
    """
    repository = work_dir / "repos" / f"{choice.key}-{weight_format}"
    config_path = repository / CONFIG_FILE
    variant = EXPORTS_BY_KEY[weight_format]
    stamp = {
        "source": str(source),
        "source_digest": _source_digest(source),
        "weight_format": weight_format,
        "options": list(variant.options),
        "served_name": choice.served_name,
        "export_code": _export_code_digest(),
    }
    stamp_path = repository / STAMP_FILE
    if config_path.is_file() and stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
        log(f"  {choice.key} {weight_format}: reusing {repository}")
        return config_path
    shutil.rmtree(repository, ignore_errors=True)
    repository.mkdir(parents=True)
    command = export_command_line(
        choice.task.value,
        source,
        repository,
        *variant.options,
        model_name=choice.served_name,
        weight_format=variant.weight_format,
    )
    log(f"  {choice.key} {weight_format}: exporting ({' '.join(command[1:])})")
    started = time.monotonic()
    log_path = work_dir / "logs" / f"export-{choice.key}-{weight_format}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log_file:
        completed = subprocess.run(
            command,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    if completed.returncode != 0 or not config_path.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(
            f"export of {choice.key} {weight_format} failed (log {log_path}): " + " | ".join(tail)
        )
    stamp_path.write_text(json.dumps(stamp, indent=1))
    log(f"  {choice.key} {weight_format}: exported in {time.monotonic() - started:.0f} s")
    return config_path


def existing_exports(
    choice: ModelChoice, weight_formats: tuple[str, ...], exports_dir: Path
) -> tuple[str, dict[str, Path]]:
    """(the served name, config.json per weight format) of exports made beforehand."""
    repositories = {fmt: exports_dir / f"{choice.key}-{fmt}" / CONFIG_FILE for fmt in weight_formats}
    names = set()
    for fmt, config_path in repositories.items():
        try:
            entries = read_config(config_path)
        except ConfigError as error:
            raise RuntimeError(f"--exports_dir: no {fmt} export of the {choice.key}: {error}") from error
        if len(entries) != 1:
            raise RuntimeError(f"--exports_dir: {config_path} must list exactly one model")
        names.add(entries[0].name)
    if len(names) != 1:
        raise RuntimeError(
            f"--exports_dir: the {choice.key} exports name the model differently: {sorted(names)}"
        )
    return names.pop(), repositories


def recorded_source(config_path: Path, served_name: str) -> Path:
    """The Hugging Face folder an export came from, as its runtime info records it."""
    from export_models.compare_results import read_exported_model

    return Path(read_exported_model(config_path, served_name).model_info.source_model)


def prepare_models(
    choices: tuple[ModelChoice, ...],
    weight_formats: tuple[str, ...],
    work_dir: Path,
    overrides: Mapping[str, Path],
    log: Callable[[str], None],
    exports_dir: Path | None = None,
    st_static_samples: int | None = None,
) -> dict[str, PreparedModel]:
    """Sources and exports (`weight_formats`: export keys); with `st_static_samples`, also
    sentence-transformers' static int8 model of each (that many calibration samples)."""
    prepared = {}
    for choice in choices:
        log(f"model {choice.key}: {choice.label}")
        if exports_dir is not None and weight_formats:
            served_name, repositories = existing_exports(choice, weight_formats, exports_dir)
            source = overrides.get(choice.key) or recorded_source(
                next(iter(repositories.values())), served_name
            )
            log(f"  using the exports in {exports_dir} ({served_name}, from {source})")
        else:
            served_name, source = choice.served_name, source_folder(choice, overrides.get(choice.key))
            repositories = {
                fmt: export_repository(choice, source, fmt, work_dir, log) for fmt in weight_formats
            }
        reports = {fmt: accuracy_report(path, served_name, choice.task) for fmt, path in repositories.items()}
        st_static = None
        if st_static_samples is not None and choice.st_static:
            from benchmark.peers import prepare_st_static

            try:
                st_static = prepare_st_static(
                    choice.key, choice.task, source, _source_digest(source), work_dir, st_static_samples, log
                )
            except RuntimeError as error:  # its rows fail and say why; the other systems still run
                log(f"  {choice.key}: {error}")
        prepared[choice.key] = PreparedModel(
            choice.key,
            choice.task,
            choice.label,
            source,
            served_name,
            repositories,
            accuracy={fmt: report for fmt, report in reports.items() if report is not None},
            st_static=st_static,
        )
    return prepared
