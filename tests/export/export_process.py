"""Exports run as background processes that a test can hold at a point, signal, and inspect.

The hold points are export_models/holdpoints.py's test hook: the export waits at a named point
until the test creates the point's `.go` file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops: needed to read tokenizer IRs)

from export_models.holdpoints import HOLD_AT_ENV, HOLD_DIR_ENV
from export_models.repository.staging import STAGING_PREFIX
from serving.repository.layout import MODEL_XML, TOKENIZER_DIR, Task, read_model_info, read_tokenizer_info
from tools.export_command import export_command_line

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ExportProcess:
    process: subprocess.Popen
    log_dir: Path
    hold_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def waiting_at(self, point: str) -> bool:
        return (self.hold_dir / f"{point}.{self.pid}.waiting").exists()

    def finish(self, timeout: float = 300) -> subprocess.CompletedProcess:
        self.process.wait(timeout=timeout)
        return subprocess.CompletedProcess(
            self.process.args,
            self.process.returncode,
            (self.log_dir / "stdout").read_text(),
            (self.log_dir / "stderr").read_text(),
        )

    def stdout(self) -> str:
        return (self.log_dir / "stdout").read_text()


def start_export(
    source: Path,
    repo: Path,
    model_name: str,
    log_dir: Path,
    hold_dir: Path,
    hold_at: tuple[str, ...] = (),
    *extra_args: str,
) -> ExportProcess:
    """`python export_models/export_model.py rerank ...` (fp32, offline) in the background."""
    log_dir.mkdir(parents=True)
    hold_dir.mkdir(parents=True, exist_ok=True)
    command = export_command_line(
        "rerank", source, repo, *extra_args, model_name=model_name, weight_format="fp32"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        HOLD_DIR_ENV: str(hold_dir),
        HOLD_AT_ENV: ",".join(hold_at),
    }
    with open(log_dir / "stdout", "w") as stdout, open(log_dir / "stderr", "w") as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=stderr)
    return ExportProcess(process, log_dir, hold_dir)


def release(hold_dir: Path, point: str) -> None:
    (hold_dir / f"{point}.go").touch()


def wait_until(condition: Callable[[], bool], exports: list[ExportProcess], timeout: float = 300) -> None:
    """Poll condition; fail at once if one of the exports ended (it would never get there)."""
    deadline = time.monotonic() + timeout
    while not condition():
        for export in exports:
            if export.process.poll() is not None:
                raise AssertionError(
                    f"export {export.pid} ended with {export.process.returncode}: "
                    f"{(export.log_dir / 'stderr').read_text()[-2000:]}"
                )
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.05)


def export_ids(model_dir: Path, task: Task, version: int) -> tuple[str | None, str | None]:
    """(tokenizer's export id, model's export id) of one version."""
    core = ov.Core()
    tokenizer = read_tokenizer_info(core.read_model(model_dir / TOKENIZER_DIR / str(version) / MODEL_XML))
    model = read_model_info(core.read_model(model_dir / task.model_dir / str(version) / MODEL_XML))
    return tokenizer.export_id, model.export_id


def snapshot(folder: Path, skip_staging: bool = False) -> dict[str, str]:
    """Every file and folder under `folder` with a hash of its content."""
    state = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if skip_staging and relative.parts[0].startswith(STAGING_PREFIX):
            continue
        state[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return state


def staging_folders(repo: Path) -> list[Path]:
    return sorted(p for p in repo.iterdir() if p.name.startswith(STAGING_PREFIX))


def child_processes(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def process_group_alive(pgid: int) -> bool:
    """Whether any process (zombies aside) is left in the process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False
