"""A sentence-transformers folder's whole module list (modules.json), reproduced exactly.

SentenceTransformer.encode runs the modules in order: Transformer (token embeddings), Pooling,
then any Dense projections and LayerNorms, then Normalize if the list has one. The export reads
every module and:
- Transformer: the IR itself;
- Pooling: the server pools (cls, mean, lasttoken) when nothing follows that it cannot do; any
  other mode (max, weightedmean, mean_sqrt_len_tokens, several modes concatenated), and any
  Dense or LayerNorm after it, are appended to the IR as OpenVINO layers: the IR then gives the
  sentence embedding itself (output `sentence_embedding`, [rows, dimensions]) and the server
  passes it through;
- a LayerNorm without weights (ones and zeros, eps 1e-5) after a pooling the server does is the
  server's `layer_norm` post-pooling step (ModelInfo.post_pooling), as nomic-embed-text-v1.5's;
- Normalize: present, the server L2-normalizes; absent (dot-product models such as
  msmarco-distilbert-base-tas-b), it does not.
A module it cannot reproduce (a custom class, a Dense with a residual or an unknown activation,
Pooling with include_prompt false) is refused in one line naming it. The modules reproduced are
written into the IR's runtime info (ModelInfo.sentence_modules), so a repository says what it
computes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from export_models.errors import InvalidSourceError
from serving.repository.families import LAYER_NORM_EPS, PostPooling
from serving.repository.layout import Pooling

MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"
# Pooling modes the server runs itself (serving/pipelines/pooling.py).
SERVER_POOLING = {"cls": Pooling.CLS, "mean": Pooling.MEAN, "lasttoken": Pooling.LAST}
POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# sentence-transformers' older Pooling config: one boolean per mode (concatenated in this order).
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# Dense activation functions (the class name of torch's module) the IR reproduces.
ACTIVATIONS = ("Identity", "Tanh", "ReLU", "Sigmoid", "GELU", "SiLU")
SENTENCE_EMBEDDING = "sentence_embedding"


@dataclass(frozen=True)
class Dense:
    weight: np.ndarray  # [out, in], as torch.nn.Linear keeps it
    bias: np.ndarray | None
    activation: str  # one of ACTIVATIONS

    def describe(self) -> str:
        return f"Dense({self.weight.shape[1]}->{self.weight.shape[0]}, {self.activation})"


@dataclass(frozen=True)
class LayerNorm:
    weight: np.ndarray
    bias: np.ndarray
    eps: float = LAYER_NORM_EPS

    @property
    def is_plain(self) -> bool:
        """No learned scale or shift: torch.nn.functional.layer_norm as the server's step computes it."""
        return bool(np.all(self.weight == 1) and np.all(self.bias == 0)) and self.eps == LAYER_NORM_EPS

    def describe(self) -> str:
        return f"LayerNorm({self.weight.shape[0]})"


@dataclass(frozen=True)
class SentencePipeline:
    """What modules.json asks for after the Transformer."""

    pooling_modes: tuple[str, ...]
    after_pooling: tuple[Dense | LayerNorm, ...] = ()
    normalize: bool = True
    similarity_fn_name: str | None = None
    modules: tuple[str, ...] = field(default=())  # the module list as read, for messages

    def with_pooling(self, pooling: Pooling) -> SentencePipeline:
        """The pipeline with the Pooling module's mode replaced (--pooling)."""
        mode = next(name for name, value in SERVER_POOLING.items() if value is pooling)
        return replace(self, pooling_modes=(mode,))

    @property
    def server_steps(self) -> tuple[Pooling, tuple[PostPooling, ...]] | None:
        """(pooling, post-pooling steps) when the server can run everything after the Transformer;
        None when the IR must pool (and project) itself."""
        if len(self.pooling_modes) != 1 or self.pooling_modes[0] not in SERVER_POOLING:
            return None
        pooling = SERVER_POOLING[self.pooling_modes[0]]
        if not self.after_pooling:
            return pooling, ()
        (only,) = self.after_pooling if len(self.after_pooling) == 1 else (None,)
        if isinstance(only, LayerNorm) and only.is_plain:
            return pooling, (PostPooling.LAYER_NORM,)
        return None

    def describe(self) -> list[str]:
        steps = [f"Pooling({'+'.join(self.pooling_modes)})"]
        steps += [module.describe() for module in self.after_pooling]
        return steps + (["Normalize"] if self.normalize else [])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidSourceError(
            f"cannot read {path.name} of the sentence-transformers folder: {error}"
        ) from error


