"""The server runs on the serving runtime only: importing and loading never pulls in torch or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.server import REPO_ROOT

CHECK = """
import importlib, pkgutil, sys
from pathlib import Path
import serving
for module in pkgutil.walk_packages(serving.__path__, "serving."):
    if module.name != "serving.__main__":
        importlib.import_module(module.name)
from serving.http.app import create_app
from serving.registry import ModelRegistry
from serving.settings import ServerSettings
registry = ModelRegistry(Path(sys.argv[1]))
registry.reload(force=True)
app = create_app(registry, ServerSettings(config_path=Path(sys.argv[1])))
assert registry.served_models(), registry.config_status()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "optimum", "nncf"))
print("HEAVY", heavy, flush=True)
registry.stop()
import os
os._exit(0)  # skip interpreter teardown: OpenVINO plugins may crash in it after all the work is done
"""


def test_serving_never_imports_torch_or_transformers(main_repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(main_repo / "config.json")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout


def test_console_script_and_module_entry_points() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "ovtext-serve"]
    assert script.value == "serving.cli:main"
    done = subprocess.run(
        [sys.executable, "-m", "serving", "--config_path", "/no/such/config.json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "/no/such/config.json does not exist" in done.stderr and "Traceback" not in done.stderr
