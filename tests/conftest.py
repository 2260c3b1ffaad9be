"""Session fixtures shared by every test folder: offline source models, the export command, the
session's exports, and servers.

The source models are built by tools/ (fixed seeds, no network) and cached in
.cache/fixtures/ (or $OVTEXT_FIXTURE_CACHE), so a second run reuses them. Each (model, weight
format) is exported once per session (tests/support/exports.py); a test module lists the exports it
uses with `pytestmark = pytest.mark.exports(("xlmr", "fp32"), ...)` so that the session starts
them early, two at a time, in the order the tests will need them.

A module whose tests check a long job (the tiny benchmark runs, tests/bench/runs.py) marks itself
`pytest.mark.background("<session fixture>")`: the fixture is requested at the first test of the
session and starts the job on a thread, and the module's tests run last.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.exports import Exported, ExportKey, SessionExports
from tests.support.server import ServerGroup, ServerProcess
from tools import demo_models, xlmr_models
from tools.export_command import export_command_line

REPO_ROOT = Path(__file__).resolve().parent.parent

# No model hub is reachable here: anything that tries to download must fail fast.
os.environ["HF_HUB_OFFLINE"] = "1"

# Fixtures visible from every test (benchmark_runs starts at the first one).
pytest_plugins = ["tests.bench.runs"]

RunExport = Callable[..., subprocess.CompletedProcess]
SOURCE_FIXTURES = {
    "cross-encoder": "cross_encoder_source",
    "xlmr": "xlmr_reranker_source",
    "minilm": "minilm_source",
}
_DECLARED_EXPORTS = pytest.StashKey[list[ExportKey]]()
_BACKGROUND_FIXTURES = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only the tests that will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the tests of background jobs last; collect the exports the tests declare, in test order."""
    background = [item for item in items if item.get_closest_marker("background")]
    items[:] = [item for item in items if not item.get_closest_marker("background")] + background
    config.stash[_BACKGROUND_FIXTURES] = list(
        dict.fromkeys(item.get_closest_marker("background").args[0] for item in background)
    )
    declared: list[ExportKey] = []
    for item in items:
        for marker in item.iter_markers("exports"):
            declared += [tuple(key) for key in marker.args if tuple(key) not in declared]
    config.stash[_DECLARED_EXPORTS] = declared


@pytest.fixture(scope="session", autouse=True)
def _background_jobs(request: pytest.FixtureRequest) -> None:
    """Start the selected tests' background jobs with the session."""
    for name in request.config.stash.get(_BACKGROUND_FIXTURES, []):
        request.getfixturevalue(name)


@pytest.fixture(scope="session")
def minilm_source() -> Path:
    """HF folder of the real sentence-transformers/all-MiniLM-L6-v2."""
    return demo_models.minilm_source()


@pytest.fixture(scope="session")
def cross_encoder_source() -> Path:
    """HF folder of the fine-tuned MiniLM cross-encoder (BertForSequenceClassification, 1 label)."""
    return demo_models.cross_encoder_source()


@pytest.fixture(scope="session")
def xlmr_reranker_source() -> Path:
    """HF folder of the tiny XLMRobertaForSequenceClassification with a Unigram/Metaspace tokenizer."""
    return xlmr_models.xlmr_reranker_source()


@pytest.fixture(scope="session")
def run_export() -> RunExport:
    """Run `python export_models/export_model.py <task> ...` from the repo root, offline."""

    def run(
        task: str,
        source: Path | str,
        repo: Path,
        *extra_args: str,
        model_name: str | None = None,
        weight_format: str = "fp32",
    ) -> subprocess.CompletedProcess:
        command = export_command_line(
            task, source, repo, *extra_args, model_name=model_name, weight_format=weight_format
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)

    return run


@pytest.fixture(scope="session")
def session_exports(
    request: pytest.FixtureRequest, run_export: RunExport, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionExports]:
    """The session's exports (tests/support/exports.py); the declared ones start at once."""
    exports = SessionExports(
        tmp_path_factory.mktemp("session-exports"),
        run_export,
        lambda kind: Path(request.getfixturevalue(SOURCE_FIXTURES[kind])),
    )
    exports.prefetch(request.config.stash.get(_DECLARED_EXPORTS, []))
    yield exports
    exports.close()


@pytest.fixture(scope="session")
def exported(session_exports: SessionExports) -> Callable[..., Exported]:
    """exported(kind, weight_format="fp32") -> Exported: the session's export, made on first use."""
    return session_exports.get


def _server_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    group = ServerGroup(lambda: tmp_path_factory.mktemp("server-log"))
    yield group.start
    problems = group.stop_all()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """start_server(config_path, *flags, wait=True, command=...) -> ServerProcess.

    The servers are stopped when the module's tests are done, and must have exited cleanly.
    """
    yield from _server_group(tmp_path_factory)


@pytest.fixture(scope="session")
def start_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """As start_server, for a server several test modules share: stopped at the end of the session."""
    yield from _server_group(tmp_path_factory)
