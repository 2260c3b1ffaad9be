"""Version discovery: numbered folders, completeness and the "not still being copied" check.

Version v of a servable is complete when tokenizer/v and <task>/v both hold model.xml and
model.bin. A folder copied in by hand can be complete but still growing, so a version is only
offered for loading once its files (size and mtime) are unchanged across two observations.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from serving.repository.layout import MODEL_BIN, MODEL_XML

# A version folder's name: a positive integer in plain ASCII digits without a leading zero. Other
# names that str.isdigit() accepts would crash int() ("²") or alias a real version ("01", "٣").
_VERSION_NAME = re.compile(r"[1-9][0-9]*", re.ASCII)

# (size, mtime_ns) of each of the four files, in a fixed order.
Signature = tuple[tuple[int, int], ...]


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


def _file_signature(folder: Path) -> tuple[tuple[int, int], tuple[int, int]] | None:
    try:
        xml, bin_ = (folder / MODEL_XML).stat(), (folder / MODEL_BIN).stat()
    except OSError:
        return None
    return (xml.st_size, xml.st_mtime_ns), (bin_.st_size, bin_.st_mtime_ns)


def scan_versions(tokenizer_base: Path, model_base: Path) -> dict[int, VersionFiles]:
    """The complete versions on disk right now."""
    tokenizers = numbered_folders(tokenizer_base)
    models = numbered_folders(model_base)
    complete: dict[int, VersionFiles] = {}
    for version in tokenizers.keys() & models.keys():
        tokenizer_sig = _file_signature(tokenizers[version])
        model_sig = _file_signature(models[version])
        if tokenizer_sig is None or model_sig is None:
            continue
        complete[version] = VersionFiles(
            version=version,
            tokenizer_xml=tokenizers[version] / MODEL_XML,
            model_xml=models[version] / MODEL_XML,
            signature=tokenizer_sig + model_sig,
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
