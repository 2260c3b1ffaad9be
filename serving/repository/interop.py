"""Trees this exporter did not write: what their IRs and JSON files say, as a TokenizerInfo.

OpenVINO Model Server's exports and optimum-cli's folders carry no ovtext runtime info. Their
tokenizer IR (openvino-tokenizers) records whether it adds special tokens (`add_special_tokens`)
and, from openvino-tokenizers 2025.1, the Hugging Face post-processor's layout
(`processed_post_processor_template`: in its `ids`, -1 and -2 stand for the two texts, other
numbers are special-token ids). Token ids and limits come from the model's Hugging Face config
and tokenizer_config.json: files in a flat folder; in OVMS's legacy tree, the `model_info`
runtime info its export copied them into (the model IR's and the tokenizer IR's).

Without a template (older IRs), pairs are framed as OVMS's rerank calculators frame them,
`BOS query EOS SEP document EOS`, and the special tokens the IR adds around one text are found by
tokenizing probe texts with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov

from serving.repository import layout
from serving.repository.layout import Task, TokenizerInfo

# Tokenizes texts with the raw tokenizer IR (special tokens as the IR adds them, no padding).
Probe = Callable[[list[str]], list[list[int]]]

TEMPLATE_KEY = "processed_post_processor_template"
ADDS_SPECIAL_TOKENS_KEY = "add_special_tokens"
# OVMS's fallback when a config names no limit.
DEFAULT_MAX_LENGTH = 512
# The config keys OVMS reads the limit from, in its order (src/sidepacket_servable.cpp).
POSITION_KEYS = ("max_position_embeddings", "n_positions", "seq_len", "seq_length", "n_ctx", "sliding_window")
# Model types whose position ids start after the padding id (RoBERTa's create_position_ids_from_input_ids):
# max_position_embeddings - (pad_token_id + 1) tokens fit (XLM-R: 514 positions, 512 tokens). The export
# reads this off the model itself (export_models/convert_tokenizer.py, position_offset); a foreign tree
# has no torch model to look at.
POSITIONS_AFTER_PADDING = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text", "mpnet", "ibert"}
)
# tokenizer_config.json's model_max_length when the tokenizer has no limit (transformers' sentinel).
_UNBOUNDED = 10**12
PROBE_TEXT = "hello world"


@dataclass(frozen=True)
class HFConfigs:
    """A model's Hugging Face config.json and tokenizer_config.json, as dicts (values may be text)."""

    config: Mapping[str, Any]
    tokenizer_config: Mapping[str, Any]


def _json_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path.name}: cannot read it as JSON: {err}") from err
    return value if isinstance(value, dict) else {}


def configs_from_folder(folder: Path) -> HFConfigs:
    """config.json and tokenizer_config.json of a flat folder ({} for a missing one)."""
    return HFConfigs(
        _json_object(folder / layout.HF_CONFIG_FILE), _json_object(folder / layout.TOKENIZER_CONFIG_FILE)
    )


def configs_from_rt_info(model: ov.Model, tokenizer: ov.Model) -> HFConfigs:
    """What OVMS's legacy export copied into the IRs' `model_info` runtime info."""
    return HFConfigs(layout.read_rt_section(model), layout.read_rt_section(tokenizer))


