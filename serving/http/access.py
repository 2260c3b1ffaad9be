"""Who may call, and how many at once: API keys, the concurrency gate and the memory budget of
request bodies.

routes/__init__.py says which routes need a key and which pass the gate (AccessRules);
AdmissionMiddleware (middleware.py) finds the route a request is for and applies its rules before
reading the body, so a request without a key or over the limit costs no body read. Refusals are
ServingErrors, so they go through the one error mapping (401, 429).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from serving.errors import Overloaded, Unauthorized

log = logging.getLogger("serving.http")

_KEY_FILE_CHECK_S = 1.0  # how often a changed key file is noticed


# What a key may hold: printable ASCII without spaces or commas. A Bearer credential is one token
# (RFC 6750's b64token: no spaces), commas separate keys in --api_key and OVTEXT_API_KEYS, and a key
# with spaces was read as several keys by earlier versions: refusing it at start-up says so instead
# of accepting a different set of keys than before.
KEY_RULE = "a key is printable ASCII without spaces or commas"


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an API key (never quoting it: it is a secret), or None."""
    if not key:
        return "is empty"
    if key != key.strip():
        return f"starts or ends with a space ({KEY_RULE})"
    if " " in key:
        return f"holds a space ({KEY_RULE}; separate keys with commas)"
    if "," in key:
        return f"holds a comma ({KEY_RULE})"
    if not all("!" <= character <= "~" for character in key):
        return f"holds a control or non-ASCII character ({KEY_RULE})"
    return None


def read_key_file(path: Path) -> tuple[str, ...]:
    """The keys of a key file: one a line, blank lines and `#` comments skipped. ValueError names
    the line of a key that breaks the rule."""
    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        problem = key_problem(line)
        if problem:
            raise ValueError(f"{path.name} line {number}: the key {problem}")
        keys.append(line)
    return tuple(keys)


class ApiKeys:
    """The accepted keys: given ones plus a key file re-read when it changes. None: open server."""

    def __init__(self, keys: tuple[str, ...], key_file: Path | None) -> None:
        self._given = tuple(keys)
        self._file = key_file
        self._from_file: tuple[str, ...] = ()
        self._file_signature: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._refresh(force=True)

    @property
    def enabled(self) -> bool:
        return self._file is not None or bool(self._given)

    def _refresh(self, force: bool = False) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < _KEY_FILE_CHECK_S:
            return
        with self._lock:
            self._checked_at = now
            try:
                stat = self._file.stat()
                signature = (stat.st_mtime_ns, stat.st_size)
                if signature != self._file_signature:
                    self._from_file = read_key_file(self._file)
                    self._file_signature = signature
                    log.info("API keys: %d read from %s", len(self._from_file), self._file.name)
            except (OSError, UnicodeDecodeError, ValueError) as error:
                # Keep the keys read last: a key file being rewritten must not open the server.
                log.error(
                    "API keys: cannot read %s (%s); keeping the keys read before", self._file.name, error
                )

    def accepts(self, authorization: str | None) -> bool:
        self._refresh()
        if authorization is None:
            return False
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return False
        offered = credential.strip().encode("utf-8", "replace")
        # Compare with every key, in constant time each, so timing tells nothing about a key.
        matches = [hmac.compare_digest(offered, key.encode("utf-8")) for key in self._given + self._from_file]
        return any(matches)


class KeyCheck:
    """With keys configured, a request needs `Authorization: Bearer <key>`."""

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys

    def check(self, scope: Scope) -> None:
        if not self.keys.enabled:
            return
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if not self.keys.accepts(None if authorization is None else authorization.decode("latin-1")):
            raise Unauthorized(
                "a valid API key is required: send `Authorization: Bearer <key>`", field="authorization"
            )


class ConcurrencyGate:
    """At most `limit` requests in progress (from before the body is read to the end of the
    answer); the next is refused at once (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0

    def enter(self) -> None:
        if self.in_progress >= self.limit:
            raise Overloaded(
                f"{self.in_progress} requests are in progress, this server takes at most {self.limit} "
                "(--max_concurrent_requests): retry shortly"
            )
        self.in_progress += 1

    def leave(self) -> None:
        self.in_progress -= 1


class BodyBudget:
    """The bytes of request bodies held at once (being received or being answered), across all
    requests: a body that would take the total over `limit` is refused (429) instead of read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reserve(self, size: int) -> None:
        if self.held + size > self.limit:
            raise Overloaded(
                f"request bodies being received hold {self.held} bytes and this one needs {size} more; "
                f"this server holds at most {self.limit} (--max_body_memory): retry shortly",
                field="body",
            )
        self.held += size

    def release(self, size: int) -> None:
        self.held -= size


@dataclass
class AccessRules:
    """Which routes need a key and which pass the concurrency gate; routes not listed are open."""

    rules: list[tuple[BaseRoute, KeyCheck | None, ConcurrencyGate | None]] = field(default_factory=list)

    def add(self, routes: list[BaseRoute], key: KeyCheck | None, gate: ConcurrencyGate | None = None) -> None:
        self.rules.extend((route, key, gate) for route in routes)

    def find(self, scope: Scope) -> tuple[KeyCheck | None, ConcurrencyGate | None]:
        """The rules of the route the request is for ((None, None) for an open route, or a path no
        route takes: it ends in a 404 or 405 without reading the body). The route is recorded in the
        scope as routing records it, so a request refused before routing is counted by route."""
        for route, key, gate in self.rules:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                return key, gate
        return None, None
