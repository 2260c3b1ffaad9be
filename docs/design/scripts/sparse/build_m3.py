"""Tiny bge-m3 replica: XLMRobertaModel (bge-m3 config, reduced) + sparse_linear.pt + colbert_linear.pt."""
import json, sys
from pathlib import Path
import torch
sys.path.insert(0, "/work/main")
from tools.xlmr_models import train_xlmr_tokenizer
from transformers import XLMRobertaConfig, XLMRobertaModel

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/r19/m3-tiny")
torch.manual_seed(0)
tok = train_xlmr_tokenizer(1000, model_max_length=8192, seed=0)
cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=128, max_position_embeddings=8194, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
    eos_token_id=2, layer_norm_eps=1e-5, initializer_range=0.2, architectures=["XLMRobertaModel"])
model = XLMRobertaModel(cfg, add_pooling_layer=True).eval()
model.save_pretrained(out); tok.save_pretrained(out)
h = cfg.hidden_size
sparse = torch.nn.Linear(h, 1); colbert = torch.nn.Linear(h, h)
torch.nn.init.normal_(sparse.weight, std=0.3); torch.nn.init.normal_(sparse.bias, std=0.3)
torch.save(sparse.state_dict(), out / "sparse_linear.pt")
torch.save(colbert.state_dict(), out / "colbert_linear.pt")
print({k: tuple(v.shape) for k, v in torch.load(out / "sparse_linear.pt").items()},
      {k: tuple(v.shape) for k, v in torch.load(out / "colbert_linear.pt").items()})
