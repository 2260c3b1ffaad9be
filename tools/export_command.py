"""The export command line a user types, for the tests and the benchmark that run it."""

from __future__ import annotations

import sys
from pathlib import Path

EXPORT_SCRIPT = Path(__file__).resolve().parent.parent / "export_models" / "export_model.py"


def export_command_line(
    task: str,
    source: Path | str,
    repo: Path,
    *extra_args: str,
    weight_format: str,
    model_name: str | None = None,
) -> list[str]:
    """The `python export_models/export_model.py ...` line a user would type to export into `repo`."""
    command = [
        sys.executable,
        str(EXPORT_SCRIPT),
        task,
        "--source_model",
        str(source),
        "--weight-format",
        weight_format,
        "--config_file_path",
        str(Path(repo) / "config.json"),
        "--model_repository_path",
        str(repo),
    ]
    if model_name is not None:
        command += ["--model_name", model_name]
    return command + list(extra_args)
