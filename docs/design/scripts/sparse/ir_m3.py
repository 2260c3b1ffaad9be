import numpy as np, torch, openvino as ov
from transformers import AutoTokenizer, AutoModel
from FlagEmbedding import BGEM3FlagModel
P = "/work/r19/m3-tiny"

class M3Heads(torch.nn.Module):
    """last_hidden_state (as today) + per-token sparse weights + per-token normalized colbert vectors."""
    def __init__(self, path):
        super().__init__()
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        h = self.model.config.hidden_size
        self.sparse_linear = torch.nn.Linear(h, 1); self.colbert_linear = torch.nn.Linear(h, h)
        self.sparse_linear.load_state_dict(torch.load(f"{path}/sparse_linear.pt", map_location="cpu", weights_only=True))
        self.colbert_linear.load_state_dict(torch.load(f"{path}/colbert_linear.pt", map_location="cpu", weights_only=True))
    def forward(self, input_ids, attention_mask):
        H = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        dense = torch.nn.functional.normalize(H[:, 0], dim=-1)
        sparse = torch.relu(self.sparse_linear(H)).squeeze(-1)                                   # (B, T)
        colbert = torch.nn.functional.normalize(self.colbert_linear(H), dim=-1)                  # (B, T, h): row 0 = CLS, unused
        return H, dense, sparse, colbert

tok = AutoTokenizer.from_pretrained(P)
wrapper = M3Heads(P).eval()
ex = tok(["The giant panda is a bear species endemic to China.", "short"], padding=True, return_tensors="pt")
inputs = {k: ex[k] for k in ("input_ids", "attention_mask")}
names = ["last_hidden_state", "dense_vecs", "sparse_weights", "colbert_vecs"]
for route in ("trace", "torch.export"):
    with torch.no_grad():
        if route == "trace":
            m = ov.convert_model(wrapper, example_input=inputs)
        else:
            b = torch.export.Dim("batch", min=1, max=4096); s = torch.export.Dim("sequence", min=2, max=1 << 20)
            prog = torch.export.export(wrapper, args=(), kwargs=inputs, dynamic_shapes={k: {0: b, 1: s} for k in inputs}, strict=False)
            m = ov.convert_model(prog)
    for o, n in zip(m.outputs, names): o.get_tensor().set_names({n})
    m.set_rt_info("bge-m3", ["ovtext", "multi_output", "kind"])
    ov.save_model(m, f"/work/r19/m3-{route}.xml", compress_to_fp16=False)
    cm = ov.Core().compile_model(f"/work/r19/m3-{route}.xml", "CPU")
    print(route, "inputs", [(i.get_any_name(), i.get_partial_shape()) for i in cm.inputs])
    print(route, "outputs", [(o.get_any_name(), o.get_partial_shape()) for o in cm.outputs])
    texts = ["hello world, this is a test.", "short", "Le chat est sur la table et mange une souris grise.",
             "重复 repeated repeated repeated words words"]
    e = tok(texts, padding=True, return_tensors="np")
    r = cm({"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]})
    out = {n: r[cm.output(n)] for n in names}
    ref = BGEM3FlagModel(P, use_fp16=False, devices="cpu").encode(texts, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    special = {tok.cls_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id}
    md = np.abs(out["dense_vecs"] - ref["dense_vecs"]).max(); ms = mc = 0.0
    for i in range(len(texts)):
        n = int(e["attention_mask"][i].sum()); ids = e["input_ids"][i, :n]; w = out["sparse_weights"][i, :n]
        keep = (w > 0) & ~np.isin(ids, list(special))
        lex = {}
        for t, v in zip(ids[keep], w[keep]): lex[str(t)] = max(lex.get(str(t), 0.0), float(v))
        rl = ref["lexical_weights"][i]; assert set(lex) == set(rl)
        ms = max(ms, max(abs(lex[k] - float(rl[k])) for k in lex))
        mc = max(mc, float(np.abs(out["colbert_vecs"][i, 1:n] - ref["colbert_vecs"][i]).max()))
    print(f"{route}: IR vs BGEM3FlagModel max|diff| dense {md:.2e} sparse {ms:.2e} colbert {mc:.2e}; rt_info", cm.get_runtime_model() is not None)
