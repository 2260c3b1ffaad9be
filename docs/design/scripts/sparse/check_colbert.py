import numpy as np, torch, string, json, openvino as ov
from safetensors.numpy import load_file
from transformers import AutoTokenizer, AutoModel
from pylate import models, scores
P = "/work/r19/colbert-tiny"
queries = ["what is a panda?", "a much longer query that will certainly be truncated at the query length, yes"]
docs = ["The giant panda is a bear species endemic to China.", "Hello, world! (short)", "x" ]
ref_model = models.ColBERT(model_name_or_path=P, device="cpu")
rq = ref_model.encode(queries, is_query=True); rd = ref_model.encode(docs, is_query=False)
print("encode returns", type(rq), type(rq[0]), [r.shape for r in rq], [r.shape for r in rd], rq[0].dtype)

cfg = json.load(open(f"{P}/config_sentence_transformers.json"))
tok = AutoTokenizer.from_pretrained(P); bert = AutoModel.from_pretrained(P).eval()
W = load_file(f"{P}/1_Dense/model.safetensors"); print("dense keys", {k: v.shape for k, v in W.items()})
q_id, d_id, mask_id = tok.convert_tokens_to_ids(cfg["query_prefix"]), tok.convert_tokens_to_ids(cfg["document_prefix"]), tok.mask_token_id
skip = {tok.convert_tokens_to_ids(w) for w in cfg["skiplist_words"]}
def l2n(x): return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
def encode(text, is_query):
    L = cfg["query_length"] if is_query else cfg["document_length"]
    ids = tok(text, truncation=True, max_length=L - 1)["input_ids"]          # [CLS] ... [SEP], L-1 tokens at most
    ids = ids[:1] + [q_id if is_query else d_id] + ids[1:]                   # marker token after [CLS]
    att = [1] * len(ids)
    if is_query and cfg["do_query_expansion"]:
        pad = L - len(ids); ids += [mask_id] * pad                           # expansion with [MASK] up to query_length
        att += [1 if cfg["attend_to_expansion_tokens"] else 0] * pad
    with torch.no_grad():
        H = bert(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([att])).last_hidden_state[0].numpy()
    E = H @ W["linear.weight"].T
    if is_query: keep = np.ones(len(ids), bool)                              # queries: every position, expansion included
    else: keep = np.array([i not in skip for i in ids])                      # documents: skiplist (and padding) dropped
    return l2n(E[keep]), ids, keep
mq = [encode(q, True) for q in queries]; md = [encode(d, False) for d in docs]
for a, (b, ids, keep) in zip(rq + rd, mq + md):
    print("rows", a.shape[0], b.shape[0], "max|diff| %.2e" % np.abs(a - b).max(), "ids", ids[:6], "dropped", int((~keep).sum()))
S = scores.colbert_scores(torch.tensor(np.stack(rq)), torch.nn.utils.rnn.pad_sequence([torch.tensor(d) for d in rd], batch_first=True))
mine = np.array([[ (q[0] @ d[0].T).max(axis=1).sum() for d in md] for q in mq])
print("MaxSim pylate\n", S.numpy(), "\nmine (exact, unpadded)\n", mine, "\nmax|diff| %.2e" % np.abs(S.numpy() - mine).max())
np.savez("/work/r19/colbert_ref.npz", **{f"q{i}": r for i, r in enumerate(rq)}, **{f"d{i}": r for i, r in enumerate(rd)}, scores=S.numpy())

# IR: transformer + Dense projection + per-token L2 normalization in the graph; token selection in the server
class ColbertIR(torch.nn.Module):
    def __init__(self): super().__init__(); self.bert = bert; self.proj = torch.nn.Linear(64, 16, bias=False); self.proj.weight.data = torch.tensor(W["linear.weight"])
    def forward(self, input_ids, attention_mask, token_type_ids):
        H = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        return torch.nn.functional.normalize(self.proj(H), dim=-1)
ex = tok(["[Q] hello world", "x"], padding=True, return_tensors="pt"); ins = {k: ex[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
b = torch.export.Dim("batch", min=1, max=4096); s = torch.export.Dim("sequence", min=2, max=512)
with torch.no_grad(): prog = torch.export.export(ColbertIR().eval(), args=(), kwargs=ins, dynamic_shapes={k: {0: b, 1: s} for k in ins}, strict=False)
m = ov.convert_model(prog); m.outputs[0].get_tensor().set_names({"token_embeddings"}); cm = ov.Core().compile_model(m, "CPU")
mx = 0
for (ref, (_, ids, keep)), is_q in zip(zip(rq + rd, mq + md), [True] * len(rq) + [False] * len(rd)):
    att = [1] * len(ids)
    if is_q: att = [0 if (j >= 1 and t == mask_id and all(x == mask_id for x in ids[j:])) else 1 for j, t in enumerate(ids)]
    out = cm({"input_ids": np.array([ids]), "attention_mask": np.array([att]), "token_type_ids": np.zeros((1, len(ids)), np.int64)})["token_embeddings"][0]
    mx = max(mx, np.abs(out[keep] - ref).max())
print("IR vs PyLate encode max|diff| %.2e" % mx)
