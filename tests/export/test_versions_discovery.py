"""Version discovery, shared by the exporter and the server: only `[1-9][0-9]*` names are versions.

Names such as `²` (str.isdigit() is true, int() fails), `٣` (int() reads it as 3) or `01`
(int() reads it as 1, the same version as `1`) must be ignored by both sides, not crash them
or alias a real version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from export_models.repository import servable_versions
from export_models.repository.versions import choose_version
from serving.repository.layout import MODEL_BIN, MODEL_XML, TOKENIZER_DIR, Task
from serving.repository.versions import numbered_folders, scan_versions

NOT_VERSIONS = ("²", "01", "0", "-1", "1a", "٣", "00", " 1", "1 ", "+1")
VERSIONS = (1, 3, 12)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder whose tokenizer/ and rerank/ hold complete versions 1, 3, 12 and look-alikes."""
    model_dir = tmp_path / "m"
    for base in (TOKENIZER_DIR, Task.RERANK.model_dir):
        for name in [*NOT_VERSIONS, *map(str, VERSIONS)]:
            folder = model_dir / base / name
            folder.mkdir(parents=True)
            (folder / MODEL_XML).write_text(f"<{base} {name}>")
            (folder / MODEL_BIN).write_bytes(b"\0")
    return model_dir


def test_server_discovery_takes_only_plain_positive_numbers(model_dir: Path) -> None:
    assert sorted(numbered_folders(model_dir / TOKENIZER_DIR)) == list(VERSIONS)
    found = scan_versions(model_dir / TOKENIZER_DIR, model_dir / Task.RERANK.model_dir)
    assert sorted(found) == list(VERSIONS)
    # Version 3 is the folder named "3", not the Arabic-Indic digit three.
    assert found[3].model_xml.read_text() == "<rerank 3>"
    assert found[1].tokenizer_xml.read_text() == "<tokenizer 1>"  # not "01"


def test_exporter_discovery_takes_only_plain_positive_numbers(model_dir: Path) -> None:
    assert servable_versions(model_dir, Task.RERANK) == list(VERSIONS)
    assert choose_version(model_dir, Task.RERANK, "m", requested=None, overwrite=False) == (13, False)
    assert choose_version(model_dir, Task.RERANK, "m", requested=None, overwrite=True) == (12, True)
    # "01" and "٣" do not make versions 1 and 3 taken twice, nor "٣" a version 3 of its own.
    assert choose_version(model_dir, Task.RERANK, "m", requested=2, overwrite=False) == (2, False)


def test_look_alikes_alone_are_no_versions(tmp_path: Path) -> None:
    for name in NOT_VERSIONS:
        (tmp_path / "m" / TOKENIZER_DIR / name).mkdir(parents=True)
        (tmp_path / "m" / Task.RERANK.model_dir / name).mkdir(parents=True)
    assert numbered_folders(tmp_path / "m" / TOKENIZER_DIR) == {}
    assert choose_version(tmp_path / "m", Task.RERANK, "m", requested=None, overwrite=False) == (1, False)
