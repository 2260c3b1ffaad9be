"""Parity of (server word splitter + WordPiece IR + BERT framing) with transformers' BertJapaneseTokenizer.

Usage: HF_HUB_OFFLINE=1 /work/venv-r20/bin/python parity.py [--out /tmp/proto-ja]

For each configuration (mecab/unidic_lite, mecab/ipadic, sudachi A and C, each with wordpiece;
mecab/unidic_lite + character; one do_lower_case variant):
  (i)   write a BertJapaneseTokenizer folder offline: vocab.txt built from the words the splitter
        itself produces on half of the generated sentences (whole words, ## pieces, single
        characters, a few characters left out so [UNK] occurs), tokenizer_config.json;
  (ii)  build the tokenizer IR (build_ir.py) and read the splitter spec off the HF tokenizer;
  (iii) tokenize every sentence (ids without special tokens) and every pair both ways; pairs are
        framed (a) with a longest_first framing (frame_pair) against transformers' default and
        (b) with ovtext's own serving/pipelines/framing.py (query whole, document cut) against
        truncation="only_second", at 16, 40 and 512 tokens; report token-id equality.
The IR is saved and read back before use, as the exporter and server do.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import openvino as ov  # noqa: E402
import openvino_tokenizers  # noqa: E402,F401
from build_ir import build_wordpiece_ir  # noqa: E402
from sentences import generate, pairs  # noqa: E402
from splitter import SplitterSpec, WordSplitter  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

CONFIGS = {
    "mecab-unidic_lite-wordpiece": dict(word_tokenizer_type="mecab", mecab_kwargs={"mecab_dic": "unidic_lite"}),
    "mecab-ipadic-wordpiece": dict(word_tokenizer_type="mecab", mecab_kwargs={"mecab_dic": "ipadic"}),
    "mecab-default-dic-wordpiece": dict(word_tokenizer_type="mecab"),  # no mecab_kwargs (tohoku v1 style)
    "mecab-unidic_lite-lower": dict(
        word_tokenizer_type="mecab", mecab_kwargs={"mecab_dic": "unidic_lite"}, do_lower_case=True
    ),
    "sudachi-A-wordpiece": dict(word_tokenizer_type="sudachi", sudachi_kwargs={"sudachi_split_mode": "A"}),
    "sudachi-C-trim-wordpiece": dict(
        word_tokenizer_type="sudachi",
        sudachi_kwargs={"sudachi_split_mode": "C", "trim_whitespace": True},
    ),
    "sudachi-B-normalized-projection": dict(
        word_tokenizer_type="sudachi",
        sudachi_kwargs={"sudachi_split_mode": "B", "sudachi_projection": "normalized"},
    ),
    "mecab-unidic_lite-character": dict(
        word_tokenizer_type="mecab", mecab_kwargs={"mecab_dic": "unidic_lite"}, subword_tokenizer_type="character"
    ),
    "sudachi-A-character": dict(
        word_tokenizer_type="sudachi", sudachi_kwargs={"sudachi_split_mode": "A"}, subword_tokenizer_type="character"
    ),
}


def spec_from_hf(tokenizer) -> SplitterSpec:
    """What the exporter records: read off the loaded HF tokenizer (resolved defaults included)."""
    from transformers.models.bert_japanese import tokenization_bert_japanese as tbj

    kind = tokenizer.word_tokenizer_type
    kwargs = dict(kind=kind, subword=tokenizer.subword_tokenizer_type, do_lower_case=bool(tokenizer.lower_case))
    no_split = [str(t) for t in tokenizer.added_tokens_encoder] + list(tokenizer.all_special_tokens)
    for token in tokenizer.added_tokens_decoder.values():
        if token.lstrip or token.rstrip or token.single_word:
            raise ValueError(f"added token {token.content!r} strips or is single-word: not reproduced")
    if kind == "mecab":
        defaults = inspect.signature(tbj.MecabTokenizer.__init__).parameters
        mk = tokenizer.mecab_kwargs or {}
        kwargs.update(
            normalize_text=mk.get("normalize_text", defaults["normalize_text"].default),
            mecab_dic=mk.get("mecab_dic", defaults["mecab_dic"].default),
            mecab_option=mk.get("mecab_option") or "",
        )
    elif kind == "sudachi":
        defaults = inspect.signature(tbj.SudachiTokenizer.__init__).parameters
        sk = tokenizer.sudachi_kwargs or {}
        for key in ("sudachi_config_path", "sudachi_resource_dir"):
            if sk.get(key):
                raise ValueError(f"{key} is not reproduced")
        kwargs.update(
            normalize_text=sk.get("normalize_text", defaults["normalize_text"].default),
            trim_whitespace=sk.get("trim_whitespace", defaults["trim_whitespace"].default),
            split_mode=sk.get("sudachi_split_mode", defaults["sudachi_split_mode"].default),
            dict_type=sk.get("sudachi_dict_type", defaults["sudachi_dict_type"].default),
            projection=sk.get("sudachi_projection", defaults["sudachi_projection"].default),
        )
    else:
        raise ValueError(f"{kind} is refused")
    if tokenizer.subword_tokenizer_type == "character":
        whitespace_in_vocab = [t for t in tokenizer.vocab if len(t) == 1 and t.isspace()]
        if whitespace_in_vocab:
            raise ValueError(f"whitespace characters in a character vocabulary: {whitespace_in_vocab!r}")
    max_chars = getattr(tokenizer.subword_tokenizer, "max_input_chars_per_word", 100)
    return SplitterSpec(
        **kwargs,
        no_split_tokens=sorted(set(no_split)),
        unk_token=str(tokenizer.unk_token),
        max_input_chars_per_word=max_chars,
    )


def build_vocab(words: list[str], rng: random.Random, character: bool) -> list[str]:
    counts = Counter(w for word in words for w in word.split())
    chars = sorted({c for word in counts for c in word})
    dropped = set(rng.sample(chars, max(1, len(chars) // 20)))  # ~5% characters unknown -> [UNK]
    vocab = list(SPECIALS)
    seen = set(vocab)

    def add(token: str) -> None:
        if token not in seen and not any(c.isspace() for c in token):
            seen.add(token)
            vocab.append(token)

    for c in chars:
        if c not in dropped:
            add(c)
            if not character:
                add("##" + c)
    if not character:
        for word, _ in counts.most_common(800):
            if not dropped & set(word):
                add(word)
                if len(word) > 2:
                    cut = rng.randint(1, len(word) - 1)
                    add("##" + word[cut:])
        for extra in ("#", "##", "###", "##abc", "ab"):
            add(extra)
    return vocab


def write_folder(folder: Path, vocab: list[str], config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    tokenizer_config = {
        "tokenizer_class": "BertJapaneseTokenizer",
        "model_max_length": 512,
        "do_lower_case": False,
        "subword_tokenizer_type": "wordpiece",
        **config,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, ensure_ascii=False, indent=1))


def frame_pair(q: list[int], d: list[int], cls: int, sep: int, max_length: int) -> list[int]:
    """ovtext framing for BERT pairs, HF longest_first truncation (transformers 5 formula)."""
    remove = len(q) + len(d) + 3 - max_length
    if remove > 0:
        first = min(abs(len(d) - len(q)), remove)
        second = remove - first
        if len(q) > len(d):
            q_cut, d_cut = first + second // 2, second - second // 2
        else:
            q_cut, d_cut = second // 2, first + second - second // 2
        q = q[: len(q) - q_cut]
        d = d[: len(d) - d_cut]
    return [cls, *q, sep, *d, sep]


def ovtext_framing():
    sys.path.insert(0, "/work/main")  # read-only import of the project's framing code
    from serving.pipelines import framing
    from serving.repository.layout import TokenizerInfo

    return framing, TokenizerInfo


def ir_ids(compiled: ov.CompiledModel, texts: list[str]) -> list[list[int]]:
    out = compiled(texts)
    ids, mask = out["input_ids"], out["attention_mask"]
    return [row[m.astype(bool)].tolist() for row, m in zip(ids, mask)]


def run(out_dir: Path) -> dict:
    from transformers import AutoTokenizer

    sentences = generate(240)
    half = sentences[: len(sentences) // 2]
    rng = random.Random(7)
    results = {}
    core = ov.Core()
    for name, config in CONFIGS.items():
        character = config.get("subword_tokenizer_type") == "character"
        # vocabulary from the words this very configuration produces on half the sentences
        probe_folder = out_dir / f"{name}-probe"
        write_folder(probe_folder, list(SPECIALS) + ["a"], config)
        probe = AutoTokenizer.from_pretrained(probe_folder)
        words = [w for s in half for w in probe.word_tokenizer.tokenize(s)]
        vocab = build_vocab(words, rng, character)
        folder = out_dir / name
        write_folder(folder, vocab, config)
        hf = AutoTokenizer.from_pretrained(folder)
        assert type(hf).__name__ == "BertJapaneseTokenizer", type(hf)
        spec = spec_from_hf(hf)
        splitter = WordSplitter(spec)
        # Saved and read back, as the exporter and the server do (an attribute that XML cannot hold
        # would only show here).
        ir_path = folder / "openvino_tokenizer.xml"
        ov.save_model(build_wordpiece_ir(hf.convert_ids_to_tokens(list(range(len(vocab)))),
                                         unk_token=spec.unk_token), ir_path)
        compiled = core.compile_model(core.read_model(ir_path), "CPU")
        # singles
        want = hf(sentences, add_special_tokens=False)["input_ids"]
        got = ir_ids(compiled, [splitter(s) for s in sentences])
        bad = [(s, g, w) for s, g, w in zip(sentences, got, want) if g != w]
        # pairs, truncated at several limits
        pair_list = list(pairs(sentences))
        pair_bad = 0
        checked = 0
        cls, sep = hf.cls_token_id, hf.sep_token_id
        for max_length in (16, 40, 512):
            want_pairs = hf([q for q, _ in pair_list], [d for _, d in pair_list], truncation=True,
                            max_length=max_length)["input_ids"]
            q_ids = ir_ids(compiled, [splitter(q) for q, _ in pair_list])
            d_ids = ir_ids(compiled, [splitter(d) for _, d in pair_list])
            for qi, di, w in zip(q_ids, d_ids, want_pairs):
                checked += 1
                pair_bad += frame_pair(qi, di, cls, sep, max_length) != list(w)
        # ovtext's own rerank framing (serving/pipelines/framing.py, read-only from /work/main):
        # the query whole, the document cut to what is left (CUT_RIGHT) == HF truncation="only_second".
        ovtext_checked = ovtext_bad = skipped = 0
        framing, TokenizerInfo = ovtext_framing()
        q_ids = ir_ids(compiled, [splitter(q) for q, _ in pair_list])
        d_ids = ir_ids(compiled, [splitter(d) for _, d in pair_list])
        for max_length in (16, 40, 512):
            info = TokenizerInfo(max_length=max_length, pad_token_id=hf.pad_token_id, single_prefix=[cls],
                                 single_suffix=[sep], pair_prefix=[cls], pair_middle=[sep], pair_suffix=[sep],
                                 second_type_id=1)
            for (q, d), qi, di in zip(pair_list, q_ids, d_ids):
                room = max_length - len(qi) - 3
                if room < 1:  # ovtext refuses (InputTooLong); transformers cannot truncate only_second either
                    skipped += 1
                    continue
                expected = hf(q, d, truncation="only_second", max_length=max_length, return_token_type_ids=True)
                frame = framing.pair_frame(info, np.asarray(qi))
                segments = framing.whole_texts(framing.RaggedTokens.from_lists([di]), room)
                batch = framing.build_batch(frame, segments, np.zeros(1), info.pad_token_id)
                ovtext_checked += 1
                ovtext_bad += (batch.input_ids[0].tolist() != list(expected["input_ids"])
                               or batch.token_type_ids[0].tolist() != list(expected["token_type_ids"]))
        unk = hf.unk_token_id
        results[name] = {
            "ovtext_framing_only_second": ovtext_checked,
            "ovtext_framing_equal": ovtext_checked - ovtext_bad,
            "query_too_long_skipped": skipped,
            "vocab": len(vocab),
            "spec": {k: v for k, v in spec.__dict__.items() if k != "no_split_tokens"},
            "singles": len(sentences),
            "singles_equal": len(sentences) - len(bad),
            "pairs": checked,
            "pairs_equal": checked - pair_bad,
            "tokens": sum(len(w) for w in want),
            "unk_tokens": sum(w.count(unk) for w in want),
            "first_mismatches": [(s, g[:20], w[:20]) for s, g, w in bad[:3]],
        }
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "spec"}, ensure_ascii=False))
    return results


def speed(n: int = 1000) -> dict:
    """Seconds per 1k sentences: fugashi split alone, the full server splitter, the IR."""
    import fugashi
    import unidic_lite

    sentences = (generate(240) * (n // 240 + 1))[:n]
    tagger = fugashi.GenericTagger(f'-d "{unidic_lite.DICDIR}" -r "{os.path.join(unidic_lite.DICDIR, "mecabrc")}"')
    out = {"chars_per_sentence": round(sum(map(len, sentences)) / n, 1)}
    t = time.perf_counter()
    for s in sentences:
        [w.surface for w in tagger(s)]
    out["fugashi_surfaces_s_per_1k"] = round((time.perf_counter() - t) * 1000 / n, 4)
    for kind, spec in (
        ("mecab_unidic_lite", SplitterSpec(kind="mecab", subword="wordpiece", no_split_tokens=SPECIALS)),
        ("mecab_ipadic", SplitterSpec(kind="mecab", subword="wordpiece", mecab_dic="ipadic", no_split_tokens=SPECIALS)),
        ("sudachi_A", SplitterSpec(kind="sudachi", subword="wordpiece", no_split_tokens=SPECIALS)),
    ):
        splitter = WordSplitter(spec)
        t = time.perf_counter()
        joined = [splitter(s) for s in sentences]
        out[f"splitter_{kind}_s_per_1k"] = round((time.perf_counter() - t) * 1000 / n, 4)
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(Path("/tmp/proto-ja/mecab-unidic_lite-wordpiece"))
    t = time.perf_counter()
    hf(sentences, add_special_tokens=False)
    out["transformers_slow_tokenizer_s_per_1k"] = round((time.perf_counter() - t) * 1000 / n, 4)
    vocab = hf.convert_ids_to_tokens(list(range(hf.vocab_size)))
    compiled = ov.Core().compile_model(build_wordpiece_ir(vocab), "CPU")
    t = time.perf_counter()
    compiled(joined)
    out["wordpiece_ir_s_per_1k"] = round((time.perf_counter() - t) * 1000 / n, 4)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/proto-ja")
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    results = run(Path(args.out))
    if args.speed:
        results["speed"] = speed()
        print("speed", results["speed"])
    Path(args.out, "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
