"""Workloads: seeded texts whose token lengths hit the targets, measured with the model's own tokenizer.

A workload is one kind of request (one query and its documents, or a list of inputs), repeated by
the measurement loop. Every system gets exactly the same texts: they are generated once per run
and saved to workloads.json beside the results.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from serving.repository.layout import Task
from tools.synthetic_data import SUBJECTS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Primary = Literal["throughput", "latency"]


@dataclass(frozen=True)
class RepeatPolicy:
    """How many timed requests: at least min_requests and min_seconds, at most max_requests.

    warmup_requests: untimed full requests first, one after another, so every system has seen
    the exact request (its sequence lengths, hence its shapes) before the clock starts.
    """

    min_requests: int
    min_seconds: float
    max_requests: int
    warmup_requests: int = 2


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate: n_items texts of min_tokens..max_tokens tokens each (uniform, seeded)."""

    name: str
    title: str
    task: Task
    model_key: str  # which prepared model runs it: "reranker" or "embedder"
    n_items: int
    min_tokens: int
    max_tokens: int
    repeat: RepeatPolicy
    primary: Primary = "throughput"  # what "x HF" compares: docs/s, or p50 latency
    seed: int = 0
    # HTTP servers run it at this many concurrent clients only (None: the config's concurrencies).
    clients: int | None = None
    systems: tuple[str, ...] | None = None  # the systems that run it (None: all)


@dataclass(frozen=True)
class Workload:
    """One generated request: the same for every system."""

    spec: WorkloadSpec
    query: str | None  # rerank workloads
    texts: list[str]  # documents (rerank) or inputs (embeddings)
    target_tokens: list[int]  # the length each text was generated for
    text_tokens: list[int]  # tokens of each text alone, no special tokens (at most the target)
    item_tokens: list[int]  # tokens each item costs the model: the framed pair or framed input

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_items(self) -> int:
        return len(self.texts)

    @property
    def tokens(self) -> int:
        return sum(self.item_tokens)

    def head(self, n_items: int) -> Workload:
        """The same request cut to its first n_items items (for warm-up)."""
        if n_items >= self.n_items:
            return self
        return Workload(self.spec, self.query, self.texts[:n_items], self.target_tokens[:n_items],
                        self.text_tokens[:n_items], self.item_tokens[:n_items])  # fmt: skip


def _count(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def text_of_length(tokenizer: PreTrainedTokenizerBase, target: int, rng: random.Random, lead: int) -> str:
    """Sentences about one subject (then others) cut at a word so the text has ~target tokens.

    The word count is found by bisection on the tokenizer's own count, so lengths land within a
    word of the target whatever the tokenizer (WordPiece or a small Unigram vocabulary).
    """
    subject = SUBJECTS[lead % len(SUBJECTS)]
    sentences = list(subject.facts)
    words: list[str] = []
    while True:
        while sentences:
            words.extend(sentences.pop(0).split())
        if _count(tokenizer, " ".join(words)) >= target:
            break
        sentences = list(rng.choice(SUBJECTS).facts)
        rng.shuffle(sentences)
    low, high = 1, len(words)  # the largest word count whose text has <= target tokens
    while low < high:
        middle = (low + high + 1) // 2
        if _count(tokenizer, " ".join(words[:middle])) <= target:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low])


def generate(spec: WorkloadSpec, tokenizer: PreTrainedTokenizerBase) -> Workload:
    """The workload's texts, seeded; lengths uniform in min_tokens..max_tokens."""
    rng = random.Random(spec.seed)
    query_subject = rng.randrange(len(SUBJECTS))
    query = f"what do you know about {SUBJECTS[query_subject].name}?" if spec.task is Task.RERANK else None
    texts, targets = [], []
    for index in range(spec.n_items):
        targets.append(rng.randint(spec.min_tokens, spec.max_tokens))
        # One document in four leads with the query's subject: a ranking worth keeping.
        lead = query_subject if index % 4 == 0 else rng.randrange(len(SUBJECTS))
        texts.append(text_of_length(tokenizer, targets[-1], rng, lead))
    text_tokens = [_count(tokenizer, text) for text in texts]
    if query is not None:
        framed = tokenizer([query] * len(texts), texts, truncation=False)["input_ids"]
    else:
        framed = tokenizer(texts, truncation=False)["input_ids"]
    return Workload(spec, query, texts, targets, text_tokens, [len(ids) for ids in framed])


def save(workloads: list[Workload], path: Path) -> None:
    path.write_text(json.dumps([asdict(workload) for workload in workloads], indent=1), encoding="utf-8")


def load(path: Path) -> list[Workload]:
    loaded = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        spec = dict(item.pop("spec"))
        spec["task"] = Task(spec["task"])
        spec["repeat"] = RepeatPolicy(**spec["repeat"])
        if spec.get("systems") is not None:
            spec["systems"] = tuple(spec["systems"])
        loaded.append(Workload(spec=WorkloadSpec(**spec), **item))
    return loaded
