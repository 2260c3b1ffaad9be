"""Embeddings as int8, uint8, binary and ubinary: Cohere's `embedding_types`, and `encoding_format` on
/v3/embeddings (vector databases store these).

binary and ubinary are Cohere's definitions (and sentence-transformers' `quantize_embeddings`): one
sign bit per dimension (1 when the value is > 0), packed 8 per byte with the first dimension in the
top bit (numpy's packbits), the last byte zero-padded; ubinary is that byte (0..255), binary the
same minus 128 (-128..127).

int8 and uint8: Cohere publishes no formula, and sentence-transformers' needs calibration ranges
(per-dimension minimum and maximum of a sample of embeddings). Here the range is fixed instead, to
[-1, 1] in every dimension: every component of an L2-normalized vector lies in it, so nothing is
ever clipped, a vector's codes do not depend on the other inputs of the request, and no calibration
data is needed. With that range the formula is sentence-transformers' own: uint8 =
clip(floor((x + 1) / (2 / 255)), 0, 255), int8 = uint8 - 128. The price of a range that fits any
unit vector is resolution: steps of 2/255 for components typically around 1/sqrt(dimensions).
"""

from __future__ import annotations

import numpy as np

from serving.errors import InvalidRequest

INTEGER_FORMATS = ("int8", "uint8")
BINARY_FORMATS = ("binary", "ubinary")

# The calibration range of int8/uint8, the same in every dimension: where unit vectors' components lie.
RANGE_START = np.float32(-1.0)
# float32 arithmetic, as sentence-transformers computes its steps
RANGE_STEP = (np.float32(1.0) - RANGE_START) / np.float32(255)


def quantize(vectors: np.ndarray, kind: str, normalized: bool, field: str = "embedding_types") -> np.ndarray:
    """[inputs, dimensions] float32 -> int8/uint8 [inputs, dimensions] or binary/ubinary [inputs, ceil(d/8)].

    `normalized`: whether the vectors are L2-normalized; int8/uint8 need that (their range is [-1, 1]).
    """
    if kind in BINARY_FORMATS:
        packed = np.packbits(vectors > 0, axis=-1)
        return packed if kind == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    if kind not in INTEGER_FORMATS:
        raise ValueError(f"unknown quantized format {kind!r}")
    if not normalized:
        raise InvalidRequest(
            f"{kind} maps the range [-1, 1] of L2-normalized embeddings, and this model's are not "
            "normalized (exported with --skip_normalize, or normalize: false); use float, binary or ubinary",
            field=field,
        )
    steps = np.clip(np.floor((vectors.astype(np.float32) - RANGE_START) / RANGE_STEP), 0, 255)
    return steps.astype(np.uint8) if kind == "uint8" else (steps - 128).astype(np.int8)
