"""Version discovery (serving/repository/versions.py) and model_version_policy (config.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from serving.repository.config import ConfigError, VersionPolicy
from serving.repository.versions import numbered_folders, scan_versions, stable_versions


def write_ir(folder: Path, name: str = "model") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.xml").write_text("<net/>")
    (folder / f"{name}.bin").write_bytes(b"\0" * 8)


def test_only_plain_positive_numbers_are_versions(tmp_path: Path):
    for name in ["1", "2", "10", "01", "0", "-3", "²", "٣", "v4", "5.0"]:
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a folder")
    assert sorted(numbered_folders(tmp_path)) == [1, 2, 10]
    assert numbered_folders(tmp_path)[10] == tmp_path / "10"
    assert numbered_folders(tmp_path / "missing") == {}


def test_a_version_is_complete_when_both_irs_have_xml_and_bin(tmp_path: Path):
    tokenizer, model = tmp_path / "tokenizer", tmp_path / "rerank"
    for version in (1, 2):
        write_ir(tokenizer / str(version))
        write_ir(model / str(version))
    (model / "2" / "model.bin").unlink()  # still being copied
    write_ir(model / "3")  # no tokenizer of version 3
    found = scan_versions(tokenizer, model)
    assert list(found) == [1]
    assert found[1].model_xml == model / "1" / "model.xml"
    assert found[1].tokenizer_xml == tokenizer / "1" / "model.xml"
    assert len(found[1].signature) == 4  # (size, mtime) of two .xml and two .bin


def test_a_flat_folder_is_version_1_and_its_companions_count(tmp_path: Path):
    write_ir(tmp_path, "openvino_tokenizer")
    write_ir(tmp_path, "openvino_model")
    scan = {
        "tokenizer_xml": "openvino_tokenizer.xml",
        "model_xml": "openvino_model.xml",
        "flat": True,
        "companions": ("config.json",),
    }
    before = scan_versions(tmp_path, tmp_path, **scan)
    assert list(before) == [1]
    assert before[1].signature[-1] == (-1, -1)  # config.json absent
    (tmp_path / "config.json").write_text("{}")
    after = scan_versions(tmp_path, tmp_path, **scan)
    assert after[1].signature[-1][0] == 2  # its size
    assert stable_versions(before, after) == {}  # a companion arriving is a change


def test_stable_versions_are_the_unchanged_ones(tmp_path: Path):
    tokenizer, model = tmp_path / "tokenizer", tmp_path / "embeddings"
    for version in (1, 2):
        write_ir(tokenizer / str(version))
        write_ir(model / str(version))
    first = scan_versions(tokenizer, model)
    (model / "2" / "model.bin").write_bytes(b"\0" * 16)  # still growing
    write_ir(tokenizer / "3")
    write_ir(model / "3")  # new: not seen before
    second = scan_versions(tokenizer, model)
    assert sorted(second) == [1, 2, 3]
    assert list(stable_versions(first, second)) == [1]
    third = scan_versions(tokenizer, model)
    assert sorted(stable_versions(second, third)) == [1, 2, 3]
    stat = (model / "1" / "model.xml").stat()
    os.utime(model / "1" / "model.xml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert sorted(stable_versions(third, scan_versions(tokenizer, model))) == [2, 3]  # same size, new mtime


@pytest.mark.parametrize(
    ("raw", "selected"),
    [
        (None, [5]),  # OVMS's default: the latest one
        ({"latest": {}}, [5]),
        ({"latest": {"num_versions": 2}}, [5, 3]),
        ({"latest": {"num_versions": 9}}, [5, 3, 2, 1]),
        ({"all": {}}, [5, 3, 2, 1]),
        ({"specific": {"versions": [4, 2, 1]}}, [2, 1]),  # 4 is not on disk
    ],
)
def test_version_policies_select_from_what_is_on_disk(raw, selected):
    assert VersionPolicy.parse(raw, "config.json").select({1, 2, 3, 5}) == selected


def test_specific_versions_are_kept_sorted():
    assert VersionPolicy.parse({"specific": {"versions": [3, 1]}}, "x").versions == (1, 3)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "must have one key"),
        ({"latest": {}, "all": {}}, "must have one key"),
        ("latest", "must have one key"),
        ({"latest": 3}, "model_version_policy.latest must be an object"),
        ({"latest": {"num_versions": 0}}, "num_versions must be an integer >= 1"),
        ({"latest": {"num_versions": True}}, "num_versions must be an integer >= 1"),
        ({"latest": {"num_versions": "2"}}, "num_versions must be an integer >= 1"),
        ({"specific": {}}, "versions must be a list of versions"),
        ({"specific": {"versions": []}}, "versions must be a list of versions"),
        ({"specific": {"versions": [0]}}, "versions must be a list of versions"),
        ({"specific": {"versions": [1.0]}}, "versions must be a list of versions"),
        ({"newest": {}}, "unknown model_version_policy 'newest'"),
    ],
)
def test_a_wrong_policy_is_refused_naming_the_file(raw, message):
    with pytest.raises(ConfigError, match=f"^graph.json \\(tiny\\): .*{re.escape(message)}"):
        VersionPolicy.parse(raw, "graph.json (tiny)")
