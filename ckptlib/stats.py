"""Statistics, histogram and a bounded preview of one tensor, accumulated in float64 chunk by chunk."""

from __future__ import annotations

import math

import numpy as np

from ckptlib.types import Histogram, TensorStats, TensorSummary, VariableInfo

CHUNK = 1 << 20  # elements per float64 chunk: bounds the temporary memory to ~8 MB per pass
PREVIEW_LIMIT = 200  # elements shown in a preview
HISTOGRAM_BINS = 50


# Squares overflow float64 past ~2**511 and underflow below ~2**-537: outside this band the values
# are scaled by a power of two first, which is exact and undone on the results.
_SAFE_PEAK = (2.0**-200, 2.0**200)


def as_float_components(array: np.ndarray) -> np.ndarray | None:
    """A flat view whose elements are real numbers (complex split into re/im), or None for strings and
    bools (DESIGN.md: they compare by equality and have no statistics)."""
    if array.dtype == object or array.dtype.kind in "SUb":
        return None
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype.kind == "c":
        return flat.view(flat.real.dtype)
    return flat


def _chunks(flat: np.ndarray):
    for start in range(0, flat.size, CHUNK):
        yield flat[start : start + CHUNK].astype(np.float64)


@np.errstate(over="ignore", under="ignore")  # a first-pass overflow is redone with scaled values
def tensor_stats(array: np.ndarray) -> TensorStats:
    """min/max/mean/std/l2 over the finite values (float64), NaN and Inf counted apart."""
    flat = as_float_components(array)
    if flat is None:
        return TensorStats(None, None, None, None, None, 0, 0, None)
    count = nan = inf = zeros = 0
    total = sq_total = 0.0
    low, high = math.inf, -math.inf
    for chunk in _chunks(flat):
        finite_mask = np.isfinite(chunk)
        nan += int(np.isnan(chunk).sum())
        inf += int(np.isinf(chunk).sum())
        finite = chunk[finite_mask] if not finite_mask.all() else chunk
        zeros += int(np.count_nonzero(chunk == 0))
        if finite.size:
            count += finite.size
            total += float(finite.sum())
            sq_total += float(np.dot(finite, finite))
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if count == 0:
        return TensorStats(None, None, None, None, None, nan, inf, (zeros / flat.size) if flat.size else None)
    peak = max(abs(low), abs(high))
    scale = 1.0
    if peak and not _SAFE_PEAK[0] <= peak <= _SAFE_PEAK[1]:
        # Squares (or sums) would overflow to inf or underflow to 0: redo the sums in units of `scale`.
        scale = math.ldexp(1.0, math.frexp(peak)[1] - 1)  # peak / scale lies in [1, 2)
        total = sq_total = 0.0
        for chunk in _chunks(flat):
            finite = chunk[np.isfinite(chunk)] / scale
            total += float(finite.sum())
            sq_total += float(np.dot(finite, finite))
    mean = total / count  # in units of scale
    # A second pass for the variance: sum((x-mean)^2) avoids the cancellation of E[x^2]-E[x]^2.
    var_total = 0.0
    for chunk in _chunks(flat):
        finite = chunk[np.isfinite(chunk)]
        if scale != 1.0:
            finite = finite / scale
        finite -= mean
        var_total += float(np.dot(finite, finite))
    return TensorStats(
        min=low,
        max=high,
        mean=mean * scale,
        std=math.sqrt(var_total / count) * scale,
        l2=math.sqrt(sq_total) * scale,
        nan=nan,
        inf=inf,
        zero_fraction=zeros / flat.size,
    )


def histogram(array: np.ndarray, stats: TensorStats, bins: int = HISTOGRAM_BINS) -> Histogram | None:
    """Equal-width bins between the finite min and max; None for strings or no finite values."""
    flat = as_float_components(array)
    if flat is None or stats.min is None:
        return None
    low, high = stats.min, stats.max
    if low == high:  # a constant tensor: one bin around the value
        low, high = low - 0.5, high + 0.5
        bins = 1
    if math.isfinite(high - low):
        edges = np.linspace(low, high, bins + 1)
    else:  # the span overflows float64 (values near ±1.8e308): halve, space, double (exact)
        edges = np.linspace(low / 2, high / 2, bins + 1) * 2
    counts = np.zeros(bins, dtype=np.int64)
    for chunk in _chunks(flat):
        counts += np.histogram(chunk[np.isfinite(chunk)], bins=edges)[0]
    return Histogram(edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts))


def json_scalar(value):
    """A JSON-safe Python scalar: bytes decoded, complex as [re, im], NaN/Inf as strings."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
        return text if len(text) <= 200 else text[:200] + "…"
    if isinstance(value, (complex, np.complexfloating)):
        return [json_scalar(float(value.real)), json_scalar(float(value.imag))]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def preview(array: np.ndarray, limit: int = PREVIEW_LIMIT) -> tuple[object, bool]:
    """Nested lists when the tensor has at most `limit` elements, else its first `limit` values flat."""
    if array.dtype.name == "bfloat16":  # ml_dtypes scalars are not numbers to json
        array = array.astype(np.float32)
    if array.size <= limit:
        return _nested(array), False
    flat = array.reshape(-1)[:limit]
    return [json_scalar(v) for v in flat.tolist()], True


def _nested(array: np.ndarray):
    if not isinstance(array, np.ndarray):  # iterating an object (string) array yields its bytes
        return json_scalar(array)
    if array.ndim == 0:
        return json_scalar(array.item())
    return [_nested(sub) for sub in array]


def summarize(checkpoint: str, info: VariableInfo, array: np.ndarray) -> TensorSummary:
    """Statistics, histogram and preview of a tensor already read from `checkpoint`."""
    stats = tensor_stats(array)
    values, truncated = preview(array)
    return TensorSummary(
        checkpoint=checkpoint,
        info=info,
        stats=stats,
        histogram=histogram(array, stats),
        preview=values,
        preview_truncated=truncated,
    )
