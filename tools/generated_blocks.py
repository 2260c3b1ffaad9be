"""Generated blocks in hand-written pages: the text between a start and an end marker, rewritten
by the command that generates it while the rest of the page stays as it is."""

from __future__ import annotations

import re


class MissingMarkers(ValueError):
    """The page has no start ... end markers to rewrite between."""


def replace_block(text: str, start: str, end: str, block: str) -> str:
    """`text` with what lies between the first `start` and the next `end` replaced by `block`."""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise MissingMarkers(f"no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{block}{end}", text, count=1)
