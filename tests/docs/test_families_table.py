"""docs/families.md holds the families table generated from the recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.families_table import replace_table, table

PAGE = Path(__file__).resolve().parents[2] / "docs" / "families.md"


def test_the_families_page_holds_the_table_generated_from_the_recipes() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert replace_table(text, table()) == text, "python -m tools.families_table --write docs/families.md"


def test_a_page_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_table("# Model families\n", table())
