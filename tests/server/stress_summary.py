"""One summary line per long-form test (make stress prints the file OVTEXT_STRESS_SUMMARY names)."""

from __future__ import annotations

import os


def summary(line: str) -> None:
    path = os.environ.get("OVTEXT_STRESS_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    print(line)
