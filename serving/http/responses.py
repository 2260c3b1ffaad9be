"""JSON responses: orjson (numpy arrays written directly), never NaN, always encodable.

A client may put lone surrogates ("\\ud800", legal in a JSON escape, not in UTF-8) in any string
we echo back (a model name in an error, a returned document); they become U+FFFD instead of
making the response unencodable. Large payloads (a 1000 x 1024 embeddings answer) are rendered
on a worker thread a slice at a time, so the event loop keeps answering other requests.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from starlette.responses import JSONResponse

from serving.pipelines.quantization import quantize

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Values (floats, ids) above which a list payload is rendered off the event loop.
OFF_LOOP_VALUES = 50_000
_SLICE_ITEMS = 32


def without_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, Mapping):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_surrogates(item) for item in value]
    return value


def render(content: Any) -> bytes:
    try:
        return orjson.dumps(content, option=JSON_OPTIONS)
    except TypeError:  # a lone surrogate somewhere in a string
        return orjson.dumps(without_surrogates(content), option=JSON_OPTIONS)


class JSONBody(JSONResponse):
    """A JSON response rendered by orjson (content may already be rendered bytes)."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else render(content)


# A long list, or an object of long lists (Cohere's embeddings by type).
Items = Sequence[Any] | np.ndarray | Mapping[str, Sequence[Any] | np.ndarray]


def _render_items(items: Sequence[Any] | np.ndarray) -> bytes:
    """A list, a slice of items at a time: the GIL is let go between."""
    slices = (
        render(items[start : start + _SLICE_ITEMS])[1:-1] for start in range(0, len(items), _SLICE_ITEMS)
    )
    return b"[" + b",".join(slices) + b"]"


def _render_with_list(head: dict[str, Any], key: str, items: Items) -> bytes:
    """`head` plus `key`: `items` (written last)."""
    if isinstance(items, Mapping):
        value = b"{" + b",".join(render(name) + b":" + _render_items(v) for name, v in items.items()) + b"}"
    else:
        value = _render_items(items)
    return render(head)[:-1] + (b"," if head else b"") + render(key) + b":" + value + b"}"


async def json_with_list(
    head: dict[str, Any],
    key: str,
    items: Items,
    values: int,
    headers: Mapping[str, str] | None = None,
) -> JSONBody:
    """A response whose `key` holds a long list (or an object of long lists); rendered off the loop
    when it holds many values."""
    if values > OFF_LOOP_VALUES:
        body = await asyncio.to_thread(_render_with_list, head, key, items)
    else:
        body = render({**head, key: items})
    return JSONBody(body, headers=dict(headers or {}))


async def json_list(
    items: Sequence[Any] | np.ndarray, values: int, headers: Mapping[str, str] | None = None
) -> JSONBody:
    """A response that is a list (TEI's [[...], ...]); rendered off the loop when it holds many values."""
    body = await asyncio.to_thread(_render_items, items) if values > OFF_LOOP_VALUES else render(items)
    return JSONBody(body, headers=dict(headers or {}))


def json_body(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> JSONBody:
    return JSONBody(render(content), status_code=status_code, headers=dict(headers or {}))


def float_list(values: np.ndarray) -> np.ndarray:
    """float32 values as orjson writes them (shortest repr of each float32)."""
    return np.ascontiguousarray(values, dtype=np.float32)


def base64_rows(vectors: np.ndarray) -> list[str]:
    """Each row as base64 of little-endian float32, as the OpenAI SDK decodes it."""
    little_endian = np.ascontiguousarray(vectors, dtype="<f4")
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]


def embedding_rows(
    vectors: np.ndarray, kind: str, normalized: bool, field: str
) -> Sequence[Any] | np.ndarray:
    """The rows of an embeddings answer as `kind` asks: float, base64 (of float32), or quantized
    (int8, uint8, binary, ubinary: serving/pipelines/quantization.py). `field` names the request's
    choice in errors; `normalized`: whether the vectors are L2-normalized."""
    if kind == "float":
        return float_list(vectors)
    if kind == "base64":
        return base64_rows(vectors)
    return quantize(vectors, kind, normalized, field)
