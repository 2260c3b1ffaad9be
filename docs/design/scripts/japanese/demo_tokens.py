"""Print what BertJapaneseTokenizer does with a few telling inputs (folder from parity.py)."""
import os, sys
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers import AutoTokenizer
folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/proto-ja/mecab-unidic_lite-wordpiece"
tok = AutoTokenizer.from_pretrained(folder)
print(type(tok).__name__, "is_fast", tok.is_fast, "word", tok.word_tokenizer_type, "subword", tok.subword_tokenizer_type)
for text in ["ＡＢＣ１２３　ｶﾀｶﾅ", "3.14と1,000円", "絵文字😀🐼テスト👨\u200d👩\u200d👧", "x\x1cy", "［ＳＥＰ］と[SEP]", "Hello World", "##"]:
    print(repr(text), "->", tok.word_tokenizer.tokenize(text), "->", tok.tokenize(text))
enc = tok("東京", "大阪", return_token_type_ids=True)
print("pair ids", enc["input_ids"], "types", enc["token_type_ids"], tok.convert_ids_to_tokens(enc["input_ids"]))
fast = AutoTokenizer.from_pretrained(folder, use_fast=True)
print("use_fast=True gives", type(fast).__name__, fast.is_fast)
