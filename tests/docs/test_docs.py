"""The documentation site: `mkdocs build --strict` passes, a broken link fails it, the README stays a
short overview whose links lead to pages and anchors that exist, and the pages the benchmarks
regenerate hold their markers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmark import corpus, report
from benchmark.run import TABLE_PAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 200
# Markdown links and images: [text](target); code spans are removed first.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def build(source: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    done = build(REPO_ROOT, site)
    assert done.returncode == 0, done.stderr[-4000:]
    return site


def html_ids(page: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))


def built_page(site: Path, doc: Path) -> Path:
    """Where mkdocs writes docs/<doc> (use_directory_urls: a/b.md -> a/b/index.html)."""
    relative = doc.relative_to(REPO_ROOT / "docs").with_suffix("")
    return site / (relative.parent if relative.name == "index" else relative) / "index.html"


def test_every_page_is_built(site: Path) -> None:
    pages = sorted((REPO_ROOT / "docs").rglob("*.md"))
    assert len(pages) >= 15
    for doc in pages:
        assert built_page(site, doc).is_file(), doc


def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(REPO_ROOT / "mkdocs.yml", source)
    shutil.copytree(REPO_ROOT / "docs", source / "docs")
    guarantees = source / "docs" / "guarantees.md"
    original = guarantees.read_text(encoding="utf-8")
    for target in ["no-such-page.md", "export.md#no-such-section"]:
        guarantees.write_text(original + f"\n[gone]({target})\n", encoding="utf-8")
        done = build(source, tmp_path / "site")
        assert done.returncode != 0, target
        assert f"'guarantees.md' contains a link '{target}'" in done.stderr, done.stderr[-2000:]


def test_the_readme_is_short_and_its_links_resolve(site: Path) -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    links = LINK.findall(re.sub(r"`[^`]*`", "", text))
    docs_links = [link for link in links if link.startswith("docs/")]
    assert len(docs_links) >= 10  # the overview leads into the pages
    for link in links:
        assert "://" not in link or link.startswith("https://"), link
        if "://" in link:
            continue
        target, _, anchor = link.partition("#")
        path = REPO_ROOT / target
        assert path.exists(), link
        if anchor:
            assert path.suffix == ".md" and path.is_relative_to(REPO_ROOT / "docs"), link
            assert anchor in html_ids(built_page(site, path)), link


@pytest.mark.parametrize(
    ("page", "start", "end", "update"),
    [
        (TABLE_PAGE, report.TABLE_START, report.TABLE_END, report.update_page),
        (corpus.TABLE_PAGE, corpus.TABLE_START, corpus.TABLE_END, corpus.update_page),
    ],
    ids=["benchmark", "corpus"],
)
def test_the_benchmark_tables_are_regenerated_in_their_pages(
    tmp_path: Path, page: Path, start: str, end: str, update: Callable[[Path, str], None]
) -> None:
    """A full run rewrites only the block between its markers in its docs page."""
    assert page.is_relative_to(REPO_ROOT / "docs")
    copy = tmp_path / page.name
    shutil.copy(page, copy)
    before, _, rest = page.read_text(encoding="utf-8").partition(start)
    _, _, after = rest.partition(end)
    block = f"{start}\nnew table\n{end}" if update is corpus.update_page else "new table"
    update(copy, block)
    text = copy.read_text(encoding="utf-8")
    assert text.startswith(before + start) and text.endswith(end + after)
    assert "new table" in text
