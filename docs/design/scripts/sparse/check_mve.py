import numpy as np, sentence_transformers as st_
from sentence_transformers import MultiVectorEncoder
from sentence_transformers.util.similarity import maxsim
print("sentence-transformers", st_.__version__)
ref = np.load("/work/r19/colbert_ref.npz")
queries = ["what is a panda?", "a much longer query that will certainly be truncated at the query length, yes"]
docs = ["The giant panda is a bear species endemic to China.", "Hello, world! (short)", "x"]
m = MultiVectorEncoder("/work/r19/colbert-tiny", device="cpu")
print(m)
q = m.encode_query(queries); d = m.encode_document(docs)
print("types", type(q), type(q[0]), [tuple(x.shape) for x in q], [tuple(x.shape) for x in d])
for i, x in enumerate(q): print("q", i, "max|diff| vs PyLate %.2e" % np.abs(np.asarray(x) - ref[f"q{i}"]).max() if x.shape == ref[f"q{i}"].shape else ("shape", x.shape, ref[f"q{i}"].shape))
for i, x in enumerate(d): print("d", i, "max|diff| vs PyLate %.2e" % np.abs(np.asarray(x) - ref[f"d{i}"]).max() if x.shape == ref[f"d{i}"].shape else ("shape", x.shape, ref[f"d{i}"].shape))
s = m.similarity(q, d)
print("similarity", np.asarray(s), "vs PyLate max|diff| %.2e" % np.abs(np.asarray(s) - ref["scores"]).max(), m.similarity_fn_name)
