"""Version discovery: numbered folders, completeness and the "not still being copied" check.

Version v of a servable is complete when tokenizer/v and <task>/v both hold model.xml and
model.bin. A flat folder (optimum-cli's output, OVMS's rerank_ov/embeddings_ov form) holds one
version, 1, complete when openvino_tokenizer.xml/.bin and openvino_model.xml/.bin are there. A
folder copied in by hand can be complete but still growing, so a version is only offered for
loading once its files (size and mtime) are unchanged across two observations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from serving.repository.layout import FLAT_VERSION, MODEL_XML

if TYPE_CHECKING:
    from serving.repository.config import VersionPolicy

# A version folder's name: a positive integer in plain ASCII digits without a leading zero. Other
# names that str.isdigit() accepts would crash int() ("²") or alias a real version ("01", "٣").
_VERSION_NAME = re.compile(r"[1-9][0-9]*", re.ASCII)

# (size, mtime_ns) of each file that makes the version, in a fixed order; (-1, -1) for an optional
# file that is absent.
Signature = tuple[tuple[int, int], ...]
_ABSENT = (-1, -1)


@dataclass(frozen=True)
class VersionFiles:
    version: int
    tokenizer_xml: Path
    model_xml: Path
    signature: Signature


def numbered_folders(base: Path) -> dict[int, Path]:
    """Sub-folders of `base` named as versions (`[1-9][0-9]*`), by number.

    The one version discovery of the repository format: the exporter uses it too.
    """
    try:
        children = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found: dict[int, Path] = {}
    for child in children:
        if _VERSION_NAME.fullmatch(child.name) and child.is_dir():
            found[int(child.name)] = Path(child.path)
    return found


def _file_signature(xml: Path) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(size, mtime) of an IR's .xml and .bin; None when either is missing."""
    try:
        xml_stat, bin_stat = xml.stat(), xml.with_suffix(".bin").stat()
    except OSError:
        return None
    return (xml_stat.st_size, xml_stat.st_mtime_ns), (bin_stat.st_size, bin_stat.st_mtime_ns)


def _optional_signature(path: Path) -> tuple[int, int]:
    try:
        found = path.stat()
    except OSError:
        return _ABSENT
    return found.st_size, found.st_mtime_ns


def scan_versions(
    tokenizer_base: Path,
    model_base: Path,
    *,
    tokenizer_xml: str = MODEL_XML,
    model_xml: str = MODEL_XML,
    flat: bool = False,
    companions: tuple[str, ...] = (),
) -> dict[int, VersionFiles]:
    """The complete versions on disk right now.

    `flat`: the two base folders are version 1 themselves (no numbered folders). `companions`:
    further files of a flat folder the loader reads (config.json, ...); a change to them counts
    as a change of the version, so one copied in after the IRs is not missed.
    """
    if flat:
        tokenizers, models = {FLAT_VERSION: tokenizer_base}, {FLAT_VERSION: model_base}
    else:
        tokenizers, models = numbered_folders(tokenizer_base), numbered_folders(model_base)
    complete: dict[int, VersionFiles] = {}
    for version in tokenizers.keys() & models.keys():
        tokenizer_sig = _file_signature(tokenizers[version] / tokenizer_xml)
        model_sig = _file_signature(models[version] / model_xml)
        if tokenizer_sig is None or model_sig is None:
            continue
        extra = tuple(_optional_signature(models[version] / name) for name in companions)
        complete[version] = VersionFiles(
            version=version,
            tokenizer_xml=tokenizers[version] / tokenizer_xml,
            model_xml=models[version] / model_xml,
            signature=tokenizer_sig + model_sig + extra,
        )
    return complete


def stable_versions(
    previous: dict[int, VersionFiles], current: dict[int, VersionFiles]
) -> dict[int, VersionFiles]:
    """Versions whose files did not change between two observations."""
    return {
        version: files
        for version, files in current.items()
        if version in previous and previous[version].signature == files.signature
    }


def version_to_run(policy: VersionPolicy, complete: Collection[int], requested: int | None) -> int | None:
    """What a one-off run over a model reads: `requested` if complete, else (none requested) the
    highest version the policy serves; None when there is no such version."""
    if requested is not None:
        return requested if requested in complete else None
    served = policy.select(list(complete))
    return served[0] if served else None
