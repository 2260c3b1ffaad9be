"""Server-side word splitter for BertJapaneseTokenizer models (no torch, no transformers).

Reproduces, for one text, what transformers' BertJapaneseTokenizer does BEFORE the vocabulary
is consulted, and hands the tokenizer IR a string of units separated by single spaces. The IR
(build_ir.py) only splits on " " and runs WordPiece on each unit.

transformers (5.25) for one text:
  1. PreTrainedTokenizer.tokenize: split the text on added tokens (trie, longest match first;
     [CLS] [SEP] [UNK] [PAD] [MASK] and any added token); those chunks are tokens as they are.
  2. every other chunk -> word_tokenizer.tokenize(chunk):
       mecab:   NFKC(chunk) if normalize_text; fugashi.GenericTagger(-d DIC -r DIC/mecabrc OPTION);
                surfaces; lower() if do_lower_case (never for a special-token string)
       sudachi: NFKC(chunk) if normalize_text; sudachipy tokenizer (split mode A/B/C, dict
                small/core/full, projection); surfaces; lower(); trim_whitespace drops blank
                tokens and strips the others
  3. subword step per word:
       wordpiece: for piece in word.split()  (Python whitespace, incl. \\x1c-\\x1f, U+3000 ...)
                    len(piece) > 100 characters -> [UNK], else greedy longest-match-first
       character: for char in NFKC(word): vocab[char] or [UNK]   (no whitespace split!)

Units sent to the IR:
  wordpiece: every piece of step 3 (no whitespace inside by construction), the unk token for
             pieces over max_input_chars_per_word, special chunks as they are (WordPiece finds
             them in the vocabulary whole).
  character: every character of NFKC(word) as its own unit; a whitespace character (which the
             " " separator cannot carry) becomes the unk token: the exporter checks that no
             whitespace character is in the vocabulary (else it refuses the model).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SplitterSpec:
    """What the export records in the tokenizer IR's runtime info (JSON)."""

    kind: str  # "mecab" | "sudachi"
    subword: str  # "wordpiece" | "character"
    normalize_text: bool = True
    do_lower_case: bool = False
    # mecab
    mecab_dic: str | None = "unidic_lite"  # unidic_lite | unidic | ipadic | None (system MeCab via option)
    mecab_option: str = ""
    # sudachi
    split_mode: str = "A"
    dict_type: str = "core"
    projection: str | None = None
    trim_whitespace: bool = False
    # both
    no_split_tokens: list[str] = field(default_factory=list)  # added tokens, split out first
    unk_token: str = "[UNK]"
    max_input_chars_per_word: int = 100
    dictionary_version: str = ""  # package version at export, e.g. "unidic-lite 1.0.8"


class MissingExtra(RuntimeError):
    pass


def _mecab_tagger(spec: SplitterSpec) -> Any:
    try:
        import fugashi
    except ModuleNotFoundError as error:
        raise MissingExtra("this model splits Japanese words with MeCab: pip install 'ovtext[ja]'") from error
    option = spec.mecab_option or ""
    if spec.mecab_dic is not None:
        module_name = {"unidic_lite": "unidic_lite", "unidic": "unidic", "ipadic": "ipadic"}[spec.mecab_dic]
        try:
            module = __import__(module_name)
        except ModuleNotFoundError as error:
            raise MissingExtra(
                f"this model splits Japanese words with MeCab and the {spec.mecab_dic} dictionary: "
                f"pip install 'ovtext[ja]'"
            ) from error
        dic_dir = module.DICDIR
        option = f'-d "{dic_dir}" -r "{os.path.join(dic_dir, "mecabrc")}" ' + option
    return fugashi.GenericTagger(option)


def _sudachi_tokenizer(spec: SplitterSpec) -> Any:
    try:
        from sudachipy import dictionary, tokenizer
    except ModuleNotFoundError as error:
        raise MissingExtra("this model splits Japanese words with Sudachi: pip install 'ovtext[ja]'") from error
    mode = getattr(tokenizer.Tokenizer.SplitMode, spec.split_mode)
    sudachi_dictionary = dictionary.Dictionary(dict=spec.dict_type)
    return sudachi_dictionary.create(mode, projection=spec.projection)


class _Trie:
    """transformers' Trie.split semantics for the added tokens: the leftmost match wins, and
    among matches starting there the longest (a regex alternation, longest tokens first)."""

    def __init__(self, tokens: list[str]) -> None:
        ordered = sorted(set(t for t in tokens if t), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def split(self, text: str) -> list[tuple[str, bool]]:
        if self._pattern is None:
            return [(text, False)]
        out: list[tuple[str, bool]] = []
        start = 0
        for match in self._pattern.finditer(text):
            if match.start() > start:
                out.append((text[start : match.start()], False))
            out.append((match.group(), True))
            start = match.end()
        if start < len(text):
            out.append((text[start:], False))
        return out


class WordSplitter:
    def __init__(self, spec: SplitterSpec) -> None:
        self.spec = spec
        self._trie = _Trie(spec.no_split_tokens)
        self._never_split = set(spec.no_split_tokens)
        if spec.kind == "mecab":
            tagger = _mecab_tagger(spec)
            self._words = lambda text: [word.surface for word in tagger(text)]
        elif spec.kind == "sudachi":
            sudachi = _sudachi_tokenizer(spec)
            self._words = lambda text: [m.surface() for m in sudachi.tokenize(text)]
        else:
            raise ValueError(f"word splitter {spec.kind!r} is not supported")

    def words(self, chunk: str) -> list[str]:
        spec = self.spec
        if spec.normalize_text:
            chunk = unicodedata.normalize("NFKC", chunk)
        out = []
        for token in self._words(chunk):
            if spec.do_lower_case and token not in self._never_split:
                token = token.lower()
            if spec.kind == "sudachi" and spec.trim_whitespace:
                if token.strip() == "":
                    continue
                token = token.strip()
            out.append(token)
        return out

    def units(self, text: str) -> list[str]:
        spec = self.spec
        units: list[str] = []
        for chunk, special in self._trie.split(text):
            if special:
                units.append(chunk)
                continue
            for word in self.words(chunk):
                if spec.subword == "wordpiece":
                    for piece in word.split():
                        units.append(spec.unk_token if len(piece) > spec.max_input_chars_per_word else piece)
                else:  # character
                    for char in unicodedata.normalize("NFKC", word):
                        units.append(spec.unk_token if char.isspace() else char)
        return units

    def __call__(self, text: str) -> str:
        """The string the tokenizer IR takes for `text`."""
        return " ".join(self.units(text))
