"""The session's exports: each (source model, weight format) exported once, with the real CLI.

Every export goes into a repository of its own under the session folder
(`<root>/<kind>-<weight format>/config.json`, the model named `test/<kind>`), so two exports can
run at the same time without both rewriting one config.json. Tests never serve or edit these
folders: they copy a model into a repository of their own (tests/support/repository.py) and
derive option variants there by rewriting graph.pbtxt or subconfig.json.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops: needed to read tokenizer IRs)

from benchmark.config import EXPORTS_BY_KEY
from export_models import calibration_data
from serving.repository.layout import (
    CONFIG_FILE,
    MODEL_BIN,
    MODEL_XML,
    TOKENIZER_DIR,
    ModelInfo,
    Task,
    TokenizerInfo,
    read_model_info,
    read_tokenizer_info,
)
from tests.support import export_cache
from tools import calibration_sets

# The fixture models (tests/conftest.py builds their Hugging Face folders) and their task.
KINDS: dict[str, Task] = {
    "cross-encoder": Task.RERANK,  # BertForSequenceClassification fine-tuned from MiniLM, WordPiece
    "xlmr": Task.RERANK,  # tiny XLMRobertaForSequenceClassification, Unigram/Metaspace tokenizer
    "minilm": Task.EMBEDDINGS,  # the real sentence-transformers/all-MiniLM-L6-v2
}
# The export variants, as the benchmark names them: a --weight-format, or int8-static
# (--weight-format int8 --quantization static, with the default accuracy gate).
WEIGHT_FORMATS = tuple(EXPORTS_BY_KEY)
ExportKey = tuple[str, str]  # (kind, weight format or int8-static)
CALIBRATION_STRIDE = 8
RunExport = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class Exported:
    """One export of the session: version 1 of `model_name`, alone in repository `repo`."""

    kind: str
    weight_format: str  # an export variant: a --weight-format, or int8-static
    task: Task
    source: Path  # the Hugging Face folder it was exported from
    repo: Path
    model_name: str

    @property
    def config_path(self) -> Path:
        return self.repo / CONFIG_FILE

    @property
    def model_dir(self) -> Path:
        """graph.pbtxt, subconfig.json, tokenizer/1, rerank/1 or embeddings/1."""
        return self.repo / self.model_name

    def version_dirs(self, version: int = 1) -> tuple[Path, Path]:
        """(tokenizer/<version>, rerank|embeddings/<version>)."""
        return (
            self.model_dir / TOKENIZER_DIR / str(version),
            self.model_dir / self.task.model_dir / str(version),
        )

    @property
    def model_xml(self) -> Path:
        return self.version_dirs()[1] / MODEL_XML

    @property
    def model_bin(self) -> Path:
        return self.version_dirs()[1] / MODEL_BIN

    @property
    def tokenizer_xml(self) -> Path:
        return self.version_dirs()[0] / MODEL_XML

    def tokenizer_info(self) -> TokenizerInfo:
        return read_tokenizer_info(ov.Core().read_model(self.tokenizer_xml))

    def model_info(self) -> ModelInfo:
        return read_model_info(ov.Core().read_model(self.model_xml))


def activation_quantizers(model_xml: Path) -> int:
    """FakeQuantize ops in an IR: > 0 when activations are quantized (static int8), not only weights."""
    model = ov.Core().read_model(model_xml)
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


class SessionExports:
    """Exports on demand, two at a time in the background; `get` waits for the one it needs.

    `source_of(kind)` gives the Hugging Face folder of a kind; it is called on the calling
    thread (it may build the model through a pytest fixture), the export runs on a worker.
    """

    def __init__(self, root: Path, run_export: RunExport, source_of: Callable[[str], Path], workers: int = 2):
        self.root = root
        self._run_export = run_export
        self._source_of = source_of
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export")
        self._futures: dict[ExportKey, Future[Exported]] = {}

    def prefetch(self, keys: Iterable[ExportKey]) -> None:
        """Start these exports (in this order) without waiting for them."""
        for kind, weight_format in keys:
            self._submit(kind, weight_format)

    def get(self, kind: str, weight_format: str = "fp32") -> Exported:
        return self._submit(kind, weight_format).result()

    def get_all(self, keys: Iterable[ExportKey]) -> list[Exported]:
        """Several exports, started together (so they run in parallel)."""
        futures = [self._submit(kind, weight_format) for kind, weight_format in keys]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Drop exports nobody asked for yet; wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, kind: str, weight_format: str) -> Future[Exported]:
        if kind not in KINDS or weight_format not in WEIGHT_FORMATS:
            raise ValueError(f"no session export {kind!r} {weight_format!r}")
        key = (kind, weight_format)
        if key not in self._futures:
            source = self._source_of(kind)
            self._futures[key] = self._pool.submit(self._export, kind, weight_format, source)
        return self._futures[key]

    def _calibration_file(self, kind: str, task: Task) -> Path:
        """Static int8 calibrates on every 8th request of the shipped set: all its languages and
        lengths at an eighth of NNCF's statistics time (the evaluation set stays the shipped one)."""
        path = self.root / f"{kind}-calibration.jsonl"
        requests = calibration_data.shipped(task, "calibration")[::CALIBRATION_STRIDE]
        path.write_text(calibration_sets.to_jsonl(requests), encoding="utf-8")
        return path

    def _export(self, kind: str, weight_format: str, source: Path) -> Exported:
        """The export, from the cache of earlier runs when nothing that determines it changed
        (tests/support/export_cache.py); tests/export checks the export itself with the CLI."""
        task = KINDS[kind]
        exported = Exported(
            kind, weight_format, task, source, self.root / f"{kind}-{weight_format}", f"test/{kind}"
        )
        variant = EXPORTS_BY_KEY[weight_format]
        options = list(variant.options)
        # The key: the options without paths (the calibration file's path changes every session,
        # its content is hashed instead).
        arguments = [task.value, exported.model_name, variant.weight_format, *options]
        inputs: list[Path] = []
        if variant.static:
            calibration = self._calibration_file(kind, task)
            options += ["--calibration_data", str(calibration)]
            inputs.append(calibration)

        def export(repo: Path) -> None:
            done = self._run_export(
                task.value, source, repo, *options, model_name=exported.model_name,
                weight_format=variant.weight_format,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"export of {kind} {weight_format} failed:\n{done.stdout}\n{done.stderr}")

        def complete(repo: Path) -> bool:
            """Version 1 of both IRs is in `repo` (the session's folder or a cache entry)."""
            inside = (path.relative_to(exported.repo) for path in exported.version_dirs())
            return all((repo / folder / MODEL_XML).is_file() for folder in inside)

        key = export_cache.export_key(source, arguments, inputs)
        export_cache.cached_repository(f"{kind}-{weight_format}", key, exported.repo, export, complete)
        if not complete(exported.repo):
            raise RuntimeError(f"export of {kind} {weight_format} wrote no version 1 in {exported.model_dir}")
        return exported
