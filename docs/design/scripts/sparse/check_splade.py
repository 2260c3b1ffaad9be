import numpy as np, torch, openvino as ov
from safetensors.numpy import load_file
from transformers import AutoTokenizer, AutoModelForMaskedLM
from sentence_transformers import SparseEncoder
texts = ["The giant panda is a bear species endemic to China.", "short text", "hello world, hello again world!",
         "Le chat est sur la table."]
tok = AutoTokenizer.from_pretrained("/work/r19/mlm-tiny"); mlm = AutoModelForMaskedLM.from_pretrained("/work/r19/mlm-tiny").eval()

def splade_np(logits, mask, strategy, act):                       # the numpy form of SpladePooling.forward
    x = np.log1p(np.maximum(logits * mask[..., None], 0))
    if act == "log1p_relu": x = np.log1p(x)
    return x.max(axis=1) if strategy == "max" else x.sum(axis=1)

class SpladeIR(torch.nn.Module):                                   # MLM logits + pooling inside the graph
    def __init__(self, mlm, strategy, act): super().__init__(); self.mlm, self.strategy, self.act = mlm, strategy, act
    def forward(self, input_ids, attention_mask, token_type_ids):
        logits = self.mlm(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        x = torch.log1p(torch.relu(logits * attention_mask.unsqueeze(-1).to(logits.dtype)))
        if self.act == "log1p_relu": x = torch.log1p(x)
        return x.amax(dim=1) if self.strategy == "max" else x.sum(dim=1)     # (B, V)

e = tok(texts, padding=True, truncation=True, return_tensors="pt")
with torch.no_grad(): logits = mlm(**e).logits.numpy()
mask = e["attention_mask"].numpy().astype(np.float32)
for strategy, act in (("max", "relu"), ("sum", "log1p_relu")):
    st = SparseEncoder(f"/work/r19/splade-{strategy}-{act}", device="cpu")
    ref = st.encode(texts, convert_to_sparse_tensor=False).numpy()
    mine = splade_np(logits, mask, strategy, act)
    with torch.no_grad():
        b = torch.export.Dim("batch", min=1, max=4096); s = torch.export.Dim("sequence", min=2, max=512)
        ins = {k: e[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        prog = torch.export.export(SpladeIR(mlm, strategy, act), args=(), kwargs=ins, dynamic_shapes={k: {0: b, 1: s} for k in ins}, strict=False)
    m = ov.convert_model(prog); m.outputs[0].get_tensor().set_names({"sparse_embedding"})
    cm = ov.Core().compile_model(m, "CPU")
    # a different batch composition than the trace example: one text alone, then all
    ir = cm({k: v.numpy() for k, v in ins.items()})["sparse_embedding"]
    one = tok(texts[1:2], return_tensors="np"); ir1 = cm(dict(one))["sparse_embedding"]
    print(f"{strategy}/{act}: numpy vs ST max|diff| {np.abs(mine - ref).max():.2e}; IR vs ST {np.abs(ir - ref).max():.2e}; "
          f"IR unpadded single vs ST {np.abs(ir1[0] - ref[1]).max():.2e}; nnz ST {[(r > 0).sum() for r in ref]} IR {[(r > 0).sum() for r in ir]} "
          f"same support {all(((a > 0) == (b > 0)).all() for a, b in zip(ir, ref))}; IR out shape {cm.outputs[0].get_partial_shape()}")
    st_sparse = st.encode(texts[:2])                     # default: torch sparse COO
    print("  default encode type", type(st_sparse), st_sparse.layout, tuple(st_sparse.shape), "; decode top3", st.decode(st_sparse[0], top_k=3))
    print("  ST similarity (dot) vs numpy dot", float(st.similarity(torch.tensor(ref[0:1]), torch.tensor(ref[1:2]))[0, 0]) - float(ref[0] @ ref[1]))
    print("  max_active_dims=5 nnz", [(r > 0).sum() for r in st.encode(texts, max_active_dims=5, convert_to_sparse_tensor=False).numpy()])

# inference-free SPLADE
st = SparseEncoder("/work/r19/splade-inference-free", device="cpu")
w = load_file("/work/r19/splade-inference-free/query_0_SparseStaticEmbedding/model.safetensors")
print("static weight tensors", {k: v.shape for k, v in w.items()})
qref = st.encode_query(texts, convert_to_sparse_tensor=False).numpy()
qtok = AutoTokenizer.from_pretrained("/work/r19/splade-inference-free/query_0_SparseStaticEmbedding")
mine = np.zeros_like(qref)
for i, t in enumerate(texts):
    ids = qtok(t, add_special_tokens=False, truncation=True)["input_ids"]
    mine[i, ids] = w["weight"][ids]                      # presence (0/1) x weight[id]: repeated tokens count once
print(f"inference-free query: table lookup vs encode_query max|diff| {np.abs(mine - qref).max():.2e}; ids {qtok(texts[2], add_special_tokens=False)['input_ids']}")
dref = st.encode_document(texts, convert_to_sparse_tensor=False).numpy()
print(f"inference-free document vs plain SPLADE numpy max|diff| {np.abs(dref - splade_np(logits, mask, 'max', 'relu')).max():.2e}")
print("encode() without task uses route:", np.abs(st.encode(texts, convert_to_sparse_tensor=False).numpy() - dref).max())
print("score q.d", (qref @ dref.T)[0, :2], "similarity", st.similarity(torch.tensor(qref[:1]), torch.tensor(dref[:2])))
