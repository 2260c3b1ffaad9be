"""The text_pairs API of the widely copied FastAPI bge-reranker service: POST /{model}/post.

`{"text_pairs": [["query", "document"], ...]}` -> the raw logits, in the order of the pairs. That
service's own example sends text_pairs as a string holding the list in Python literal syntax
(`"[['what is panda?', 'hi'], ...]"`); it is read here by a small parser that accepts exactly a
list of two-string lists or tuples, never by eval (ast.literal_eval included: its compiler recurses
on nesting and builds whatever the text holds before anything can be checked). The model name may
contain '/' and may be an alias. Pairs may have different queries: each query runs with its
documents, all in one request. Long documents are cut to fit, as that service's FlagReranker does.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
import warnings
from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, Request

from serving.errors import InvalidRequest
from serving.http.middleware import elapsed
from serving.http.responses import JSONBody, json_body
from serving.http.routes.service import ModelService
from serving.http.schemas import ERROR_RESPONSES, TextPairsRequest, TextPairsResponse
from serving.pipelines.framing import Overflow
from serving.pipelines.rerank import RerankParams

_SPACE = re.compile(r"\s*")
_MARKS = "[](),"
_QUOTES = "'\""
_CLOSING = {"[": "]", "(": ")"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# A text_pairs string longer than this is parsed on a worker thread (the loop keeps serving).
OFF_LOOP_CHARACTERS = 64 * 1024


class _Tokens:
    """The tokens of `text` (punctuation, or a one-line string literal with an optional r or u
    prefix), one at a time; ValueError names the character where reading stopped. Every step is a
    scan forward: no backtracking, so no input makes it slow."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self._tokens = self._scan()

    def _scan(self) -> Iterator[tuple[str, str]]:
        text = self.text
        while True:
            start = _SPACE.match(text, self.position).end()  # type: ignore[union-attr]
            if start == len(text):
                return
            if text[start] in _MARKS:
                self.position = start + 1
                yield "mark", text[start]
                continue
            prefixed = text[start] in "rRuU" and text.startswith(("'", '"'), start + 1)
            opening = start + 1 if prefixed else start
            if text[opening] not in _QUOTES:
                raise ValueError(f"unexpected {text[start]!r} at character {start}")
            end = _closing_quote(text, opening)
            self.position = end + 1
            yield "string", _string_value(text[start : end + 1], start)

    def next(self, expected: str) -> tuple[str, str]:
        token = next(self._tokens, None)
        if token is None:
            raise ValueError(f"the text ends where {expected} was expected")
        return token

    def mark(self, allowed: str) -> str:
        kind, value = self.next(" or ".join(repr(mark) for mark in allowed))
        if kind != "mark" or value not in allowed:
            raise ValueError(
                f"expected {' or '.join(repr(m) for m in allowed)} before character {self.position}"
            )
        return value

    def string(self) -> str:
        kind, value = self.next("a quoted string")
        if kind != "string":
            raise ValueError(f"expected a quoted string before character {self.position}")
        return value

    def finished(self) -> bool:
        return next(self._tokens, None) is None


def _closing_quote(text: str, opening: int) -> int:
    """Where the string literal opened at `opening` ends (its closing quote, not escaped)."""
    quote, position = text[opening], opening + 1
    while True:
        end = text.find(quote, position)
        if end < 0:
            raise ValueError(f"the string at character {opening} is not closed")
        backslashes = 0
        while text[end - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            if "\n" in text[opening:end]:
                raise ValueError(f"the string at character {opening} spans lines")
            return end
        position = end + 1


def _string_value(literal: str, position: int) -> str:
    """The value of one string literal (a single token, so literal_eval sees nothing nested)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes such as '\d' only warn
            value = ast.literal_eval(literal)
    except (SyntaxError, ValueError) as error:
        raise ValueError(f"the string at character {position} is not a valid literal") from error
    if not isinstance(value, str):
        raise ValueError(f"the item at character {position} is not a string")
    return value


def parse_text_pairs(text: str) -> list[list[str]]:
    """`[['q', 'd'], ('q', 'd'), ...]` (a trailing comma allowed) -> [[q, d], ...]; ValueError otherwise."""
    tokens = _Tokens(text)
    tokens.mark("[")
    pairs: list[list[str]] = []
    opening = tokens.mark("[(]")
    while opening != "]":
        query = tokens.string()
        tokens.mark(",")
        document = tokens.string()
        closing = _CLOSING[opening]
        if tokens.mark(f",{closing}") == ",":
            tokens.mark(closing)
        pairs.append([query, document])
        if tokens.mark(",]") == "]":
            break
        opening = tokens.mark("[(]")
    if not tokens.finished():
        raise ValueError(f"unexpected text after the list, at character {tokens.position}")
    return pairs


def checked_pairs(value: list[list[str]] | str) -> list[list[str]]:
    if isinstance(value, str):
        try:
            value = parse_text_pairs(value)
        except ValueError as error:
            raise InvalidRequest(
                f"not a list of [query, document] pairs: {error}", field="text_pairs"
            ) from error
    if not value:
        raise InvalidRequest("must not be empty", field="text_pairs")
    for index, pair in enumerate(value):
        if len(pair) != 2:
            raise InvalidRequest(f"item {index} must be a [query, document] pair", field="text_pairs")
    return value


def by_query(pairs: list[list[str]]) -> tuple[list[tuple[str, list[str]]], list[int]]:
    """The pairs grouped by query (queries in order of appearance), and where each pair's score lands
    in the scores of the groups laid end to end."""
    groups: dict[str, list[int]] = {}
    for index, (query, _) in enumerate(pairs):
        groups.setdefault(query, []).append(index)
    order = [index for indices in groups.values() for index in indices]
    position = [0] * len(pairs)
    for place, index in enumerate(order):
        position[index] = place
    return [(query, [pairs[i][1] for i in indices]) for query, indices in groups.items()], position


def build_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    async def text_pairs(model: str, body: TextPairsRequest, request: Request) -> JSONBody:
        """Score [query, document] pairs with the model (name or alias, may contain '/'): raw logits in
        the order of the pairs."""
        arrived = time.time() - elapsed(request.scope)
        if isinstance(body.text_pairs, str) and len(body.text_pairs) > OFF_LOOP_CHARACTERS:
            pairs = await asyncio.to_thread(checked_pairs, body.text_pairs)
        else:
            pairs = checked_pairs(body.text_pairs)
        groups, position = by_query(pairs)
        params = RerankParams(raw_scores=True, overflow=Overflow.CUT_RIGHT)
        served = await service.rerank_groups(request, model, groups, params)
        scores = served.outcome.scores[position].tolist()
        reply = {
            "text_pairs": pairs,
            "rerank_scores": scores,
            "scores": scores,
            "request_time": datetime.fromtimestamp(arrived).strftime(TIME_FORMAT),
            "response_time": datetime.now().strftime(TIME_FORMAT),
            "code": 200,
        }
        return json_body(reply, headers=served.headers)

    router.add_api_route(
        "/{model:path}/post",
        text_pairs,
        methods=["POST"],
        response_model=TextPairsResponse,
        responses=ERROR_RESPONSES,
        tags=["text-pairs"],
    )
    return router
