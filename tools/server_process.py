"""The real server as a subprocess on a free loopback port, for the tests and the benchmark.

`python -m serving` by default, or another command line that takes the same flags (the wheel's
`ovtext-serve`); its output goes to a log file. A context manager waits until the models it was
given are ready and stops the server on exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODULE_COMMAND = (sys.executable, "-m", "serving")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`command` serving `config_path` on a free loopback port, its output in `log_path`.

    `models`: the served names the context manager waits for. `env`: the whole environment
    (default: this process's), to which HF_HUB_OFFLINE=1 and PYTHONUNBUFFERED=1 are added.
    """

    def __init__(
        self,
        config_path: Path,
        log_path: Path,
        *extra_args: str,
        command: Sequence[str] = MODULE_COMMAND,
        models: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        ready_timeout: float = 600.0,
    ) -> None:
        self.config_path = config_path
        self.models = list(models)
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        arguments = [
            *command,
            "--config_path", str(config_path),
            "--rest_port", str(self.port),
            "--host", HOST,
            *extra_args,
        ]  # fmt: skip
        environment = {**(os.environ if env is None else env), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("w")
        self.started_at = time.time()
        self.process = subprocess.Popen(
            arguments, cwd=cwd, env=environment, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def base_url(self) -> str:
        """Where the /v3 APIs (Cohere, OpenAI) are."""
        return f"{self.url}/v3"

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 240, models: Sequence[str] = ()) -> None:
        """Until /v2/health/ready says the first load is done (and each of `models` is ready)."""
        waiting = ["/v2/health/ready", *(f"/v2/models/{quote(name, safe='')}/ready" for name in models)]
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; {self._log_tail()}")
            try:
                if httpx.get(f"{self.url}{waiting[0]}", timeout=2).status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        if waiting:
            raise TimeoutError(f"{waiting[0]} not ready after {timeout} s; {self._log_tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _log_tail(self, lines: int = 40) -> str:
        """The log's path and its last lines (a benchmark row keeps the start of an error message)."""
        return f"log {self.log_path}, its end:\n" + "\n".join(self.log().splitlines()[-lines:])

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, and the exit code (the server drains and exits 0)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        try:
            self.wait_ready(self.ready_timeout, self.models)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
