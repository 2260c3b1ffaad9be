"""Small sentence-transformers folders built offline from the MiniLM source: the module lists the
export must reproduce (Pooling modes, Dense, LayerNorm, Normalize present or absent) and ones it
must refuse.

Each is saved by SentenceTransformer.save, so modules.json and the module folders are exactly
what sentence-transformers writes; the Dense and LayerNorm weights are random (seeded), so a
dropped or misplaced module changes the vectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HIDDEN = 384  # all-MiniLM-L6-v2


def build_sentence_folder(
    source: Path,
    out: Path,
    pooling: str | Sequence[str],
    dense: Sequence[tuple[int, str]] = (),
    layer_norm: bool = False,
    normalize: bool = True,
    seed: int = 0,
) -> Path:
    """Transformer(source) -> Pooling(pooling) -> Dense(out, activation)... -> [LayerNorm] ->
    [Normalize], saved to `out`. `dense`: (out_features, torch activation class name) per layer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.sentence_transformer.modules import LayerNorm, Normalize, Pooling, Transformer

    torch.manual_seed(seed)
    modes = (pooling,) if isinstance(pooling, str) else tuple(pooling)
    modules: list[Any] = [
        Transformer(str(source)),
        Pooling(HIDDEN, pooling_mode=modes[0] if len(modes) == 1 else modes),
    ]
    width = HIDDEN * len(modes)
    for features, activation in dense:
        modules.append(Dense(width, features, activation_function=getattr(torch.nn, activation)()))
        width = features
    if layer_norm:
        norm = LayerNorm(width)
        with torch.no_grad():  # learned scale and shift, not the identity a fresh one has
            norm.norm.weight.uniform_(0.5, 1.5)
            norm.norm.bias.normal_(0, 0.1)
        modules.append(norm)
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


def add_module(folder: Path, module_type: str, config: dict[str, Any] | None = None) -> None:
    """Append a module entry (e.g. a custom class) to a saved folder's modules.json."""
    modules = json.loads((folder / "modules.json").read_text())
    index = len(modules)
    path = f"{index}_{module_type.rsplit('.', 1)[-1]}"
    (folder / path).mkdir()
    (folder / path / "config.json").write_text(json.dumps(config or {}))
    modules.append({"idx": index, "name": str(index), "path": path, "type": module_type})
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))


def set_pooling_config(folder: Path, **values: Any) -> None:
    """Rewrite keys of the Pooling module's config.json (e.g. include_prompt=False)."""
    path = folder / "1_Pooling" / "config.json"
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=2))
