"""LUKE: does a word-only LukeModel convert through torch.export + openvino.convert_model, and does
openvino-tokenizers convert MLukeTokenizer (transformers 5: a tokenizers-backed Unigram)?"""
import os, sys, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
import numpy as np, torch, openvino as ov
from transformers import LukeConfig, LukeModel

torch.manual_seed(0)
config = LukeConfig(vocab_size=500, entity_vocab_size=10, hidden_size=64, entity_emb_size=32, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
                    pad_token_id=1, bos_token_id=0, eos_token_id=2)
model = LukeModel(config).eval()

class WordOnly(torch.nn.Module):
    def __init__(self, m):
        super().__init__(); self.m = m
    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

wrapped = WordOnly(model).eval()
ids = torch.randint(3, 500, (2, 12)); ids[:, 0] = 0; ids[:, -1] = 2
mask = torch.ones_like(ids); mask[1, 8:] = 0; ids[1, 8:] = 1
batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
t = time.time()
ep = torch.export.export(wrapped, (ids, mask), dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
ov_model = ov.convert_model(ep)
compiled = ov.Core().compile_model(ov_model, "CPU")
print("convert seconds", round(time.time() - t, 1))
with torch.no_grad():
    want = wrapped(ids, mask).numpy()
got = compiled([ids.numpy(), mask.numpy()])[0]
m = mask.numpy().astype(bool)
print("max abs diff on real tokens", float(np.abs(got - want)[m].max()))
ids2 = torch.randint(3, 500, (3, 30)); mask2 = torch.ones_like(ids2)
with torch.no_grad():
    want2 = wrapped(ids2, mask2).numpy()
print("other shape max abs diff", float(np.abs(compiled([ids2.numpy(), mask2.numpy()])[0] - want2).max()))

# MLukeTokenizer
from transformers import MLukeTokenizer
from sentences import generate
sents = generate(240)
chars = sorted({c for s in sents for c in s if not c.isspace()})
pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
pieces += [(c, -5.0 - i * 1e-3) for i, c in enumerate(chars)] + [("▁" + c, -6.0) for c in chars[:300]]
pieces += [("東京", -3.0), ("▁東京", -3.0), ("です", -3.5), ("ます", -3.5), ("▁the", -3.0)]
tok = MLukeTokenizer(vocab=pieces)
print(type(tok).__mro__[1].__name__, tok.is_fast)
from openvino_tokenizers import convert_tokenizer
try:
    ir = convert_tokenizer(tok, add_special_tokens=False)
    c = ov.Core().compile_model(ir, "CPU")
    out = c(sents)
    got = [r[mm.astype(bool)].tolist() for r, mm in zip(out["input_ids"], out["attention_mask"])]
    want = tok(sents, add_special_tokens=False)["input_ids"]
    bad = [(s, g, w) for s, g, w in zip(sents, got, want) if g != w]
    print("MLuke via openvino-tokenizers: equal", len(sents) - len(bad), "of", len(sents))
    for s, g, w in bad[:4]:
        print(repr(s), g[:12], w[:12])
except Exception as e:
    print("convert_tokenizer failed:", type(e).__name__, str(e)[:300])
