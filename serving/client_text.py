"""Client-supplied text made safe to write to the log: one line, no control characters, bounded.

A model name, a path or an error message quoting a request can hold a newline (a forged second log
line), NUL, a terminal escape sequence or a megabyte of text. Everything logged that a client
chose passes through `loggable`. At the bottom of the package (no imports) so the registry and the
pipelines use it as the web layer does.
"""

from __future__ import annotations

# Characters of a client value kept in a log line; the rest is replaced by a marker with the count.
LOGGED_CHARACTERS = 200


def _escaped(character: str) -> str:
    if character == "\\":
        return "\\\\"
    if character.isprintable():
        return character
    # Controls, separators, format characters (bidi overrides), lone surrogates.
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def loggable(value: object, limit: int = LOGGED_CHARACTERS) -> str:
    """`value` as one log-safe line: control characters escaped (\\n as \\x0a, ESC as \\x1b), at
    most `limit` characters of it kept, then `...[N more characters]`."""
    text = value if isinstance(value, str) else str(value)
    kept, rest = text[:limit], len(text) - limit
    escaped = "".join(_escaped(c) for c in kept) if not kept.isprintable() or "\\" in kept else kept
    return escaped + (f"...[{rest} more characters]" if rest > 0 else "")
