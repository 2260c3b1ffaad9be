"""The embeddings-style IR (adds [CLS] ... [SEP], as ovtext's embedder IRs do) against
BertJapaneseTokenizer with special tokens, saved and read back."""
import os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
import openvino as ov, openvino_tokenizers  # noqa: F401
from transformers import AutoTokenizer
from build_ir import build_wordpiece_ir
from parity import spec_from_hf
from sentences import generate
from splitter import WordSplitter
hf = AutoTokenizer.from_pretrained("/tmp/proto-ja/mecab-unidic_lite-wordpiece")
sp = WordSplitter(spec_from_hf(hf))
ir = build_wordpiece_ir(hf.convert_ids_to_tokens(list(range(len(hf.vocab)))),
                        add_special_tokens=(hf.cls_token_id, hf.sep_token_id))
ov.save_model(ir, "/tmp/proto-ja/ja_tokenizer_specials.xml")
core = ov.Core()
c = core.compile_model(core.read_model("/tmp/proto-ja/ja_tokenizer_specials.xml"), "CPU")
sents = generate(240)
o = c([sp(s) for s in sents])
got = [r[m.astype(bool)].tolist() for r, m in zip(o["input_ids"], o["attention_mask"])]
want = hf(sents)["input_ids"]
print("with [CLS]/[SEP]: equal", sum(a == b for a, b in zip(got, want)), "of", len(sents))