def as_int(value: Any) -> int | None:
    """An integer from JSON (int) or runtime info (its digits); None for anything else (null, text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _token_id(role: str, configs: HFConfigs, tokenizer: ov.Model) -> int | None:
    value = as_int(configs.config.get(f"{role}_token_id"))
    if value is None:
        value = as_int(layout.rt_text(tokenizer, f"{role}_token_id"))
    return value


def _split(ids: Sequence[int], markers: int) -> list[list[int]]:
    """The constant pieces around the `markers` text positions (negative numbers) of a template."""
    pieces: list[list[int]] = [[]]
    for token in ids:
        if token < 0:
            pieces.append([])
        else:
            pieces[-1].append(int(token))
    if len(pieces) != markers + 1:
        raise ValueError(f"expected {markers} text position(s) in the template, found {len(pieces) - 1}")
    return pieces


def _template(tokenizer: ov.Model) -> dict[str, Any] | None:
    text = layout.rt_text(tokenizer, TEMPLATE_KEY)
    if not text:
        return None
    try:
        template = json.loads(text)
        if not all(isinstance(template[k]["ids"], list) for k in ("single", "pair")):
            raise TypeError("ids must be lists")
        if not isinstance(template["pair"]["type_ids"], list):
            raise TypeError("type_ids must be a list")
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"the tokenizer IR's {TEMPLATE_KEY} cannot be read: {err}") from err
    return template


def _pair_from_template(template: dict[str, Any]) -> tuple[list[int], list[int], list[int], int]:
    ids, type_ids = template["pair"]["ids"], template["pair"]["type_ids"]
    prefix, middle, suffix = _split(ids, 2)
    second_at = [i for i, token in enumerate(ids) if token < 0][1]
    first_types, second_types = set(type_ids[:second_at]), set(type_ids[second_at:])
    if first_types - {0} or len(second_types) != 1:
        raise ValueError(f"token types {type_ids} of the pair template: expected 0s, then one value")
    return prefix, middle, suffix, int(second_types.pop())


def _probed_single(probe: Probe) -> tuple[list[int], list[int]]:
    """The special tokens the IR puts before and after one text: what it gives for "" split where
    its encoding of a real text departs from it."""
    empty, text = probe(["", PROBE_TEXT])
    shared = 0
    while shared < len(empty) and shared < len(text) and empty[shared] == text[shared]:
        shared += 1
    prefix, suffix = empty[:shared], empty[shared:]
    if len(text) <= len(empty) or text[len(text) - len(suffix) :] != suffix:
        raise ValueError("cannot tell which special tokens the tokenizer IR adds around a text")
    return list(prefix), list(suffix)


def _adds_special_tokens(tokenizer: ov.Model, task: Task) -> bool:
    recorded = layout.rt_text(tokenizer, ADDS_SPECIAL_TOKENS_KEY)
    if recorded in ("True", "False"):
        return recorded == "True"
    # Not recorded (openvino-tokenizers before 2024.5): OVMS's exports converted the rerank tokenizer
    # without special tokens and the embeddings tokenizer with them.
    return task is Task.EMBEDDINGS


def max_length(configs: HFConfigs) -> int:
    """Most tokens of one framed sequence: the positions the model has (after RoBERTa's padding
    offset), and tokenizer_config.json's model_max_length when that is smaller."""
    config = configs.config
    limits = []
    positions = next((v for key in POSITION_KEYS if (v := as_int(config.get(key))) is not None), None)
    if positions is not None:
        pad = as_int(config.get("pad_token_id"))
        after_padding = str(config.get("model_type")) in POSITIONS_AFTER_PADDING and pad is not None
        limits.append(positions - (pad + 1 if after_padding and pad is not None else 0))
    model_max_length = as_int(configs.tokenizer_config.get("model_max_length"))
    if model_max_length is not None and 0 < model_max_length < _UNBOUNDED:
        limits.append(model_max_length)
    return min(limits) if limits else DEFAULT_MAX_LENGTH


def derive_tokenizer_info(task: Task, tokenizer: ov.Model, configs: HFConfigs, probe: Probe) -> TokenizerInfo:
    """How to frame the token ids of a tokenizer IR that has no ovtext_tokenizer_info; ValueError
    when it cannot be told."""
    ids = {role: _token_id(role, configs, tokenizer) for role in ("bos", "eos", "sep", "pad", "cls")}
    special_tokens = {role: value for role, value in ids.items() if value is not None}
    adds = _adds_special_tokens(tokenizer, task)
    template = _template(tokenizer)
    if template is not None:
        single_prefix, single_suffix = _split(template["single"]["ids"], 1)
        pair_prefix, pair_middle, pair_suffix, second_type_id = _pair_from_template(template)
        if adds and probe([""])[0] != single_prefix + single_suffix:
            raise ValueError(
                f"the tokenizer IR adds {probe([''])[0]} around an empty text, its {TEMPLATE_KEY} says "
                f"{single_prefix + single_suffix}"
            )
    else:
        bos, eos = ids["bos"], ids["eos"]
        sep = ids["sep"] if ids["sep"] is not None else eos
        single_prefix, single_suffix = _probed_single(probe) if adds else ([], [])
        if bos is None or eos is None or sep is None:
            if task is Task.RERANK:
                raise ValueError(
                    f"cannot tell how to frame a pair: the tokenizer IR has no {TEMPLATE_KEY} "
                    "(openvino-tokenizers before 2025.1) and the model config no bos_token_id/eos_token_id"
                )
            pair_prefix, pair_middle, pair_suffix = single_prefix, [], single_suffix
        else:  # OVMS's RerankCalculator: BOS query EOS SEP document EOS
            pair_prefix, pair_middle, pair_suffix = [bos], [eos, sep], [eos]
        second_type_id = 0
    pad = ids["pad"] if ids["pad"] is not None else 0
    return TokenizerInfo(
        max_length=max_length(configs),
        pad_token_id=pad,
        single_prefix=single_prefix,
        single_suffix=single_suffix,
        pair_prefix=pair_prefix,
        pair_middle=pair_middle,
        pair_suffix=pair_suffix,
        second_type_id=second_type_id,
        special_tokens=special_tokens,
        adds_special_tokens=adds,
    )
