"""Step: convert the model to OpenVINO IR with optimum-intel (a subprocess, as `optimum-cli` runs it).

int8 is weight-only int8 through NNCF (what `--weight-format int8` does in optimum-intel),
fp16 stores fp16 weights, fp32 keeps fp32. --extra_quantization_params are appended
verbatim (shell-split) so every optimum-intel quantization option is reachable.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from export_models.errors import InvalidOptionError, ModelConversionError
from export_models.repository import disk_full_reason
from export_models.source import OPTIMUM_TASKS, ResolvedSource
from serving.repository.layout import Task

OPTIMUM_MODEL_XML = "openvino_model.xml"
WEIGHT_FORMATS = ("fp32", "fp16", "int8")


def split_extra_params(extra_quantization_params: str) -> list[str]:
    try:
        return shlex.split(extra_quantization_params)
    except ValueError as error:
        raise InvalidOptionError(
            f"--extra_quantization_params {extra_quantization_params!r} cannot be parsed: {error}"
        ) from error


def optimum_command(
    model_path: Path,
    task: Task,
    weight_format: str,
    extra_params: list[str],
    output_dir: Path,
    library: str = "transformers",
    trust_remote_code: bool = False,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "optimum.commands.optimum_cli",
        "export",
        "openvino",
        "--model",
        str(model_path),
        "--task",
        OPTIMUM_TASKS[task],
        "--weight-format",
        weight_format,
        # The plain transformers model (or, for architectures only sentence-transformers can export,
        # its token embeddings): the server pools (embeddings) and frames pairs itself.
        "--library",
        library,
        *(["--trust-remote-code"] if trust_remote_code else []),
        # The tokenizer is converted separately, without special tokens (see convert_tokenizer.py).
        "--disable-convert-tokenizer",
        *extra_params,
        str(output_dir),
    ]


def convert_model(
    source: ResolvedSource,
    task: Task,
    weight_format: str,
    extra_quantization_params: str,
    output_dir: Path,
    waiting: Callable[[float], None] | None = None,
    inherited_fds: tuple[int, ...] = (),
    *,
    model_path: Path | None = None,
    library: str = "transformers",
    trust_remote_code: bool = False,
) -> Path:
    """Run optimum-cli into output_dir and return the IR's model.xml path.

    `model_path` is what optimum reads (default: the source folder; the causal-LM route passes the
    classifier it built). `waiting(seconds)` is called about once a second while optimum-cli runs.
    optimum-cli runs in its own session, so a Ctrl-C in the terminal reaches only the export,
    which then stops optimum-cli's whole process group (also on SIGTERM or any other exception).
    `inherited_fds` stay open in it: the staging folder's lock, so that folder is not swept away
    while an orphaned optimum-cli still writes there.
    """
    command = optimum_command(
        model_path or source.path,
        task,
        weight_format,
        split_extra_params(extra_quantization_params),
        output_dir,
        library=library,
        trust_remote_code=trust_remote_code,
    )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # The log is outside the repository: it must still be readable when the repository's disk is full.
    with tempfile.TemporaryFile("w+", encoding="utf-8", prefix="ovtext-optimum-") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
            pass_fds=inherited_fds,
        )
        try:
            while True:
                try:
                    returncode = process.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if waiting is not None:
                        waiting(time.monotonic() - started)
        finally:
            if process.returncode is None:  # interrupted: do not leave optimum running
                stop_process_group(process)
        log.seek(0)
        output = log.read()
    model_xml = output_dir / OPTIMUM_MODEL_XML
    if returncode != 0 or not model_xml.is_file():
        reason = _last_error_line(output)
        disk_full = disk_full_reason(output_dir.parent)
        raise ModelConversionError(
            f"optimum-cli could not export {source.recorded} ({source.architecture}, "
            f"{OPTIMUM_TASKS[task]}, {weight_format}): "
            + (f"{disk_full} where the repository is; optimum-cli said: {reason}" if disk_full else reason)
        )
    return model_xml


def stop_process_group(process: subprocess.Popen, grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group led by `process` (its own session), SIGKILL it after the grace time."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)
    with contextlib.suppress(ProcessLookupError):  # whatever is left of the group, leader included
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _last_error_line(log: str) -> str:
    """The most telling line of a failed optimum-cli run: its last exception line, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) or line.startswith("optimum-cli export openvino: error"):
            return line
    return lines[-1] if lines else "no output"
