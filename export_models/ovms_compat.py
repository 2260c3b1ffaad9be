"""What OpenVINO Model Server would do with an export: the reasons it cannot serve it as this server does.

Read off OVMS's calculators (docs/repository.md): the legacy RerankCalculator
(2024.5-2026.1) reads bos/eos/pad ids from the model IR's `model_info`, takes exactly two model
inputs and frames every pair as `BOS query EOS SEP document EOS`; RerankCalculatorOV (2025.2 on)
reads the ids from config.json and tokenizer_config.json (an unset one is 0), frames the same way
and feeds token_type_ids of 0; both score sigmoid(logits[1]) for two labels. The legacy
EmbeddingsCalculator (2024.5-2025.3) always pools the first token; neither applies prompts or
steps after pooling. The export still writes the tree, this server serves it; these become
warnings so the user knows before deploying it to OVMS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serving.repository.interop import as_int
from serving.repository.layout import GraphFormat, ModelInfo, Pooling, Task, TokenizerInfo

RELEASES = {
    (GraphFormat.LEGACY, Task.RERANK): "2024.5 to 2026.1",
    (GraphFormat.LEGACY, Task.EMBEDDINGS): "2024.5 to 2025.3",
    (GraphFormat.OV, Task.RERANK): "2025.2 and later",
    (GraphFormat.OV, Task.EMBEDDINGS): "2025.4 and later",
}


def _ovms_pair(graph_format: GraphFormat, config: Mapping[str, Any], info: TokenizerInfo) -> list[int | None]:
    """The ids OVMS puts around a pair: [BOS, EOS, SEP, EOS] (None: OVMS refuses the model)."""
    ids = {role: as_int(config.get(f"{role}_token_id")) for role in ("bos", "eos", "sep")}
    if graph_format is GraphFormat.OV:  # config.json first, then tokenizer_config.json's tokens, else 0
        for role in ("bos", "eos", "sep"):
            if ids[role] is None:
                ids[role] = info.special_tokens.get(role, 0 if role != "sep" else None)
    sep = ids["sep"] if ids["sep"] is not None else ids["eos"]
    return [ids["bos"], ids["eos"], sep, ids["eos"]]


def rerank_reasons(
    graph_format: GraphFormat,
    config: Mapping[str, Any],
    info: TokenizerInfo,
    model_info: ModelInfo,
    model_inputs: set[str],
) -> list[str]:
    reasons = []
    if graph_format is GraphFormat.LEGACY:
        missing = [
            f"{r}_token_id" for r in ("bos", "eos", "pad") if as_int(config.get(f"{r}_token_id")) is None
        ]
        if missing:
            reasons.append(
                f"its RerankCalculator needs {', '.join(missing)} in config.json (runtime info model_info)"
            )
        if "token_type_ids" in model_inputs:
            reasons.append(
                "its RerankCalculator takes models with two inputs; this one also has token_type_ids"
            )
    elif info.second_type_id != 0:
        reasons.append("it feeds token_type_ids of 0; this model gives the document token type 1")
    if info.query_template != "{query}" or info.document_template != "{document}":
        reasons.append("it applies no prompt template")
    bos, eos, sep, closing = _ovms_pair(graph_format, config, info)
    ours = (info.pair_prefix, info.pair_middle, info.pair_suffix)
    if None not in (bos, eos, sep) and ours != ([bos], [eos, sep], [closing]):
        reasons.append(
            f"it frames a pair as {[bos]} query {[eos, sep]} document {[closing]}; this model's tokenizer "
            f"as {info.pair_prefix} query {info.pair_middle} document {info.pair_suffix}"
        )
    if model_info.num_labels == 2:
        reasons.append("it scores sigmoid(logit 1) of a two-label model, not sigmoid(logit 1 - logit 0)")
    return reasons


def embeddings_reasons(
    graph_format: GraphFormat, info: TokenizerInfo, model_info: ModelInfo, pooling: Pooling
) -> list[str]:
    reasons = []
    if graph_format is GraphFormat.LEGACY and pooling is not Pooling.CLS:
        reasons.append(
            f"its EmbeddingsCalculator pools the first token (CLS); this model pools {pooling.value}"
        )
    if model_info.post_pooling:
        reasons.append(f"it has no {' + '.join(model_info.post_pooling)} after pooling")
    if info.default_prompt_name:
        reasons.append(f"it applies no prompt (this model's default prompt is {info.default_prompt_name!r})")
    return reasons


def ovms_warnings(
    graph_format: GraphFormat,
    task: Task,
    config: Mapping[str, Any],
    info: TokenizerInfo,
    model_info: ModelInfo,
    model_inputs: set[str],
    pooling: Pooling | None,
) -> list[str]:
    """One line per reason OVMS (the releases that load this graph format) would not serve the
    export as this server does; [] when it would."""
    if task is Task.RERANK:
        reasons = rerank_reasons(graph_format, config, info, model_info, model_inputs)
    else:
        reasons = embeddings_reasons(graph_format, info, model_info, pooling or Pooling.CLS)
    releases = RELEASES[(graph_format, task)]
    return [
        f"warning: OpenVINO Model Server {releases} (--graph_format {graph_format.value}) would not serve "
        f"this model as exported: {reason}; this server serves it"
        for reason in reasons
    ]
