"""Reading the repository's small files safely: where they may be, how big, and only when changed.

The registry polls config.json, aliases.json, each model's graph.pbtxt and subconfig.json (and a
flat folder's Hugging Face config.json) every --poll_interval. RepositoryFiles parses a file again
only when its (size, mtime_ns, ctime_ns, inode, device) changed, refuses a file over its size
limit before reading it, and refuses any file whose real path (symlinks followed) lies outside the
repository and the allow-listed model roots.

The repository is the folder config.json is in, as given (not after following symlinks): a
Kubernetes ConfigMap mounts config.json as a symlink to `..data/config.json`, and `..data` is a
symlink inside that folder, so the mounted files resolve inside it.

Messages never quote a file's content or the server's absolute paths: they name the file
relative to the repository (or an allowed root), and say what kind of problem it is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1024 * 1024

# The largest file of each kind the server reads. Each is far over what a real repository holds
# and small enough that parsing one stays a fraction of a second:
# - config.json lists every model, a few hundred bytes each: 4 MiB is over 10,000 models;
# - aliases.json holds a few names per model: 4 MiB is over 100,000 aliases;
# - subconfig.json names two servables (about 500 bytes) and graph.pbtxt is one graph (OVMS's own
#   are under 10 KB): 1 MiB is a hundred times either;
# - a flat folder's Hugging Face config.json and tokenizer_config.json: 16 MiB (a tokenizer_config.json
#   listing every added token runs to a few MB).
SIZE_LIMITS: dict[str, int] = {
    "config.json": 4 * MiB,
    "aliases.json": 4 * MiB,
    "subconfig.json": 1 * MiB,
    "graph.pbtxt": 1 * MiB,
    "hf_config": 16 * MiB,
}


class ConfigError(ValueError):
    """A configuration file is missing, wrong, too big or outside the allowed roots.

    The message names the file (relative to its root) and the field; never the file's content.
    """


# What identifies one state of a file: a rewrite, a replacement (new inode) or a touch changes it.
FileKey = tuple[int, int, int, int, int]


def _key(stat: os.stat_result) -> FileKey:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def describe_size(size: int) -> str:
    return f"{size / MiB:.1f} MiB" if size >= MiB else f"{size} bytes"


# A file modified this recently may be modified again within the filesystem's timestamp
# granularity without its key changing (same size, same mtime): its parse is not trusted yet.
RACY_NS = 2_000_000_000


@dataclass
class _Cached:
    key: FileKey
    value: Any = None
    error: ConfigError | None = None
    used: bool = True
    racy: bool = False  # modified within RACY_NS of being read: parse it again next time


class RepositoryFiles:
    """The repository root, the allowed model roots, and the parsed files cached by their stat.

    One instance per registry; its reads happen on the loading thread (and POST /v1/config/reload,
    serialized by the registry's reload lock); a lock keeps the cache consistent anyway.
    """

    def __init__(self, root: Path, allowed_roots: Iterable[Path] = (), *, enforce_roots: bool = True) -> None:
        """`enforce_roots` False: any path may be read (the operator's own tools: compare_results,
        the corpus job); the server always enforces them."""
        self.enforce_roots = enforce_roots
        # The folder as given (absolute, symlinks kept) and its real path: both count as inside.
        self.root = Path(os.path.abspath(root))
        roots = [self.root, Path(os.path.realpath(self.root))]
        for extra in allowed_roots:
            roots += [Path(os.path.abspath(extra)), Path(os.path.realpath(extra))]
        self.allowed_roots: tuple[Path, ...] = tuple(dict.fromkeys(roots))
        self.parses = 0  # files parsed (not served from the cache): the cache's effect, measurable
        self._cache: dict[tuple[Path, str], _Cached] = {}
        self._remembered: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self._lock = threading.Lock()

    # ---- where files may be ---------------------------------------------------------------

    def shown(self, path: Path | str) -> str:
        """`path` as messages show it: relative to the repository or an allowed root, else its name."""
        absolute = Path(os.path.abspath(path))
        for root in self.allowed_roots:
            if absolute.is_relative_to(root):
                relative = absolute.relative_to(root).as_posix()
                return relative if relative != "." else root.name
        return absolute.name

    def is_allowed(self, path: Path | str) -> bool:
        if not self.enforce_roots:
            return True
        real = Path(os.path.realpath(path))
        return any(real.is_relative_to(root) for root in self.allowed_roots)

    def check(self, path: Path | str, where: str | None = None) -> None:
        """Raise ConfigError when `path` (symlinks followed) lies outside the allowed roots.

        `where` names what gave the path ("config.json: mediapipe_config_list[0]: base_path").
        """
        if not self.is_allowed(path):
            named = f"{where} '{self.shown(path)}'" if where else self.shown(path)
            raise ConfigError(
                f"{named} resolves outside the model repository and the allowed model roots "
                "(--allowed_model_root); not read"
            )

    # ---- reading ---------------------------------------------------------------------------

    def read(self, path: Path, parse: Callable[[str], Any], kind: str) -> Any:
        """parse(text of `path`), cached until the file changes; ConfigError if not usable.

        `kind` names the size limit (SIZE_LIMITS) and the parser (one file can be read two ways).
        An error is cached as well: a broken file is not parsed again until it changes.
        FileNotFoundError passes through (callers decide what a missing file means).
        """
        self.check(path)
        shown = self.shown(path)
        limit = SIZE_LIMITS[kind]
        try:
            handle = open(path, "rb")  # noqa: SIM115 (stat and read the same open file)
        except FileNotFoundError:
            raise
        except OSError as err:
            raise ConfigError(f"{shown}: cannot read: {err.strerror or type(err).__name__}") from err
        with handle:
            key = _key(os.fstat(handle.fileno()))
            cache_key = (Path(os.path.abspath(path)), kind)
            with self._lock:
                cached = self._cache.get(cache_key)
                if cached is not None and cached.key == key and not cached.racy:
                    cached.used = True
                    if cached.error is not None:
                        raise cached.error
                    return cached.value
            entry = _Cached(key, racy=time.time_ns() - key[1] < RACY_NS)
            try:
                entry.value = self._parse(handle, key[0], shown, limit, parse)
            except ConfigError as err:
                entry.error = err
            with self._lock:
                self._cache[cache_key] = entry
        if entry.error is not None:
            raise entry.error
        return entry.value

    def _parse(self, handle: Any, size: int, shown: str, limit: int, parse: Callable[[str], Any]) -> Any:
        """`size`: what the open file's fstat said (read() already took it for the cache key)."""
        if size > limit:
            raise ConfigError(
                f"{shown}: {describe_size(size)}, over the {describe_size(limit)} limit for this file; "
                "not read"
            )
        try:
            data = handle.read(limit + 1)
        except OSError as err:
            raise ConfigError(f"{shown}: cannot read: {err.strerror or type(err).__name__}") from err
        if len(data) > limit:  # grew while being read
            raise ConfigError(f"{shown}: over the {describe_size(limit)} limit for this file; not read")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(f"{shown}: not UTF-8 text ({err.reason} at byte {err.start})") from err
        with self._lock:
            self.parses += 1
        try:
            return parse(text)
        except RecursionError as err:
            raise ConfigError(f"{shown}: nested too deeply") from err
        except ValueError as err:
            # Parsers raise ValueError with a message that holds no content (line, column, kind).
            raise ConfigError(f"{shown}: {err}") from err

    def remember(self, name: str, inputs: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """compute(), again only when `inputs` differ from the last call's: each compared by
        identity (a parsed file's cached value is the same object until the file changes) or
        equality (tuples of names)."""
        with self._lock:
            last = self._remembered.get(name)
        if (
            last is not None
            and len(last[0]) == len(inputs)
            and all(a is b or (isinstance(a, tuple) and a == b) for a, b in zip(last[0], inputs, strict=True))
        ):
            return last[1]
        value = compute()
        with self._lock:
            self._remembered[name] = (inputs, value)
        return value

    def sweep(self) -> None:
        """Forget the files not read since the last sweep (models removed, files deleted)."""
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v.used}
            for entry in self._cache.values():
                entry.used = False
