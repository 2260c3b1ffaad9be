import numpy as np, openvino as ov, time
from transformers import AutoTokenizer
from FlagEmbedding import BGEM3FlagModel
P = "/work/r19/m3-tiny"
def bge_m3_sparse(ids, w, n, exclude):
    ids, w = ids[:n], w[:n]
    keep = (w > 0) & ~np.isin(ids, exclude)
    idx, inv = np.unique(ids[keep], return_inverse=True)
    val = np.zeros(len(idx), np.float32); np.maximum.at(val, inv, w[keep]); return idx, val
def sparse_dot(qi, qv, di, dv):
    common, a, b = np.intersect1d(qi, di, assume_unique=True, return_indices=True)
    return float(qv[a] @ dv[b])
tok = AutoTokenizer.from_pretrained(P); cm = ov.Core().compile_model("/work/r19/m3-torch.export.xml", "CPU")
texts = ["hello world, this is a test.", "short", "Le chat est sur la table et mange une souris grise.", "重复 repeated repeated repeated words words"]
e = tok(texts, padding=True, return_tensors="np"); r = cm({"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]})
sw, cv = r[cm.output("sparse_weights")], r[cm.output("colbert_vecs")]
ref = BGEM3FlagModel(P, use_fp16=False, devices="cpu")
out = ref.encode(texts, return_sparse=True, return_colbert_vecs=True)
sp = []
for i in range(len(texts)):
    n = int(e["attention_mask"][i].sum()); idx, val = bge_m3_sparse(e["input_ids"][i], sw[i], n, [0, 1, 2, 3]); sp.append((idx, val))
    rl = out["lexical_weights"][i]
    assert [str(x) for x in idx] == sorted(rl, key=int), "keys"
    print(i, "sparse max|diff| %.2e" % max(abs(float(rl[str(k)]) - v) for k, v in zip(idx, val)))
pairs = [(0, 2), (1, 3), (3, 0)]
cs = ref.compute_score([(texts[a], texts[b]) for a, b in pairs], batch_size=1)
for j, (a, b) in enumerate(pairs):
    na, nb = int(e["attention_mask"][a].sum()), int(e["attention_mask"][b].sum())
    q, d = cv[a, 1:na], cv[b, 1:nb]
    c = float((q @ d.T).max(axis=1).sum()) / len(q); s = sparse_dot(*sp[a], *sp[b])
    print("pair", j, "colbert diff %.2e sparse diff %.2e" % (c - cs["colbert"][j], s - cs["sparse"][j]))
# post-processing cost at bge-m3 shapes (B=32, T=512, h=1024), random data
B, T, h = 32, 512, 1024; rng = np.random.default_rng(0)
ids = rng.integers(5, 250002, (B, T)); w = np.maximum(rng.normal(size=(B, T)).astype(np.float32), 0)
H = rng.normal(size=(B, T, h)).astype(np.float32)
t = time.perf_counter()
for i in range(B): bge_m3_sparse(ids[i], w[i], T, [0, 1, 2, 3])
t1 = time.perf_counter()
for i in range(B): x = H[i, 1:T]; _ = x.tolist()
t2 = time.perf_counter()
for i in range(B): _ = H[i, 0].tolist()
t3 = time.perf_counter()
print(f"B=32,T=512: sparse post {1e3*(t1-t)/B:.3f} ms/input; multi-vector tolist {1e3*(t2-t1)/B:.2f} ms/input; dense tolist {1e3*(t3-t2)/B:.3f} ms/input")
import base64; t = time.perf_counter()
for i in range(B): base64.b64encode(np.ascontiguousarray(H[i, 1:T]).astype('<f4').tobytes())
print(f"multi-vector base64 {1e3*(time.perf_counter()-t)/B:.2f} ms/input")