def _weights(folder: Path) -> dict[str, np.ndarray]:
    """A module folder's tensors (model.safetensors, else pytorch_model.bin), as float32 arrays."""
    safetensors_file = folder / "model.safetensors"
    if safetensors_file.is_file():
        from safetensors.numpy import load_file

        return {key: value.astype(np.float32) for key, value in load_file(safetensors_file).items()}
    torch_file = folder / "pytorch_model.bin"
    if torch_file.is_file():
        import torch

        state = torch.load(torch_file, map_location="cpu", weights_only=True)
        return {key: value.float().numpy() for key, value in state.items()}
    raise InvalidSourceError(f"the sentence-transformers module {folder.name} has no weights file")


def _pooling_modes(config: dict[str, Any], where: str) -> tuple[str, ...]:
    mode = config.get("pooling_mode")
    if mode is None:
        modes = [name for key, name in LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    else:
        modes = [mode] if isinstance(mode, str) else list(mode)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise InvalidSourceError(
            f"{where}: pooling mode {'+'.join(map(str, unknown))} is unknown to the export"
        )
    if config.get("include_prompt", True) is False:
        raise InvalidSourceError(
            f"{where}: Pooling with include_prompt false (the prompt's tokens left out of the pooling) "
            "cannot be reproduced: the server pools the prompt's tokens too"
        )
    return tuple(modes)


def _dense(folder: Path, where: str) -> Dense:
    config = _read_json(folder / "config.json")
    if config.get("use_residual"):
        raise InvalidSourceError(f"{where}: Dense with use_residual cannot be reproduced")
    for key in ("module_input_name", "module_output_name"):
        if config.get(key, SENTENCE_EMBEDDING) != SENTENCE_EMBEDDING:
            raise InvalidSourceError(
                f"{where}: Dense on {config[key]} (not the sentence embedding) cannot be reproduced"
            )
    activation = str(config.get("activation_function", "torch.nn.modules.activation.Tanh")).rsplit(".", 1)[-1]
    if activation not in ACTIVATIONS:
        raise InvalidSourceError(
            f"{where}: Dense activation {activation} cannot be reproduced ({', '.join(ACTIVATIONS)} can)"
        )
    tensors = _weights(folder)
    weight = tensors.get("linear.weight")
    if weight is None:
        raise InvalidSourceError(f"{where}: Dense weights have no linear.weight")
    bias = tensors.get("linear.bias") if config.get("bias", True) else None
    return Dense(weight, bias, activation)


def _layer_norm(folder: Path, where: str) -> LayerNorm:
    tensors = _weights(folder)
    weight, bias = tensors.get("norm.weight"), tensors.get("norm.bias")
    if weight is None or bias is None:
        raise InvalidSourceError(f"{where}: LayerNorm weights have no norm.weight and norm.bias")
    return LayerNorm(weight, bias)


def read_pipeline(folder: Path) -> SentencePipeline | None:
    """The folder's sentence-transformers module list; None for a folder without modules.json.

    Raises InvalidSourceError (one line naming the module) for a module that cannot be reproduced.
    """
    modules_file = folder / MODULES_FILE
    if not modules_file.is_file():
        return None
    modules = _read_json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise InvalidSourceError(f"{MODULES_FILE}: expected a list of modules")
    modules = sorted(modules, key=lambda m: int(m.get("idx", 0)))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    pooling: tuple[str, ...] | None = None
    after: list[Dense | LayerNorm] = []
    normalize = False
    for index, (module, kind) in enumerate(zip(modules, kinds, strict=True)):
        where = f"{MODULES_FILE}: module {index} ({module.get('type')})"
        path = folder / str(module.get("path", ""))
        if normalize:
            raise InvalidSourceError(f"{where} after Normalize cannot be reproduced")
        if kind == "Transformer" and index == 0:
            continue
        if kind == "Pooling" and pooling is None and index == 1:
            config_file = path / "config.json"
            pooling = _pooling_modes(_read_json(config_file) if config_file.is_file() else {}, where)
        elif kind == "Dense" and pooling is not None:
            after.append(_dense(path, where))
        elif kind == "LayerNorm" and pooling is not None:
            after.append(_layer_norm(path, where))
        elif kind == "Normalize" and pooling is not None:
            normalize = True
        else:
            raise InvalidSourceError(
                f"{where} cannot be reproduced by the server (it runs Transformer, Pooling, Dense, "
                "LayerNorm and Normalize, in that order)"
            )
    if pooling is None:
        raise InvalidSourceError(f"{MODULES_FILE}: no Pooling module after the Transformer")
    similarity = None
    config_file = folder / ST_CONFIG_FILE
    if config_file.is_file():
        value = _read_json(config_file).get("similarity_fn_name")
        similarity = str(value) if value else None
    return SentencePipeline(pooling, tuple(after), normalize, similarity, tuple(kinds))


# ---- the IR's layers ------------------------------------------------------------------------------


def append_to_ir(model: Any, output_index: int, pipeline: SentencePipeline) -> Any:
    """An ov.Model that pools, projects and normalizes nothing: token embeddings (output
    `output_index`, [rows, tokens, hidden]) -> Pooling -> Dense / LayerNorm -> `sentence_embedding`.

    Padded positions never reach the result (Select, not a multiplication: 0 x NaN is NaN).
    Rows are padded on the right, as the server pads them.
    """
    import openvino.opset13 as ops

    hidden = model.get_results()[output_index].input_value(0)  # the producer, not the Result
    mask_param = next(p for p in model.get_parameters() if p.output(0).get_any_name() == "attention_mask")
    mask = ops.unsqueeze(ops.convert(mask_param, "f32"), ops.constant(np.array([2], np.int64)))  # [b, t, 1]
    real = ops.greater(mask, ops.constant(np.float32(0)))
    zero = ops.constant(np.float32(0))
    axis_tokens = ops.constant(np.array([1], np.int64))

    def masked_sum(weights: Any) -> Any:
        return ops.reduce_sum(ops.select(real, ops.multiply(hidden, weights), zero), axis_tokens, False)

    count = ops.maximum(ops.reduce_sum(mask, axis_tokens, False), ops.constant(np.float32(1e-9)))  # [b, 1]
    vectors = []
    for mode in pipeline.pooling_modes:
        if mode == "cls":
            vectors.append(ops.gather(hidden, ops.constant(np.int64(0)), ops.constant(np.int64(1))))
        elif mode == "mean":
            vectors.append(ops.divide(masked_sum(ops.constant(np.float32(1))), count))
        elif mode == "mean_sqrt_len_tokens":
            vectors.append(ops.divide(masked_sum(ops.constant(np.float32(1))), ops.sqrt(count)))
        elif mode == "max":
            lowest = ops.constant(np.float32(-np.inf))
            vectors.append(ops.reduce_max(ops.select(real, hidden, lowest), axis_tokens, False))
        elif mode == "weightedmean":
            # Position weights 1, 2, ... over the real tokens (right padding: they come first).
            tokens = ops.gather(
                ops.shape_of(mask_param), ops.constant(np.int64(1)), ops.constant(np.int64(0))
            )
            positions = ops.range(
                ops.constant(np.float32(1)),
                ops.add(ops.convert(tokens, "f32"), ops.constant(np.float32(1))),
                ops.constant(np.float32(1)),
                "f32",
            )
            weights = ops.multiply(mask, ops.unsqueeze(positions, ops.constant(np.array([0, 2], np.int64))))
            total = ops.maximum(ops.reduce_sum(weights, axis_tokens, False), ops.constant(np.float32(1e-9)))
            vectors.append(ops.divide(masked_sum(weights), total))
        elif mode == "lasttoken":
            last = ops.subtract(
                ops.reduce_sum(ops.convert(mask_param, "i64"), axis_tokens, False),
                ops.constant(np.array([1], np.int64)),
            )  # [b, 1]
            last = ops.maximum(last, ops.constant(np.array([0], np.int64)))
            vectors.append(
                ops.squeeze(
                    ops.gather(hidden, last, ops.constant(np.int64(1)), 1),
                    ops.constant(np.array([1], np.int64)),
                )
            )
    pooled = vectors[0] if len(vectors) == 1 else ops.concat(vectors, -1)
    for module in pipeline.after_pooling:
        if isinstance(module, Dense):
            pooled = ops.matmul(pooled, ops.constant(module.weight), False, True)
            if module.bias is not None:
                pooled = ops.add(pooled, ops.constant(module.bias))
            pooled = _activation(ops, pooled, module.activation)
        else:
            normed = ops.mvn(pooled, ops.constant(np.array([-1], np.int64)), True, module.eps, "inside_sqrt")
            pooled = ops.add(ops.multiply(normed, ops.constant(module.weight)), ops.constant(module.bias))
    result = ops.result(pooled)
    result.output(0).get_tensor().set_names({SENTENCE_EMBEDDING})
    for old in list(model.get_results()):
        model.remove_result(old)
    model.add_results([result])
    model.validate_nodes_and_infer_types()
    return model


def _activation(ops: Any, value: Any, name: str) -> Any:
    if name == "Identity":
        return value
    if name == "Tanh":
        return ops.tanh(value)
    if name == "ReLU":
        return ops.relu(value)
    if name == "Sigmoid":
        return ops.sigmoid(value)
    if name == "GELU":
        return ops.gelu(value, "erf")
    return ops.swish(value)  # SiLU: x * sigmoid(x)
