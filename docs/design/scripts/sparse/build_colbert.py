import sys, torch
sys.path.insert(0, "/work/main")
from tools.replicas import train_bert_tokenizer
from transformers import BertConfig, BertModel
from pylate import models
torch.manual_seed(0)
tok = train_bert_tokenizer(2000)
cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                 max_position_embeddings=512, initializer_range=0.2, architectures=["BertModel"])
BertModel(cfg).eval().save_pretrained("/work/r19/bert-tiny"); tok.save_pretrained("/work/r19/bert-tiny")
m = models.ColBERT(model_name_or_path="/work/r19/bert-tiny", embedding_size=16, document_length=40, query_length=12, device="cpu")
m.save("/work/r19/colbert-tiny")
