"""Show that the parity test can fail: the same run with the IR as openvino-tokenizers builds a
BERT WordPiece by default ("##" suffix indicator, max_bytes_per_word=100), and with a splitter
that skips Python's whitespace split of MeCab surfaces (the latter only drops blank words here, so it
passes on this data: MeCab surfaces never hold inner whitespace).

Usage: python naive_check.py default-op mecab-ipadic-wordpiece,sudachi-A-wordpiece
(measured: ipadic 224/240 singles, 621/720 pairs; sudachi A 238/240, 705/720)."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
import build_ir, parity, splitter

def naive_tries(vocab, suffix="##"):
    return list(vocab), np.arange(len(vocab), dtype=np.int32), "##"

mode = sys.argv[1]
if mode == "default-op":
    build_ir.wordpiece_tries = naive_tries
    orig = build_ir.build_wordpiece_ir
    parity.build_wordpiece_ir = lambda vocab, unk_token="[UNK]", **kw: orig(vocab, unk_token=unk_token, max_input_chars_per_word=25)
elif mode == "no-whitespace-split":
    orig_units = splitter.WordSplitter.units
    def units(self, text):
        out = []
        for chunk, special in self._trie.split(text):
            out += [chunk] if special else [w for w in self.words(chunk) if w.strip()]
        return out
    splitter.WordSplitter.units = units
parity.CONFIGS = {k: v for k, v in parity.CONFIGS.items() if k in sys.argv[2].split(",")}
parity.run(Path("/tmp/proto-ja-naive"))
