"""Model formats made from the fp32 IR in-process: static int8 (NNCF with calibration), weight-only
int8 and fp16, and the speed measurement `--weight-format auto` chooses by.

Static int8 quantizes weights and activations: nncf.quantize with the transformer model type on
the calibration batches the server itself would build (export_models/serving_run.py). The recipe
kept (StaticRecipe defaults) is the one that measured best; docs/export.md ("Static int8")
describes it and its figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import openvino as ov

from export_models import calibration_data, serving_run
from export_models.accuracy import AccuracyGate, AccuracyReport, Candidate, ModelFormat, metrics
from export_models.errors import InvalidOptionError
from export_models.serving_run import ModelInputs, ServingSetup

# The reference: the fp32 IR computed in f32 (the CPU plugin would otherwise use bf16 where it can).
REFERENCE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
# Requests of a calibration file used (all arrive at once; NNCF takes at most subset_size batches).
MAX_CALIBRATION_REQUESTS = 256
SPEED_SECONDS = 3.0  # --weight-format auto: timed seconds per format, at least


@dataclass(frozen=True)
class StaticRecipe:
    """How nncf.quantize is called."""

    # SmoothQuant's alpha for MatMuls (NNCF's default for transformers is 0.95); None: off.
    smooth_quant: float | None = 0.95
    fast_bias_correction: bool = True
    # Node name patterns (regular expressions) left in floating point.
    ignored_patterns: tuple[str, ...] = ()
    subset_size: int = 300

    def describe(self) -> dict[str, object]:
        return asdict(self)


DEFAULT_RECIPE = StaticRecipe()


def calibration_rows(batches: Sequence[ModelInputs], count: int) -> list[ModelInputs]:
    """Up to `count` rows of the server's batches, one per sample and without their padding, taken
    evenly across the batches (so across lengths)."""
    rows = []
    for batch in batches:
        lengths = batch["attention_mask"].sum(axis=1)
        for index, length in enumerate(lengths):
            rows.append({name: array[index : index + 1, : int(length)] for name, array in batch.items()})
    if len(rows) <= count:
        return rows
    chosen = np.linspace(0, len(rows) - 1, count).round().astype(int)
    return [rows[index] for index in chosen]


def quantize_static(
    model: ov.Model, batches: Sequence[ModelInputs], recipe: StaticRecipe = DEFAULT_RECIPE
) -> ov.Model:
    """Weights and activations in int8; `model` itself is left as it was.

    NNCF sees the rows of the server's batches one at a time without padding: the activations of
    the real tokens, which padding does not change, at a fraction of the cost of the padded batches
    (NNCF reduces every intermediate tensor of every sample in numpy).
    """
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    alpha = -1.0 if recipe.smooth_quant is None else recipe.smooth_quant
    ignored = nncf.IgnoredScope(patterns=list(recipe.ignored_patterns), validate=False)
    rows = calibration_rows(batches, recipe.subset_size)
    return nncf.quantize(
        model.clone(),
        nncf.Dataset(rows),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(rows),
        fast_bias_correction=recipe.fast_bias_correction,
        ignored_scope=ignored,
        advanced_parameters=AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha)
        ),
    )


def compress_weights_int8(model: ov.Model) -> ov.Model:
    """Weight-only int8 (INT8_ASYM per channel), what `--weight-format int8` makes."""
    import nncf

    return nncf.compress_weights(model.clone(), mode=nncf.CompressWeightsMode.INT8_ASYM)


def to_fp16(model: ov.Model) -> ov.Model:
    """fp16 weights (decompressed at load), what `--weight-format fp16` makes."""
    from openvino._offline_transformations import compress_model_transformation

    fp16 = model.clone()
    compress_model_transformation(fp16)
    return fp16


def tokens_of(batch: ModelInputs) -> int:
    return int(batch["attention_mask"].sum())


def measure_speed(
    compiled: dict[str, ov.CompiledModel],
    batches: Sequence[ModelInputs],
    seconds_each: float,
    waiting: Callable[[float], None] | None = None,
) -> dict[str, float]:
    """Tokens/s of each compiled model on the same batches, measured in interleaved rounds.

    Round after round, each model runs the next few batches in turn, so a machine whose load
    changes during the measurement slows every model alike; it stops once every model has
    run for `seconds_each` and at least two rounds. Each model's first call (warm-up) is not timed.
    """
    requests = {name: model.create_infer_request() for name, model in compiled.items()}
    for request in requests.values():
        request.infer(batches[0])
    elapsed = dict.fromkeys(compiled, 0.0)
    tokens = dict.fromkeys(compiled, 0)
    per_round = max(1, len(batches) // 8)
    position, rounds, started = 0, 0, time.monotonic()
    while rounds < 2 or min(elapsed.values()) < seconds_each:
        chosen = [batches[(position + k) % len(batches)] for k in range(per_round)]
        position += per_round
        for name, request in requests.items():
            begin = time.perf_counter()
            for batch in chosen:
                request.infer(batch)
            elapsed[name] += time.perf_counter() - begin
            tokens[name] += sum(tokens_of(batch) for batch in chosen)
        rounds += 1
        if waiting is not None:
            waiting(time.monotonic() - started)
    return {name: tokens[name] / elapsed[name] for name in compiled}


def padded_share(batches: Sequence[ModelInputs]) -> float:
    padded = sum(int(np.prod(batch["attention_mask"].shape)) for batch in batches)
    return 1.0 - sum(tokens_of(batch) for batch in batches) / padded if padded else 0.0


@dataclass(frozen=True)
class QuantizationPlan:
    """What the quantization step is asked to do."""

    setup: ServingSetup
    formats: tuple[ModelFormat, ...]  # one (static int8) or the auto candidates
    gate: AccuracyGate
    calibration: list[calibration_data.Request] | None  # None: the shipped set
    calibration_origin: str
    plugin_config: Callable[[ModelFormat], dict[str, str]]  # what the server will compile with


def _requests(count: int) -> str:
    return f"{count} request{'s' if count != 1 else ''}"


def make_format(fmt: ModelFormat, fp32: ov.Model, batches: Sequence[ModelInputs]) -> ov.Model:
    if fmt.quantization == "static":
        return quantize_static(fp32, batches)
    if fmt.weight_format == "int8":
        return compress_weights_int8(fp32)
    return to_fp16(fp32) if fmt.weight_format == "fp16" else fp32


def choose_model(
    plan: QuantizationPlan, fp32: ov.Model, note: Callable[[str], None], waiting: Callable[[float], None]
) -> tuple[Candidate | None, ov.Model | None, AccuracyReport]:
    """Make each format, score the evaluation set with it and with fp32, and (auto) time each.

    Returns the candidate kept (the fastest that passes the gate; None: none passes), its model,
    and the report of all of them.
    """
    core = ov.Core()
    task = plan.setup.task
    requests = plan.calibration or calibration_data.shipped(task, "calibration")
    used = requests[:MAX_CALIBRATION_REQUESTS]
    started = time.monotonic()
    kept, batches = serving_run.model_inputs(core, plan.setup, fp32, used)
    if not batches:
        raise InvalidOptionError(
            f"calibration data {plan.calibration_origin}: the server would refuse every request in it "
            "(queries too long for the model?)"
        )
    tokens = sum(tokens_of(batch) for batch in batches)
    calibration = (
        f"{plan.calibration_origin}: {calibration_data.item_count(kept)} items in {_requests(len(kept))}"
        + (f" (the first {len(used)} of {len(requests)})" if len(used) < len(requests) else "")
        + f", {len(batches)} batches of {tokens:,} tokens ({padded_share(batches):.0%} padding)"
    )
    note(f"calibration: {calibration}")
    evaluation = calibration_data.shipped(task, "evaluation")
    reference = serving_run.outputs(core, plan.setup, fp32, REFERENCE_CONFIG, evaluation)
    scored = [index for index, result in enumerate(reference) if result is not None]
    evaluated = f"shipped {calibration_data.shipped_file(task, 'evaluation')}: " + (
        f"{calibration_data.item_count([evaluation[i] for i in scored])} items in {_requests(len(scored))}"
    )
    note(f"evaluation set scored with the fp32 IR ({time.monotonic() - started:.0f} s): {evaluated}")
    candidates, models = [], {}
    for fmt in plan.formats:
        started = time.monotonic()
        model = make_format(fmt, fp32, batches)
        made = time.monotonic() - started
        output = serving_run.outputs(core, plan.setup, model, plan.plugin_config(fmt), evaluation)
        figures = metrics(task, [reference[i] for i in scored], [output[i] for i in scored])  # type: ignore[misc]
        candidates.append(Candidate(fmt, figures, plan.gate.failures(figures)))
        models[fmt] = model
        note(f"{fmt.label}: made in {made:.0f} s, scored in {time.monotonic() - started - made:.0f} s")
    speed = ""
    if len(plan.formats) > 1:
        compiled = {
            fmt.label: core.compile_model(models[fmt], "CPU", plan.plugin_config(fmt)) for fmt in plan.formats
        }
        speeds = measure_speed(compiled, batches, SPEED_SECONDS, waiting)
        for candidate in candidates:
            candidate.tokens_per_s = speeds[candidate.label]
        speed = (
            f"tokens/s on the calibration batches, one infer request each, interleaved rounds of at least "
            f"{SPEED_SECONDS:.0f} s per format, on this machine"
        )
    passing = [c for c in candidates if c.passed]
    chosen = max(passing, key=lambda c: c.tokens_per_s or 0.0, default=None)
    report = AccuracyReport(
        task=task,
        gate=plan.gate,
        evaluation=evaluated,
        calibration=calibration,
        candidates=candidates,
        chosen=chosen.label if chosen else None,
        recipe=DEFAULT_RECIPE.describe() if any(f.quantization == "static" for f in plan.formats) else {},
        speed=speed,
    )
    return chosen, models[chosen.format] if chosen else None, report
