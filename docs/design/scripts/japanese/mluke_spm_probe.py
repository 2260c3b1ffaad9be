"""MLukeTokenizer as transformers 5 loads a real-format checkpoint (sentencepiece.bpe.model +
entity_vocab.json, no tokenizer.json: sonoisa/sentence-luke-japanese-base-lite's file set).
Trains a tiny SentencePiece Unigram model on the parity sentences, writes the folder, loads it
with AutoTokenizer and compares with (a) the fairseq ids the model was trained with
(<s>=0 <pad>=1 </s>=2 <unk>=3: spm <unk> 0 -> 3, spm id + 1 for the rest: what transformers 4's slow
MLukeTokenizer gave) and (b) openvino-tokenizers' conversion. Needs `sentencepiece` + `protobuf`."""
import io, json, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
import sentencepiece as spm
from sentences import generate

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/proto-ja/mluke")
out.mkdir(parents=True, exist_ok=True)
sents = [s for s in generate(240) if s.strip()]
model = io.BytesIO()
spm.SentencePieceTrainer.train(sentence_iterator=iter(sents * 3), model_writer=model, vocab_size=800,
                               model_type="unigram", character_coverage=0.98,
                               normalization_rule_name="nmt_nfkc", unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
(out / "sentencepiece.bpe.model").write_bytes(model.getvalue())
(out / "entity_vocab.json").write_text(json.dumps({"[MASK2]": 3, "[MASK]": 0, "[PAD]": 2, "[UNK]": 1}))
(out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MLukeTokenizer", "model_max_length": 512}))
sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(out)
print(type(tok).__name__, "fast", tok.is_fast, "vocab_size", tok.vocab_size)
print("special ids: <s>", tok.convert_tokens_to_ids("<s>"), "</s>", tok.convert_tokens_to_ids("</s>"),
      "<pad>", tok.pad_token_id, "<unk>", tok.unk_token_id, "cls", tok.cls_token_id)
probe = ["東京都に住んでいます。", "ＡＢＣ１２３　ｶﾀｶﾅ", "what is a panda?"]
for text in probe:
    hf_ids = tok(text, add_special_tokens=False)["input_ids"]
    fairseq = [3 if i == 0 else i + 1 for i in sp.encode(text)]
    print(repr(text), "transformers5", hf_ids[:10], "fairseq(spm+1)", fairseq[:10],
          "equal" if hf_ids == fairseq else "DIFFERENT")
want = tok(sents, add_special_tokens=False)["input_ids"]
fair = [[3 if i == 0 else i + 1 for i in sp.encode(s)] for s in sents]  # fairseq: spm <unk> 0 -> 3
print("transformers 5 == fairseq ids on", sum(a == b for a, b in zip(want, fair)), "of", len(sents))
import openvino as ov
from openvino_tokenizers import convert_tokenizer
c = ov.Core().compile_model(convert_tokenizer(tok, add_special_tokens=False), "CPU")
o = c(sents)
got = [r[m.astype(bool)].tolist() for r, m in zip(o["input_ids"], o["attention_mask"])]
print("openvino-tokenizers == transformers 5 on", sum(a == b for a, b in zip(got, want)), "of", len(sents))
print("openvino-tokenizers == fairseq on", sum(a == b for a, b in zip(got, fair)), "of", len(sents))

# The same sentencepiece.bpe.model read as an XLM-R tokenizer (XLMRobertaConverter: fairseq
# alignment + the model's Precompiled nmt_nfkc normalizer), and its openvino-tokenizers IR.
from transformers import XLMRobertaTokenizer
xlmr = XLMRobertaTokenizer.from_pretrained(out)
xw = xlmr(sents, add_special_tokens=False)["input_ids"]
print("XLMRobertaTokenizer on the same .model == fairseq on", sum(a == b for a, b in zip(xw, fair)), "of", len(sents))
cx = ov.Core().compile_model(convert_tokenizer(xlmr, add_special_tokens=False), "CPU")
o = cx(sents)
gx = [r[m.astype(bool)].tolist() for r, m in zip(o["input_ids"], o["attention_mask"])]
print("its openvino-tokenizers IR == fairseq on", sum(a == b for a, b in zip(gx, fair)), "of", len(sents))
print("pair framing", xlmr("東京", "大阪")["input_ids"])
