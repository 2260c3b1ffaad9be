"""Tiny SPLADE (BertForMaskedLM + SpladePooling max/relu) and inference-free SPLADE (Router: query SparseStaticEmbedding, document MLM+SPLADE)."""
import sys, torch
sys.path.insert(0, "/work/main")
from tools.replicas import train_bert_tokenizer
from transformers import BertConfig, BertForMaskedLM
from sentence_transformers import SparseEncoder
from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling, SparseStaticEmbedding
from sentence_transformers.models import Router

torch.manual_seed(0)
tok = train_bert_tokenizer(2000)
cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                 max_position_embeddings=512, initializer_range=0.2, architectures=["BertForMaskedLM"])
BertForMaskedLM(cfg).eval().save_pretrained("/work/r19/mlm-tiny"); tok.save_pretrained("/work/r19/mlm-tiny")
for strategy, act in (("max", "relu"), ("sum", "log1p_relu")):
    m = SparseEncoder(modules=[MLMTransformer("/work/r19/mlm-tiny"), SpladePooling(pooling_strategy=strategy, activation_function=act)])
    m.save(f"/work/r19/splade-{strategy}-{act}")
# inference-free: query side = static weight per token id
weight = torch.rand(len(tok)) * 3
q = SparseStaticEmbedding(tokenizer=tok, weight=weight, frozen=True)
router = Router.for_query_document(query_modules=[q], document_modules=[MLMTransformer("/work/r19/mlm-tiny"), SpladePooling("max")])
SparseEncoder(modules=[router], similarity_fn_name="dot").save("/work/r19/splade-inference-free")
