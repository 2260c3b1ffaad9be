"""Writes the calibration and evaluation sets that ship in export_models/data/.

    python -m tools.calibration_sets          # rewrite them
    python -m tools.calibration_sets --check  # exit 1 if a shipped file differs

A calibration set the quantizer sees, and a held-out evaluation set the accuracy report scores,
made from other query phrasings and other seeds, with no item in common. Both mix English
(synthetic_data.SUBJECTS) with nine other languages (multilingual_text.py) and odd inputs (code,
tables, addresses, emoji), and spread lengths log-uniformly from one sentence (~10 tokens) to 48
sentences (~800 tokens, past the 512-token limit of most models: longer documents reach the model
as full-length chunks, longer inputs as truncated ones, as served).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import click

from export_models.calibration_data import (
    INPUTS_PER_REQUEST,
    EmbeddingsRequest,
    Purpose,
    Request,
    RerankRequest,
    shipped_file,
)
from serving.repository.layout import Task
from tools.multilingual_text import LANGUAGES, ODD_TEXTS
from tools.synthetic_data import HELDOUT_QUERY_TEMPLATES, SUBJECTS, TRAIN_QUERY_TEMPLATES, Subject

MAX_SENTENCES = 48
DATA_FOLDER = Path(__file__).resolve().parent.parent / "export_models" / "data"


@dataclass(frozen=True)
class _Pool:
    code: str
    subjects: tuple[Subject, ...]
    queries: tuple[str, ...]
    joiner: str


def _pools(purpose: Purpose) -> list[_Pool]:
    english = TRAIN_QUERY_TEMPLATES if purpose == "calibration" else HELDOUT_QUERY_TEMPLATES
    pools = [_Pool("en", SUBJECTS, english, " ")]
    for language in LANGUAGES:
        templates = language.calibration_queries if purpose == "calibration" else language.evaluation_queries
        pools.append(_Pool(language.code, language.subjects, templates, language.joiner))
    return pools


def _pick_pool(pools: list[_Pool], rng: random.Random) -> _Pool:
    """English four times in ten, the other languages share the rest."""
    return pools[0] if rng.random() < 0.4 else rng.choice(pools[1:])


def _sentence_count(rng: random.Random) -> int:
    """Log-uniform in 1..MAX_SENTENCES: as many short texts as long ones on a log scale."""
    return min(MAX_SENTENCES, int(math.exp(rng.uniform(0.0, math.log(MAX_SENTENCES + 1)))))


def _document(pool: _Pool, lead: Subject, pools: list[_Pool], rng: random.Random) -> str:
    """Sentences about `lead` first, then about other subjects of the language (a few in another)."""
    sentences = list(lead.facts)
    rng.shuffle(sentences)
    wanted = _sentence_count(rng)
    chosen = sentences[: min(wanted, rng.randint(1, len(sentences)))]
    while len(chosen) < wanted:
        source = rng.choice(pools) if rng.random() < 0.08 else pool
        chosen.append(rng.choice(rng.choice(source.subjects).facts))
    if rng.random() < 0.1:
        chosen.insert(rng.randrange(len(chosen) + 1), rng.choice(ODD_TEXTS))
    return pool.joiner.join(chosen)


def generate_rerank(purpose: Purpose) -> list[RerankRequest]:
    """Queries with 7 (calibration) or 10 (evaluation) documents; about a third relevant."""
    seed, queries, documents = (11, 64, 7) if purpose == "calibration" else (29, 30, 10)
    rng = random.Random(seed)
    pools = _pools(purpose)
    requests = []
    for _ in range(queries):
        pool = _pick_pool(pools, rng)
        subject = rng.choice(pool.subjects)
        query = rng.choice(pool.queries).format(name=subject.name)
        others = [s for s in pool.subjects if s is not subject]
        docs = tuple(
            _document(pool, subject if rng.random() < 0.35 else rng.choice(others), pools, rng)
            for _ in range(documents)
        )
        requests.append(RerankRequest(query, docs))
    return requests


def generate_embeddings(purpose: Purpose) -> list[EmbeddingsRequest]:
    """Inputs 8 to a request: one in four a short query, the others passages of spread lengths."""
    seed, count = (13, 448) if purpose == "calibration" else (31, 256)
    # Every text once; a one-sentence passage could come up in both sets: the evaluation set skips
    # calibration's texts.
    taken = (
        set()
        if purpose == "calibration"
        else {t for r in generate_embeddings("calibration") for t in r.texts}
    )
    rng = random.Random(seed)
    pools = _pools(purpose)
    texts: list[str] = []
    while len(texts) < count:
        pool = _pick_pool(pools, rng)
        subject = rng.choice(pool.subjects)
        if len(texts) % 4 == 0:
            text = rng.choice(pool.queries).format(name=subject.name)
        else:
            text = _document(pool, subject, pools, rng)
        if text not in taken:
            texts.append(text)
            taken.add(text)
    return [
        EmbeddingsRequest(tuple(texts[start : start + INPUTS_PER_REQUEST]))
        for start in range(0, len(texts), INPUTS_PER_REQUEST)
    ]


def generate(task: Task, purpose: Purpose) -> list[Request]:
    if task is Task.RERANK:
        return list(generate_rerank(purpose))
    return list(generate_embeddings(purpose))


def to_jsonl(requests: list[Request]) -> str:
    lines = []
    for request in requests:
        if isinstance(request, RerankRequest):
            lines += [json.dumps({"query": request.query, "document": d}, ensure_ascii=False)
                      for d in request.documents]  # fmt: skip
        else:
            lines += [json.dumps({"text": text}, ensure_ascii=False) for text in request.texts]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--check", is_flag=True, help="Exit 1 if a shipped file differs from what would be written.")
def main(check: bool) -> None:
    """Write the shipped calibration and evaluation sets into export_models/data/."""
    folder = DATA_FOLDER
    stale = []
    for task in Task:
        for purpose in ("calibration", "evaluation"):
            path = folder / shipped_file(task, purpose)  # type: ignore[arg-type]
            content = to_jsonl(generate(task, purpose))  # type: ignore[arg-type]
            if check:
                if not path.is_file() or path.read_text(encoding="utf-8") != content:
                    stale.append(path.name)
            else:
                path.write_text(content, encoding="utf-8")
                click.echo(f"wrote {path} ({content.count(chr(10))} items)")
    if stale:
        raise click.ClickException(f"stale: {', '.join(stale)}; run python -m tools.calibration_sets")


if __name__ == "__main__":
    main()
