"""Run the tokenizer IR: one call for all texts of a request, ids returned unpadded.

The tokenizer IR (openvino-tokenizers, converted without special tokens) takes a string
tensor and ends in RaggedToDense ops that pad every text to the longest one. Both ends pad:
a numpy/OpenVINO string tensor is built through a fixed-width array, and the dense outputs are
[texts, longest] — for one 16k-token document among 1000 short ones that is gigabytes. So at
load time the graph is opened at both ends when it has the usual shape:

- input: the StringTensorUnpack after the string Parameter is bypassed; the server feeds its
  outputs itself (begins, ends, UTF-8 bytes of all texts concatenated);
- output: the ragged ids (begins, ends, values) feeding RaggedToDense become the outputs.

Each step falls back to the plain graph when it does not apply, so any tokenizer IR works;
memory and time then grow with texts x longest text instead of the total length.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops with OpenVINO)
from openvino import opset13

from serving.pipelines.framing import RaggedTokens
from serving.pipelines.inference import InferencePool

log = logging.getLogger(__name__)

# The tokenizer ops run on CPU only; the throughput hint gives concurrent requests their own stream.
TOKENIZER_DEVICE = "CPU"
TOKENIZER_CONFIG = {"PERFORMANCE_HINT": "THROUGHPUT"}
_UNPACKED_INPUTS = ("begins", "ends", "symbols")
# Requests of at most this many characters are tokenized on the event loop (see Tokenizer.tokenize).
INLINE_CHARACTERS = 2048


def _ragged_ids_outputs(model: ov.Model) -> list[ov.Output] | None:
    """The (begins, ends, values) outputs that RaggedToDense pads into input_ids, or None."""
    results = {output.get_any_name(): output for output in model.outputs}
    if "input_ids" not in results:
        return None
    source = results["input_ids"].get_node().input(0).get_source_output().get_node()
    while source.get_type_name() == "Convert":
        source = source.input(0).get_source_output().get_node()
    if source.get_type_name() != "RaggedToDense" or source.get_input_size() < 3:
        return None
    return [source.input(index).get_source_output() for index in range(3)]


def _bypass_string_unpack(model: ov.Model) -> list[ov.Node] | None:
    """Replace Parameter -> StringTensorUnpack by three parameters (begins, ends, symbols).

    Mutates `model`'s graph; returns the new parameters, or None (graph untouched).
    """
    parameters = model.get_parameters()
    if len(parameters) != 1:
        return None
    targets = list(parameters[0].output(0).get_target_inputs())
    if len(targets) != 1 or targets[0].get_node().get_type_name() != "StringTensorUnpack":
        return None
    unpack = targets[0].get_node()
    new_parameters = []
    for index, name in enumerate(_UNPACKED_INPUTS):
        output = unpack.output(index)
        parameter = opset13.parameter(output.get_partial_shape(), output.get_element_type(), name=name)
        parameter.output(0).set_names({name})
        for target in list(output.get_target_inputs()):
            target.replace_source_output(parameter.output(0))
        new_parameters.append(parameter)
    return new_parameters


def _utf8(text: str) -> bytes:
    # Lone surrogates (legal in JSON escapes, not in UTF-8) become '?' bytes.
    return text.encode("utf-8", "replace")


def pack_strings(texts: list[str]) -> dict[str, np.ndarray]:
    """What StringTensorUnpack would give: begins, ends and the UTF-8 bytes of all texts."""
    encoded = [_utf8(text) for text in texts]
    lengths = np.fromiter((len(item) for item in encoded), dtype=np.int64, count=len(encoded))
    ends = np.cumsum(lengths)
    return {
        "begins": (ends - lengths).astype(np.int32),
        "ends": ends.astype(np.int32),
        "symbols": np.frombuffer(b"".join(encoded), dtype=np.uint8),
    }


def _from_ragged(begins: np.ndarray, ends: np.ndarray, values: np.ndarray) -> RaggedTokens:
    lengths = (ends - begins).astype(np.int64)
    if len(lengths) and np.array_equal(begins[1:], ends[:-1]):
        return RaggedTokens.from_lengths(values[int(begins[0]) : int(ends[-1])], lengths)
    starts = np.cumsum(lengths) - lengths  # where each text starts in the packed result
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    return RaggedTokens.from_lengths(values[np.repeat(begins.astype(np.int64), lengths) + within], lengths)


def _from_dense(input_ids: np.ndarray, attention_mask: np.ndarray) -> RaggedTokens:
    mask = attention_mask.astype(bool)
    # Right padding: row-major boolean indexing keeps each row's ids in order.
    return RaggedTokens.from_lengths(input_ids[mask], mask.sum(axis=1).astype(np.int64))


class Tokenizer:
    """A compiled tokenizer IR with its own pool of infer requests.

    `model` is consumed: its graph may be rewired (see the module docstring). `strip` = (head,
    tail): how many ids an IR that adds special tokens puts before and after every text; they are
    taken off, so callers always get the texts' own ids (set it once the layout is known).
    """

    def __init__(self, core: ov.Core, model: ov.Model, label: str, strip: tuple[int, int] = (0, 0)) -> None:
        self.strip = strip
        ragged_outputs = _ragged_ids_outputs(model)
        dense_names = [output.get_any_name() for output in model.outputs]
        packed_parameters = _bypass_string_unpack(model)
        self.packed_input = packed_parameters is not None
        self.ragged = ragged_outputs is not None
        parameters = packed_parameters if packed_parameters is not None else model.get_parameters()
        if ragged_outputs is not None:
            graph = ov.Model(ragged_outputs, model.get_sinks(), parameters, "ragged_tokenizer")
            outputs: tuple[int, ...] = (0, 1, 2)
        else:
            graph = ov.Model(model.outputs, model.get_sinks(), parameters, "tokenizer")
            outputs = (dense_names.index("input_ids"), dense_names.index("attention_mask"))
        compiled = core.compile_model(graph, TOKENIZER_DEVICE, TOKENIZER_CONFIG)
        if not (self.ragged and self.packed_input):
            log.info("%s: tokenizer graph not in the usual shape; padded inputs/outputs are used", label)
        size = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self._pool = InferencePool(compiled, size, label, outputs=outputs)

    def _inputs(self, texts: list[str]) -> dict[Any, Any]:
        if self.packed_input:
            return pack_strings(texts)
        return {0: ov.Tensor([_utf8(text).decode("utf-8") for text in texts])}

    def _unpack(self, outputs: list[np.ndarray]) -> RaggedTokens:
        tokens = _from_ragged(*outputs) if self.ragged else _from_dense(*outputs)
        return tokens.strip(*self.strip)

    async def tokenize(self, texts: list[str]) -> RaggedTokens:
        """Token ids (no special tokens: see `strip`) of every text, in one tokenizer call.

        A few short texts (a query and a handful of documents) are tokenized right here when an
        infer request is idle: that takes tens of microseconds, less than handing them to a worker
        thread and waking the event loop again. Longer inputs go to a worker thread.
        """
        if not texts:
            return RaggedTokens.from_lists([])
        inputs = self._inputs(texts)
        if sum(len(text) for text in texts) <= INLINE_CHARACTERS:
            outputs = self._pool.try_run_now(inputs)
            if outputs is not None:
                return self._unpack(outputs)
        return self._unpack(await self._pool.run(inputs))

    @property
    def waiting(self) -> int:
        return self._pool.waiting

    def close(self) -> None:
        self._pool.close()
