"""A small parser for the protobuf text format used by graph.pbtxt.

Enough of the format for MediaPipe graphs as OVMS users write them:
fields `key: value`, messages `key { ... }`, `key: { ... }` or `key < ... >`, extension keys in
brackets (`[type.googleapis.com / mediapipe.RerankCalculatorOVOptions]`), strings in ' or "
(adjacent literals concatenate), numbers, enum words and booleans, lists `key: [1, 2]`,
optional `,` / `;` separators and `#` comments.

The result is a dict per message. A key that occurs once maps to its value; a key that
occurs several times (a repeated field) maps to a list of values: use `all_values()` to read
a field that may repeat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}\[\]<>:,;/])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
_TRUE = {"true", "True", "t"}
_FALSE = {"false", "False", "f"}


class PbtxtError(ValueError):
    """The text is not valid protobuf text format; the message names line, column and the kind of
    problem, never the text itself (the file may be something else entirely, holding secrets)."""


def _character(char: str) -> str:
    """A character as messages show it: punctuation as itself, anything else by its code point."""
    return repr(char) if char in "=()!?*&%$@^|~`+-.\"'" else f"U+{ord(char):04X}"


def _kind(token: _Token) -> str:
    """A token as messages show it: punctuation as itself, other tokens by their kind."""
    if token.kind == "punct":
        return repr(token.text)
    return {"string": "a string", "number": "a number", "ident": "a word"}.get(token.kind, "a token")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, line, line_start = 0, 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise PbtxtError(
                f"line {line}, column {position - line_start + 1}: unexpected character "
                f"{_character(text[position])}"
            )
        kind = match.lastgroup or ""
        value = match.group()
        if kind != "ws":
            tokens.append(_Token(kind, value, line, position - line_start + 1))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = position + value.rindex("\n") + 1
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _number(text: str) -> int | float:
    cleaned = text.rstrip("fF") if not text.lower().startswith(("0x", "-0x", "+0x")) else text
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", cleaned):
        return int(cleaned, 16)
    if re.fullmatch(r"[-+]?\d+", cleaned):
        return int(cleaned)
    return float(cleaned)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise PbtxtError(f"unexpected end of text: expected {expected}")
        self.index += 1
        return token

    def _error(self, token: _Token, problem: str) -> PbtxtError:
        return PbtxtError(f"line {token.line}, column {token.column}: {problem}")

    def parse_message(self, closing: str | None) -> Message:
        message: Message = {}
        while True:
            token = self._peek()
            if token is None:
                if closing is not None:
                    raise PbtxtError(f"unexpected end of text: missing '{closing}'")
                return message
            if token.kind == "punct" and token.text == closing:
                self.index += 1
                return message
            if token.kind == "punct" and token.text in ",;":
                self.index += 1
                continue
            key = self._key()
            value = self._field_value(key)
            if key in message:
                existing = message[key]
                if isinstance(existing, list) and getattr(existing, "_repeated", False):
                    existing.append(value)
                else:
                    message[key] = _Repeated([existing, value])
            else:
                message[key] = value

    def _key(self) -> str:
        token = self._next("a field name")
        if token.kind == "ident":
            return token.text
        if token.kind == "punct" and token.text == "[":
            # Extension or Any type URL: everything up to ']' with the spaces removed.
            parts: list[str] = []
            while True:
                part = self._next("']'")
                if part.kind == "punct" and part.text == "]":
                    break
                parts.append(part.text)
            if not parts:
                raise self._error(token, "empty extension name")
            return "[" + "".join(parts) + "]"
        raise self._error(token, f"expected a field name, found {_kind(token)}")

    def _field_value(self, key: str) -> Any:
        token = self._next("a value")
        has_colon = token.kind == "punct" and token.text == ":"
        if has_colon:
            token = self._next("a value")
        if token.kind == "punct" and token.text in "{<":
            return self.parse_message("}" if token.text == "{" else ">")
        if not has_colon:
            raise self._error(token, f"expected ':' or '{{' after a field name, found {_kind(token)}")
        if token.kind == "punct" and token.text == "[":
            return self._list(key)
        return self._scalar(token, key)

    def _list(self, key: str) -> list[Any]:
        values: list[Any] = []
        while True:
            token = self._next("']'")
            if token.kind == "punct" and token.text == "]":
                return values
            if token.kind == "punct" and token.text == ",":
                continue
            if token.kind == "punct" and token.text in "{<":
                values.append(self.parse_message("}" if token.text == "{" else ">"))
            else:
                values.append(self._scalar(token, key))

    def _scalar(self, token: _Token, key: str) -> Any:
        if token.kind == "string":
            text = _unquote(token.text)
            # Adjacent string literals concatenate, as in C.
            while (following := self._peek()) is not None and following.kind == "string":
                self.index += 1
                text += _unquote(following.text)
            return text
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "ident":
            if token.text in _TRUE:
                return True
            if token.text in _FALSE:
                return False
            return token.text  # enum word, e.g. MEAN
        raise self._error(token, f"expected a value, found {_kind(token)}")


class _Repeated(list):  # type: ignore[type-arg]
    """A list made by a field that occurs several times (told apart from a `[...]` value)."""

    _repeated = True


def parse(text: str) -> Message:
    """Parse protobuf text format into nested dicts (see the module docstring)."""
    return _Parser(_tokenize(text)).parse_message(closing=None)


def all_values(message: Message, key: str) -> list[Any]:
    """Every value of a field that may repeat: [] when absent, [v] when it occurs once."""
    if key not in message:
        return []
    value = message[key]
    if isinstance(value, _Repeated):
        return list(value)
    return [value]
