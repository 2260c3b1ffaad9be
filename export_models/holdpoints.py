"""A test hook: stop the export at a named point until the test lets it go.

Tests that race two exports need them to meet at a known place. With OVTEXT_EXPORT_HOLD=<folder>
and OVTEXT_EXPORT_HOLD_AT=<point>[,<point>...] set, the export creates
<folder>/<point>.<pid>.waiting at each listed point and waits until <folder>/<point>.go exists.
Points: `step-<i>` (step i is about to run; its "[i/n]" line is printed) and `config` (in the
commit, after config.json was read and before it is written). Unset, nothing happens.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

HOLD_DIR_ENV = "OVTEXT_EXPORT_HOLD"
HOLD_AT_ENV = "OVTEXT_EXPORT_HOLD_AT"


def hold(point: str) -> None:
    folder = os.environ.get(HOLD_DIR_ENV)
    if not folder or point not in os.environ.get(HOLD_AT_ENV, "").split(","):
        return
    (Path(folder) / f"{point}.{os.getpid()}.waiting").touch()
    while not (Path(folder) / f"{point}.go").exists():
        time.sleep(0.05)
