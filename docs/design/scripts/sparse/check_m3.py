import numpy as np, torch
from FlagEmbedding import BGEM3FlagModel
from transformers import AutoTokenizer, AutoModel
P = "/work/r19/m3-tiny"
texts = ["hello world, this is a test.", "short", "Le chat est sur la table et mange une souris grise.",
         "重复 repeated repeated repeated words words"]
ref = BGEM3FlagModel(P, use_fp16=False, devices="cpu")
out = ref.encode(texts, return_dense=True, return_sparse=True, return_colbert_vecs=True)

# --- independent re-implementation (numpy post-processing of the three raw heads) ---
tok = AutoTokenizer.from_pretrained(P); model = AutoModel.from_pretrained(P).eval()
sp = torch.load(f"{P}/sparse_linear.pt"); cb = torch.load(f"{P}/colbert_linear.pt")
special = {tok.cls_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id}
print("special ids excluded:", sorted(special), "tokens", tok.convert_ids_to_tokens(sorted(special)))
def l2n(x): return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
enc = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
with torch.no_grad(): H = model(**enc).last_hidden_state.numpy()
ids, am = enc["input_ids"].numpy(), enc["attention_mask"].numpy()
dense = l2n(H[:, 0])
tw = np.maximum(H @ sp["weight"].numpy().T + sp["bias"].numpy(), 0)[..., 0]       # (B, T)
colb = l2n(H[:, 1:] @ cb["weight"].numpy().T + cb["bias"].numpy())                 # (B, T-1, h)
md = 0; ms = 0; mc = 0
for i in range(len(texts)):
    n = int(am[i].sum())
    lex = {}
    for t, w in zip(ids[i, :n], tw[i, :n]):
        if t not in special and w > 0: lex[str(t)] = max(lex.get(str(t), 0.0), float(w))
    r = out["lexical_weights"][i]
    assert set(lex) == set(r), (set(lex) ^ set(r))
    ms = max(ms, max((abs(lex[k] - float(r[k])) for k in lex), default=0))
    cv = colb[i, : n - 1]
    assert cv.shape == out["colbert_vecs"][i].shape, (cv.shape, out["colbert_vecs"][i].shape)
    mc = max(mc, np.abs(cv - out["colbert_vecs"][i]).max())
    print(i, "tokens", n, "sparse nnz", len(lex), "colbert rows", cv.shape[0])
md = np.abs(dense - out["dense_vecs"]).max()
print(f"max |diff| dense {md:.2e} sparse {ms:.2e} colbert {mc:.2e}")
print("dense dtype", out["dense_vecs"].dtype, "lexical value type", type(next(iter(out['lexical_weights'][0].values()))), "colbert dtype", out["colbert_vecs"][0].dtype)

# --- compute_score ---
pairs = [(texts[0], texts[2]), (texts[1], texts[3]), (texts[3], texts[0])]
cs = ref.compute_score(pairs)
def enc1(t):
    e = tok([t], truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad(): h = model(**e).last_hidden_state.numpy()[0]
    i = e["input_ids"].numpy()[0]
    d = l2n(h[0]); w = np.maximum(h @ sp["weight"].numpy().T + sp["bias"].numpy(), 0)[:, 0]
    lex = {}
    for t_, w_ in zip(i, w):
        if t_ not in special and w_ > 0: lex[t_] = max(lex.get(t_, 0.0), float(w_))
    c = l2n(h[1:] @ cb["weight"].numpy().T + cb["bias"].numpy())
    return d, lex, c
mine = {k: [] for k in cs}
for q, p in pairs:
    qd, ql, qc = enc1(q); pd, pl, pc = enc1(p)
    dense_s = float(qd @ pd); sparse_s = sum(w * pl[t] for t, w in ql.items() if t in pl)
    colbert_s = float((qc @ pc.T).max(axis=1).sum() / qc.shape[0])
    mine["dense"].append(dense_s); mine["sparse"].append(sparse_s); mine["colbert"].append(colbert_s)
    mine["sparse+dense"].append((sparse_s + dense_s) / 2); mine["colbert+sparse+dense"].append((colbert_s + sparse_s + dense_s) / 3)
for k in cs:
    print(k, "ref", np.round(cs[k], 6), "mine", np.round(mine[k], 6), "maxdiff %.2e" % np.abs(np.array(cs[k]) - mine[k]).max())
# weighted
w = [0.4, 0.2, 0.4]
cs2 = ref.compute_score(pairs, weights_for_different_modes=w)
m2 = [(w[0]*d + w[1]*s + w[2]*c) / sum(w) for d, s, c in zip(mine["dense"], mine["sparse"], mine["colbert"])]
print("weighted [0.4,0.2,0.4] maxdiff %.2e" % np.abs(np.array(cs2["colbert+sparse+dense"]) - m2).max())
# the encode-side helpers
lw = ref.encode([p for _, p in pairs], return_sparse=True, return_colbert_vecs=True)
qw = ref.encode([q for q, _ in pairs], return_sparse=True, return_colbert_vecs=True)
for j in range(len(pairs)):
    print("helper lexical", ref.compute_lexical_matching_score(qw["lexical_weights"][j], lw["lexical_weights"][j]) - mine["sparse"][j],
          "helper colbert", float(ref.colbert_score(qw["colbert_vecs"][j], lw["colbert_vecs"][j])) - mine["colbert"][j])
