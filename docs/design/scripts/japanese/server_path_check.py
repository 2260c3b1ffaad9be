"""The prototype IR through ovtext's own serving.pipelines.tokenize.Tokenizer (packed strings in, ragged ids out),
saved and read back; the splitter in front. Needs parity.py to have written /tmp/proto-ja first."""
import sys, os
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/work/notes/proto-ja")
os.environ["HF_HUB_OFFLINE"] = "1"
import openvino as ov
from serving.pipelines.tokenize import Tokenizer
from build_ir import build_wordpiece_ir
from splitter import WordSplitter
from parity import spec_from_hf
from sentences import generate
from transformers import AutoTokenizer
hf = AutoTokenizer.from_pretrained("/tmp/proto-ja/mecab-ipadic-wordpiece")
spec = spec_from_hf(hf); sp = WordSplitter(spec)
core = ov.Core()
ir = build_wordpiece_ir(hf.convert_ids_to_tokens(list(range(len(hf.vocab)))))
ov.save_model(ir, "/tmp/proto-ja/ja_tokenizer.xml")
tok = Tokenizer(core, core.read_model("/tmp/proto-ja/ja_tokenizer.xml"), "ja")
print("packed_input", tok.packed_input, "ragged", tok.ragged)
sents = generate(240)
got = tok.tokenize_blocking([sp(s) for s in sents])
want = hf(sents, add_special_tokens=False)["input_ids"]
print("equal", sum(got.row(i).tolist() == w for i, w in enumerate(want)), "of", len(sents))
tok.close()
