"""Step (architectures optimum-intel refuses, e.g. ModernBERT): torch.export, then openvino.convert_model.

The model is exported with dynamic batch and sequence dimensions on a padded example batch, so
the traced attention masks are the general ones. Weight formats as optimum-intel makes them:
fp32 as is, fp16 weights, int8 through NNCF's weight compression (INT8_ASYM, per channel).

Attention masks: a padded position far enough from every real token (ModernBERT's sliding
window: more than half the window past the last real token) has all its keys masked. torch >= 2.5
returns zeros for such a row; OpenVINO's attention returns NaN, and since attention multiplies
every value row by its weight, 0 x NaN spreads the NaN to the real tokens in the next layer.
While exporting, the model's mask builders are wrapped so such a row attends to every key (what
transformers itself does for older torch): the padded rows get finite values that no real token
reads, and the real tokens' results are unchanged.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from export_models.errors import ModelConversionError
from export_models.source import ResolvedSource
from serving.repository.layout import Task

# The mask builders of transformers.masking_utils that modeling files import by name.
MASK_BUILDERS = (
    "create_bidirectional_mask",
    "create_bidirectional_sliding_window_mask",
    "create_causal_mask",
    "create_sliding_window_causal_mask",
)
# The example batch: two texts of different lengths, so padding is part of the traced graph.
EXAMPLE_TEXTS = ("The giant panda is a bear species endemic to China.", "short")
OUTPUT_NAMES = {Task.RERANK: "logits", Task.EMBEDDINGS: "last_hidden_state"}


def _attend_all_when_nothing_left(build: Callable[..., Any]) -> Callable[..., Any]:
    def build_mask(*args: Any, **kwargs: Any) -> Any:
        import torch

        mask = build(*args, **kwargs)
        if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
            mask = mask | torch.all(~mask, dim=-1, keepdim=True)
        return mask

    return build_mask


@contextlib.contextmanager
def rows_never_fully_masked(model: Any) -> Iterator[None]:
    """Wrap the mask builders the model's modeling modules imported (see the module docstring)."""
    modules = {sys.modules[type(part).__module__] for part in model.modules()}
    originals = [(m, name, getattr(m, name)) for m in modules for name in MASK_BUILDERS if hasattr(m, name)]
    for m, name, build in originals:
        setattr(m, name, _attend_all_when_nothing_left(build))
    try:
        yield
    finally:
        for m, name, build in originals:
            setattr(m, name, build)


def convert_with_torch_export(
    source: ResolvedSource,
    task: Task,
    weight_format: str,
    output_dir: Path,
    trust_remote_code: bool = False,
) -> Path:
    """Export the model to output_dir/openvino_model.xml; returns that path."""
    import openvino as ov
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from export_models.convert_model import OPTIMUM_MODEL_XML
    from export_models.hf_reference import quiet_transformers

    model_class = AutoModelForSequenceClassification if task is Task.RERANK else AutoModel
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=trust_remote_code)
            model = model_class.from_pretrained(
                source.path, dtype=torch.float32, trust_remote_code=trust_remote_code
            ).eval()
    except Exception as error:  # transformers raises many types for missing or broken weights
        reason = " ".join(str(error).split())[:300]
        raise ModelConversionError(
            f"cannot load {source.recorded} ({source.architecture}): {reason}"
        ) from error
    example = tokenizer(list(EXAMPLE_TEXTS), padding=True, return_tensors="pt")
    inputs = {name: example[name] for name in ("input_ids", "attention_mask")}
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=2, max=1 << 20)
    dynamic = {name: {0: batch, 1: sequence} for name in inputs}
    try:
        with torch.no_grad(), rows_never_fully_masked(model):
            program = torch.export.export(model, args=(), kwargs=inputs, dynamic_shapes=dynamic, strict=False)
        converted = ov.convert_model(program)
    except Exception as error:  # torch.export raises many types for untraceable code
        reason = " ".join(str(error).split())[:300]
        raise ModelConversionError(
            f"torch.export could not export {source.recorded} ({source.architecture}): {reason}"
        ) from error
    converted.outputs[0].get_tensor().set_names({OUTPUT_NAMES[task]})
    if weight_format == "int8":
        import nncf

        converted = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_xml = output_dir / OPTIMUM_MODEL_XML
    ov.save_model(converted, model_xml, compress_to_fp16=weight_format == "fp16")
    return model_xml
