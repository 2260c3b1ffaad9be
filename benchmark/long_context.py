"""Peak memory of the server at 8192 tokens: one input, and one request of many such inputs.

    python -m benchmark.long_context [--layers 24] [--documents 100] [--weight-format int8]

A random-weight embedder with BAAI/bge-m3's shapes (XLM-R, hidden 1024, 16 heads, 8194 positions,
vocabulary 250002; --layers of them, 24 as in bge-m3) is built offline, exported with
export_models/export_model.py and served by the real server with its default batch settings.
Each input is exactly 8192 tokens (specials included). The figure is the server process's
resident-set high-water mark (VmHWM, reset before each request), next to its size once loaded:
the batch planner sends one 8192-token row per inference call (8192 // 8192 = 1 row under the
default token budget), so a request of many such documents should peak no higher than one.
Attention is quadratic: one 8192-token row is 16 heads x 8192 x 8192 scores per layer.
Not part of `make test` (minutes); figures go to docs/benchmark.md by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import httpx

from benchmark.measure import MemoryProbe
from tools.export_command import export_command_line
from tools.server_process import ServerProcess

MODEL_NAME = "bge-m3-shaped"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _input_of_8192_tokens(source: Path) -> str:
    """A text the model's tokenizer frames into exactly 8192 tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    text = "panda bamboo China mountain " * 2100
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: 8192 - 2]
    text = tokenizer.decode(ids)
    while len(tokenizer(text)["input_ids"]) > 8192:
        text = text[: text.rfind(" ")]
    while len(tokenizer(text)["input_ids"]) < 8192:
        text += " panda"
    assert len(tokenizer(text)["input_ids"]) == 8192
    return text


@click.command()
@click.option("--layers", default=24, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--documents", default=100, show_default=True, type=click.IntRange(min=0), help="0: only the one input."
)
@click.option("--weight-format", "weight_format", default="int8", show_default=True)
@click.option(
    "--work_dir", type=click.Path(path_type=Path), default=None, help="Kept for reuse (default: a new one)."
)
def main(layers: int, documents: int, weight_format: str, work_dir: Path | None) -> None:
    from tools.replicas import bge_m3_shaped_source

    source = bge_m3_shaped_source(layers)
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="long-context-"))
    repository = work_dir / f"repo-{layers}-{weight_format}"
    if not (repository / "config.json").is_file():
        started = time.monotonic()
        command = export_command_line(
            "embeddings", source, repository, model_name=MODEL_NAME, weight_format=weight_format
        )
        subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        click.echo(f"export: {time.monotonic() - started:.0f} s")
    text = _input_of_8192_tokens(source)
    figures: dict[str, object] = {"layers": layers, "weight_format": weight_format, "documents": documents}
    with ServerProcess(repository / "config.json", work_dir / "server.log", models=[MODEL_NAME]) as server:
        probe = MemoryProbe(server.pid)
        figures["loaded_rss_mb"] = round(_rss_mb(server.pid), 1)
        with httpx.Client(base_url=server.base_url, timeout=None) as client:
            for label, count in (("one_input", 1), ("request", documents)):
                if count == 0:
                    continue
                probe.reset()
                started = time.monotonic()
                response = client.post("/embeddings", json={"model": MODEL_NAME, "input": [text] * count})
                response.raise_for_status()
                assert response.json()["usage"]["prompt_tokens"] == 8192 * count
                figures[f"{label}_seconds"] = round(time.monotonic() - started, 1)
                figures[f"{label}_peak_rss_mb"] = probe.peak_mb()
                click.echo(json.dumps(figures))
    click.echo(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
