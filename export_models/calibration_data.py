"""Calibration and evaluation texts for static int8 (`--quantization static`), and `--calibration_data`.

Two shipped sets per task, package data in export_models/data/ (written by
tools/calibration_sets.py): a calibration set the quantizer sees, and a held-out evaluation set
the accuracy report scores, with no item in common. An export only reads them.

A user's --calibration_data file: JSONL, one object a line, {"query", "document"} (rerank) or
{"text"} (embeddings); or plain text, one item a line: `query<TAB>document` (rerank) or the input
itself (embeddings). Consecutive pairs with the same query form one request (at most 16
documents); embeddings inputs go 8 to a request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from export_models.errors import InvalidOptionError
from serving.repository.layout import Task

Purpose = Literal["calibration", "evaluation"]
DATA_PACKAGE = "export_models.data"
DOCUMENTS_PER_REQUEST = 16  # most documents of one rerank request built from a file
INPUTS_PER_REQUEST = 8  # embeddings inputs per request built from a file


@dataclass(frozen=True)
class RerankRequest:
    query: str
    documents: tuple[str, ...]


@dataclass(frozen=True)
class EmbeddingsRequest:
    texts: tuple[str, ...]


Request = RerankRequest | EmbeddingsRequest


def shipped_file(task: Task, purpose: Purpose) -> str:
    return f"{task.value}-{purpose}.jsonl"


def parse_lines(task: Task, lines: list[str], origin: str) -> list[Request]:
    """Requests from JSONL or plain text lines (module docstring); InvalidOptionError names the line."""
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise InvalidOptionError(f"--calibration_data {origin}: no items")
    is_jsonl = numbered[0][1].lstrip().startswith("{")
    items: list[tuple[str, str]] = []  # (query, document) or ("", text)
    keys = ("query", "document") if task is Task.RERANK else ("text",)
    for number, line in numbered:
        where = f"--calibration_data {origin}, line {number}"
        if is_jsonl:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidOptionError(f"{where}: not JSON ({error.msg})") from None
            values = [record.get(key) if isinstance(record, dict) else None for key in keys]
            if not all(isinstance(value, str) for value in values):
                wanted = ", ".join(f'"{key}"' for key in keys)
                raise InvalidOptionError(f"{where}: a {task.value} item is an object with string {wanted}")
            items.append((values[0], values[1]) if task is Task.RERANK else ("", values[0]))
        elif task is Task.RERANK:
            query, tab, document = line.rstrip("\n").partition("\t")
            if not tab:
                raise InvalidOptionError(f"{where}: a plain-text rerank item is query<TAB>document")
            items.append((query, document))
        else:
            items.append(("", line.rstrip("\n")))
    return _group(task, items)


def _group(task: Task, items: list[tuple[str, str]]) -> list[Request]:
    requests: list[Request] = []
    if task is Task.EMBEDDINGS:
        texts = [text for _, text in items]
        return [EmbeddingsRequest(tuple(texts[i : i + INPUTS_PER_REQUEST]))
                for i in range(0, len(texts), INPUTS_PER_REQUEST)]  # fmt: skip
    query: str | None = None
    documents: list[str] = []
    for item_query, document in items:
        if item_query != query or len(documents) == DOCUMENTS_PER_REQUEST:
            if documents:
                assert query is not None
                requests.append(RerankRequest(query, tuple(documents)))
            query, documents = item_query, []
        documents.append(document)
    if documents:
        assert query is not None
        requests.append(RerankRequest(query, tuple(documents)))
    return requests


def read_file(task: Task, path: Path) -> list[Request]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InvalidOptionError(f"--calibration_data {path}: cannot read it: {reason}") from None
    return parse_lines(task, text.splitlines(), str(path))


def shipped(task: Task, purpose: Purpose) -> list[Request]:
    """A set that ships with the project (export_models/data/)."""
    text = resources.files(DATA_PACKAGE).joinpath(shipped_file(task, purpose)).read_text(encoding="utf-8")
    return parse_lines(task, text.splitlines(), f"(shipped {shipped_file(task, purpose)})")


def item_count(requests: list[Request]) -> int:
    return sum(len(r.documents) if isinstance(r, RerankRequest) else len(r.texts) for r in requests)
