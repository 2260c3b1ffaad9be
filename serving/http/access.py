"""Who may call, and how many at once: API keys and the concurrency gate (FastAPI dependencies).

Both raise ServingErrors, so their refusals go through the one error mapping (401, 429).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request

from serving.errors import Overloaded, Unauthorized

log = logging.getLogger("serving.http")

_KEY_FILE_CHECK_S = 1.0  # how often a changed key file is noticed


def _read_key_file(path: Path) -> tuple[str, ...]:
    keys = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
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
                    self._from_file = _read_key_file(self._file)
                    self._file_signature = signature
                    log.info("API keys: %d read from %s", len(self._from_file), self._file.name)
            except (OSError, UnicodeDecodeError) as error:
                # Keep the keys read last: a key file being rewritten must not open the server.
                log.error("API keys: cannot read %s (%s); keeping the keys read before", self._file, error)

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
    """Dependency: with keys configured, the request needs `Authorization: Bearer <key>`."""

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys

    async def __call__(self, request: Request) -> None:
        if self.keys.enabled and not self.keys.accepts(request.headers.get("authorization")):
            raise Unauthorized(
                "a valid API key is required: send `Authorization: Bearer <key>`", field="authorization"
            )


class ConcurrencyGate:
    """Dependency: at most `limit` model requests in progress; the next is refused at once (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0

    async def __call__(self) -> AsyncIterator[None]:
        if self.in_progress >= self.limit:
            raise Overloaded(
                f"{self.in_progress} requests are in progress, this server takes at most {self.limit} "
                "(--max_concurrent_requests): retry shortly"
            )
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1
