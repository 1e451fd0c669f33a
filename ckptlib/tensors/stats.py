"""Statistics, histogram and a bounded preview of one tensor, accumulated in float64 chunk by chunk."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ckptlib.formats.types import VariableInfo
from ckptlib.tensors.accumulate import StatsAccumulator, real_components
from ckptlib.tensors.types import Histogram, TensorStats, TensorSummary

if TYPE_CHECKING:
    from ckptlib.formats import Checkpoint

CHUNK = 1 << 20  # elements per chunk when an in-memory array is fed to the accumulators
PREVIEW_LIMIT = 200  # elements shown in a preview
HISTOGRAM_BINS = 50
_NO_STATS = ("string", "bool")  # DESIGN.md: they compare by equality and have no statistics


def as_float_components(array: np.ndarray) -> np.ndarray | None:
    """A flat view whose elements are real numbers (complex split into re/im), or None for strings and
    bools (DESIGN.md: they compare by equality and have no statistics)."""
    if array.dtype == object or array.dtype.kind in "SUb":
        return None
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype.kind == "c":
        return flat.view(flat.real.dtype)
    return flat


def _pieces(flat: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, flat.size, CHUNK):
        yield flat[start : start + CHUNK]


def tensor_stats(array: np.ndarray) -> TensorStats:
    """min/max/mean/std/l2 over the finite values (float64), NaN and Inf counted apart."""
    flat = as_float_components(array)
    if flat is None:
        return TensorStats(None, None, None, None, None, 0, 0, None)
    return chunk_stats(_pieces(flat))


def chunk_stats(chunks: Iterable[np.ndarray]) -> TensorStats:
    """tensor_stats of a numeric tensor given as flat chunks (e.g. Checkpoint.iter_chunks), in one pass.

    A CkptError raised by the chunks (a crc32c mismatch after the last one) propagates: no result.
    """
    acc = StatsAccumulator()
    for chunk in chunks:
        acc.add(chunk)
    return acc.result()


def variable_stats(ckpt: Checkpoint, name: str) -> TensorStats:
    """tensor_stats of a stored variable, streamed chunk by chunk: memory does not grow with its size."""
    if ckpt.info(name).dtype in _NO_STATS:
        return TensorStats(None, None, None, None, None, 0, 0, None)
    return chunk_stats(ckpt.iter_chunks(name))


def histogram(array: np.ndarray, stats: TensorStats, bins: int = HISTOGRAM_BINS) -> Histogram | None:
    """Equal-width bins between the finite min and max; None for strings or no finite values."""
    flat = as_float_components(array)
    return None if flat is None else chunk_histogram(_pieces(flat), stats, bins)


def chunk_histogram(chunks: Iterable[np.ndarray], stats: TensorStats, bins: int = HISTOGRAM_BINS) -> Histogram | None:
    """histogram() of a numeric tensor given as flat chunks; `stats` must come from a first pass."""
    if stats.min is None:
        return None
    low, high = stats.min, stats.max
    if low == high:  # a constant tensor: one bin around the value
        low, high = low - 0.5, high + 0.5
        bins = 1
    uniform = math.isfinite(high - low)
    if uniform:
        edges = np.linspace(low, high, bins + 1)
    else:  # the span overflows float64 (values near ±1.8e308): halve, space, double (exact)
        edges = np.linspace(low / 2, high / 2, bins + 1) * 2
    counts = np.zeros(bins, dtype=np.int64)
    for chunk in chunks:
        values = real_components(chunk).astype(np.float64)  # one chunk at a time: bounded memory
        if stats.nan or stats.inf:
            values = values[np.isfinite(values)]
        # With `range`, numpy bins equal widths arithmetically (3-6x faster than searching `edges`), then
        # corrects against the same np.linspace edges: the counts are identical.
        counts += np.histogram(values, bins=bins, range=(low, high))[0] if uniform else np.histogram(values, edges)[0]
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
    return _flat_preview(array.reshape(-1)[:limit]), True


def _flat_preview(flat: np.ndarray) -> list:
    if flat.dtype.name == "bfloat16":  # ml_dtypes scalars are not numbers to json
        flat = flat.astype(np.float32)
    return [json_scalar(v) for v in flat.tolist()]


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


def summarize_variable(ckpt: Checkpoint, name: str) -> TensorSummary:
    """summarize() of a stored variable; a tensor larger than one chunk is streamed (two passes) instead
    of read whole, and previewed by its first values."""
    info = ckpt.info(name)
    # numpy arrays have at most 64 dimensions: a TF-written variable of higher rank is streamed flat.
    if (info.num_elements <= ckpt.chunk_elements or info.dtype == "string") and len(info.shape) <= 64:
        return summarize(ckpt.prefix, info, ckpt.read(name))
    stats = variable_stats(ckpt, name)
    hist = None if info.dtype in _NO_STATS else chunk_histogram(ckpt.iter_chunks(name), stats)
    return TensorSummary(ckpt.prefix, info, stats, hist, _flat_preview(_head(ckpt.iter_chunks(name, PREVIEW_LIMIT))),
                         True)  # fmt: skip


def _head(chunks: Iterable[np.ndarray], limit: int = PREVIEW_LIMIT) -> np.ndarray:
    """The first `limit` values of a chunk stream (chunks of a partitioned variable are whole rows)."""
    taken, count = [], 0
    for chunk in chunks:
        taken.append(chunk[: limit - count].copy())  # copies: a chunk's buffer is reused by the next
        count += taken[-1].size
        if count >= limit:
            break
    return np.concatenate(taken)
