"""Start and stop the real server (`python -m serving ...`) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """The server serving one repository; a context manager that waits until its models are ready."""

    def __init__(
        self,
        config_path: Path,
        model_names: Sequence[str],
        log_path: Path,
        ready_timeout_s: float = 600.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.config_path = config_path
        self.extra_args = list(extra_args)
        self.model_names = list(model_names)
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def root_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v3"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "serving", "--config_path", str(self.config_path),
                   "--rest_port", str(self.port), "--host", HOST, *self.extra_args]  # fmt: skip
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        waiting = [f"{self.root_url}/v2/models/{quote(name, safe='')}/ready" for name in self.model_names]
        deadline = time.monotonic() + self.ready_timeout_s
        while waiting and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.process.returncode} (log {self.log_path}): "
                    + self._log_tail()
                )
            try:
                if httpx.get(waiting[0], timeout=2.0).status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        if waiting:
            raise RuntimeError(
                f"the server did not report {', '.join(self.model_names)} ready in "
                f"{self.ready_timeout_s:.0f} s (log {self.log_path}): " + self._log_tail()
            )

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-5:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
