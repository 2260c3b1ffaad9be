"""Step: convert the model to OpenVINO IR with optimum-intel (a subprocess, as `optimum-cli` runs it).

int8 is weight-only int8 through NNCF (what `--weight-format int8` does in optimum-intel),
fp16 stores fp16 weights, fp32 keeps fp32. --extra_quantization_params are appended
verbatim (shell-split) so every optimum-intel quantization option is reachable.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from export_models.errors import InvalidOptionError, ModelConversionError
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
    *,
    model_path: Path | None = None,
    library: str = "transformers",
    trust_remote_code: bool = False,
) -> Path:
    """Run optimum-cli into output_dir and return the IR's model.xml path.

    `model_path` is what optimum reads (default: the source folder; the causal-LM route passes the
    classifier it built). `waiting(seconds)` is called about once a second while optimum-cli runs.
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
    log_file = output_dir.parent / f"{output_dir.name}.log"
    started = time.monotonic()
    with open(log_file, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
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
            if process.poll() is None:  # interrupted (Ctrl-C): do not leave optimum running
                process.kill()
                process.wait()
    model_xml = output_dir / OPTIMUM_MODEL_XML
    if returncode != 0 or not model_xml.is_file():
        reason = _last_error_line(log_file.read_text(encoding="utf-8", errors="replace"))
        raise ModelConversionError(
            f"optimum-cli could not export {source.recorded} ({source.architecture}, "
            f"{OPTIMUM_TASKS[task]}, {weight_format}): {reason}"
        )
    return model_xml


def _last_error_line(log: str) -> str:
    """The most telling line of a failed optimum-cli run: its last exception line, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) or line.startswith("optimum-cli export openvino: error"):
            return line
    return lines[-1] if lines else "no output"
