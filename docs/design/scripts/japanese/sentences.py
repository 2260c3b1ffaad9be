"""Japanese parity sentences generated offline from the MeCab dictionaries' own entries.

A MeCab sys.dic is: a 72-byte header (10 little-endian uint32: magic, version, type, lexsize,
lsize, rsize, dsize, tsize, fsize, dummy; then a 32-byte charset), the double array (dsize
bytes), the token table (tsize bytes) and the feature strings (fsize bytes, NUL-separated CSV).
The feature strings of unidic-lite hold the written form (orth, field 8) of every entry, so
real dictionary words can be drawn without a corpus. Seeded: the same list every run.

The sentences mix what BertJapaneseTokenizer must get right: Japanese (kanji, kana), mixed
Japanese-English, ASCII and full-width numbers/letters, half-width katakana, emoji (incl. ZWJ
sequences, skin tones, flags, variation selectors), odd whitespace (U+3000, NBSP, tabs, newlines,
zero-width space, \\x1c which Python's str.split treats as whitespace), special-token literals
([SEP], full-width ［ＳＥＰ］ which NFKC turns into "[SEP]"), upper case (for do_lower_case),
accents, "##" prefixes and words longer than WordPiece's 100-character limit.
"""

from __future__ import annotations

import os
import random
import struct
import unicodedata
from collections.abc import Iterator

HALF_WIDTH_KATAKANA = {unicodedata.normalize("NFKC", chr(cp)): chr(cp) for cp in range(0xFF66, 0xFF9E)}
EMOJI = [
    "😀", "🐼", "🍣", "🗾", "❤️", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "☕", "✨", "🎌", "🤖", "1️⃣", "🏳️\u200d🌈",
]
ENGLISH = [
    "OpenVINO", "BERT", "embedding", "reranker", "Tokyo", "API", "GPU", "Python", "iPhone", "COVID-19",
    "e-mail", "Wi-Fi", "AI", "Hello World", "naïve café", "Straße", "ChatGPT", "HTTP/2", "C++", "OK",
]
ODD_SPACES = [" ", "\u3000", "\u00a0", "\t", "\n", "  ", "\u200b", "\x1c", "\u2003"]
FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def _features(dicdir: str) -> list[list[str]]:
    with open(os.path.join(dicdir, "sys.dic"), "rb") as f:
        head = f.read(72)
        _magic, _version, _type, _lexsize, _lsize, _rsize, dsize, tsize, fsize, _dummy = struct.unpack(
            "<10I", head[:40]
        )
        f.seek(72 + dsize + tsize)
        block = f.read(fsize)
    return [item.decode("utf-8", "replace").split(",") for item in block.split(b"\0") if item]


def unidic_words(dicdir: str) -> dict[str, list[str]]:
    """Written forms of unidic entries by kind: nouns, place names, verbs and adjectives (dictionary form)."""
    kinds: dict[str, set[str]] = {"noun": set(), "place": set(), "verb": set(), "adjective": set(), "name": set()}
    for fields in _features(dicdir):
        if len(fields) < 9 or not fields[8] or fields[8] == "*":
            continue
        pos, orth = fields[:6], fields[8]
        if pos[0] == "名詞" and pos[1] == "普通名詞" and pos[2] == "一般":
            kinds["noun"].add(orth)
        elif pos[0] == "名詞" and pos[1] == "固有名詞" and pos[2] == "地名":
            kinds["place"].add(orth)
        elif pos[0] == "名詞" and pos[1] == "固有名詞" and pos[2] == "人名":
            kinds["name"].add(orth)
        elif pos[0] == "動詞" and pos[5] == "終止形-一般":
            kinds["verb"].add(orth)
        elif pos[0] == "形容詞" and pos[5] == "終止形-一般":
            kinds["adjective"].add(orth)
    return {kind: sorted(words) for kind, words in kinds.items()}


def _half_width(text: str) -> str:
    return "".join(HALF_WIDTH_KATAKANA.get(ch, ch) for ch in text)


def generate(count: int = 240, seed: int = 20) -> list[str]:
    import unidic_lite

    words = unidic_words(unidic_lite.DICDIR)
    rng = random.Random(seed)

    def pick(kind: str) -> str:
        return rng.choice(words[kind])

    def number() -> str:
        return rng.choice([str(rng.randint(0, 99999)), f"{rng.randint(0, 999)}.{rng.randint(0, 99)}",
                           f"{rng.randint(1, 9)},{rng.randint(100, 999)}", "３．１４", "１２３４５", "½", "Ⅻ", "②"])

    templates = [
        lambda: f"{pick('noun')}は{pick('noun')}の{pick('noun')}を{pick('verb')}。",
        lambda: f"{pick('place')}で{pick('noun')}が{pick('adjective')}。",
        lambda: f"{pick('name')}さんは{number()}個の{pick('noun')}を{pick('verb')}",
        lambda: f"{rng.choice(ENGLISH)}の{pick('noun')}について{pick('verb')}？",
        lambda: f"{pick('noun')}{rng.choice(EMOJI)}{pick('noun')}{rng.choice(EMOJI)}",
        lambda: f"{pick('noun')}{rng.choice(ODD_SPACES)}{pick('noun')}{rng.choice(ODD_SPACES)}{rng.choice(ENGLISH)}",
        lambda: _half_width(f"{pick('noun')}の{pick('noun')}"),
        lambda: f"{rng.choice(ENGLISH)} {pick('noun')}".translate(FULL_WIDTH),
        lambda: f"{pick('noun')}[SEP]{pick('noun')}",
        lambda: f"［ＳＥＰ］{pick('noun')}と[CLS] {rng.choice(ENGLISH).upper()}",
        lambda: f"##{pick('noun')} ##abc {pick('verb')}",
        lambda: f"{pick('place')}の{number()}円、{rng.choice(ENGLISH)}!",
        lambda: "".join(pick("noun") for _ in range(rng.randint(8, 20))) + "。",
        lambda: "ア" * rng.randint(95, 140) + f"と{pick('noun')}",
        lambda: f"「{pick('noun')}」『{pick('noun')}』（{rng.choice(ENGLISH)}）…{pick('adjective')}！",
    ]
    fixed = [
        "", " ", "東京都に住んでいます。", "ＡＢＣ１２３　ｶﾀｶﾅ", "絵文字😀🐼テスト👨\u200d👩\u200d👧",
        "a\u200bb c\u00a0d", "x\x1cy", "  先頭と末尾  ", "3.14と1,000円", "e\u0301t\u00e9",
        "パンダは中国に住んでいます", "熊猫吃竹子", "what is a panda?", "[UNK][MASK][PAD]",
    ]
    sentences = list(fixed)
    while len(sentences) < count:
        sentences.append(rng.choice(templates)())
    return sentences


def pairs(sentences: list[str], seed: int = 21) -> Iterator[tuple[str, str]]:
    rng = random.Random(seed)
    for query in sentences:
        yield query, rng.choice(sentences) + rng.choice(sentences)


if __name__ == "__main__":
    for line in generate()[:40]:
        print(repr(line))
