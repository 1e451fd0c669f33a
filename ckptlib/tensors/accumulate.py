"""Float64 statistics of a tensor, or of the difference of two, accumulated block by block in one pass."""

# Values are converted to float64 first (DESIGN.md): 64-bit integers beyond 2**53 are rounded then,
# so their std is only good to about float64's spacing at their magnitude (diffs compare them exactly).
#
# Both accumulators take a tensor as any sequence of flat chunks (whole arrays are one chunk), so
# a tensor streamed from disk and the same tensor in memory go through the same arithmetic and
# agree to float64 rounding. Each chunk is worked on in blocks of BLOCK elements: the float64
# copies then stay in the CPU cache across the ~10 passes numpy makes over them. Scratch arrays are
# 64-byte aligned (aligned_empty) and reused: no pass allocates.
#
# Squares overflow float64 past ~2**511 and underflow below ~2**-537. The values are multiplied by
# a power of two chosen from the largest finite |value| seen so far (exact, undone on the results),
# as LAPACK's dnrm2 does; when a later block raises that peak, the sums so far are rescaled
# (the multiplier only ever shrinks, so rescaling cannot overflow).

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from ckptlib.tensors.types import TensorStats

# Elements per BLAS dot: below the ~10,000 past which OpenBLAS's dot wakes its thread pool. Measured
# here on 2 cores, that pool made a diff 3x to 20x slower whenever anything else ran (its threads
# spin-wait). row_dots keeps to it on longer blocks: np.vecdot over the rows of a 2-D view.
ROW = 8192
# Elements per float64 block: the block's copies (256 KB each) stay in a core's L2 across the ~10
# passes numpy makes over them, and each numpy call covers enough elements that entering it is cheap:
# blocks of 8192 spent about as long in call overhead as in arithmetic (benchmarks/README.md).
BLOCK = 4 * ROW
_SAFE_PEAK = (2.0**-200, 2.0**200)


def multiplier(peak: float) -> float:
    """1.0, or the power of two that brings `peak` into [0.5, 1) when it lies outside the safe band."""
    if peak == 0.0 or _SAFE_PEAK[0] <= peak <= _SAFE_PEAK[1]:
        return 1.0
    return math.ldexp(1.0, -math.frexp(peak)[1])


def real_components(flat: np.ndarray) -> np.ndarray:
    """A flat contiguous complex array viewed as its (re, im) float pairs; others unchanged."""
    return flat.view(flat.real.dtype) if flat.dtype.kind == "c" else flat


def aligned(*streams: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, ...]]:
    """Equal-length, in-order pieces of flat chunk streams of the same total size (views, no copies).

    A stream advances only once its chunk is used up, so every chunk stays valid while its pieces
    are in use. Every stream is run to its end, so that its final crc32c check happens.
    """
    iterators = [iter(stream) for stream in streams]
    current = [_refill(it) for it in iterators]
    while all(chunk is not None for chunk in current):
        n = min(chunk.size for chunk in current)
        yield tuple(chunk[:n] for chunk in current)
        current = [chunk[n:] if chunk.size > n else _refill(it) for chunk, it in zip(current, iterators)]
    if any(chunk is not None for chunk in current):
        raise ValueError("the tensors have different numbers of elements")


def _refill(chunks: Iterator[np.ndarray]) -> np.ndarray | None:
    for chunk in chunks:
        if chunk.size:
            return chunk
    return None


def row_dots(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Dot products of x and y (float64, same shape, rows contiguous) along the last axis, ROW at a time.

    np.vecdot calls BLAS's single-threaded dot once per row, one numpy call for the whole block.
    """
    n = x.shape[-1]
    full = n - n % ROW
    lead = x.shape[:-1]
    out = np.vecdot(x[..., :full].reshape(lead + (-1, ROW)), y[..., :full].reshape(lead + (-1, ROW))).sum(axis=-1)
    if full < n:
        out += np.vecdot(x[..., full:], y[..., full:])
    return out


def aligned_empty(shape: tuple[int, ...], dtype=np.float64, align: int = 64) -> np.ndarray:
    """np.empty whose data starts on an `align`-byte boundary (numpy only promises 16 bytes).

    AVX-512 loads and stores that straddle cache lines made float64 passes over a block ~2x slower here.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + nbytes].view(dtype).reshape(shape)


class StatsAccumulator:
    """min/max/mean/std/l2 of the finite values, NaN/Inf/zeros counted; feed flat real components."""

    def __init__(self, block: int = BLOCK):
        self.block = block
        self.size = self.count = self.nan = self.inf = self.zeros = 0
        self.low, self.high = math.inf, -math.inf
        self.mult = 1.0
        self.mean = self.m2 = self.sumsq = 0.0  # in units of 1 / mult
        self._x = aligned_empty((block,))
        self._flags = np.empty(block, dtype=np.bool_)

    def add(self, flat: np.ndarray) -> None:
        """Add a flat contiguous piece (complex counts re and im apart; no strings or bools)."""
        flat = real_components(flat)
        for start in range(0, flat.size, self.block):
            self._add_block(flat[start : start + self.block])

    @np.errstate(over="ignore", invalid="ignore")  # an overflowing sum sends the block down the masked path
    def _add_block(self, part: np.ndarray) -> None:
        x = self._x[: part.size]
        x[...] = part  # to float64, exact but for 64-bit integers beyond 2**53
        self.size += x.size
        # As booleans: np.count_nonzero of float64 itself is ~4x slower than comparing and counting.
        self.zeros += int(np.count_nonzero(np.equal(x, 0.0, out=self._flags[: x.size])))
        total = float(np.add.reduce(x))
        if not math.isfinite(total):  # NaN or Inf in the block (or a float64 sum that overflowed)
            finite = np.isfinite(x)
            nan = int(np.count_nonzero(np.isnan(x)))
            self.nan += nan
            self.inf += x.size - nan - int(np.count_nonzero(finite))
            x, total = x[finite], None
        if not x.size:
            return
        self.low, self.high = min(self.low, float(x.min())), max(self.high, float(x.max()))
        self._rescale(multiplier(max(-self.low, self.high)))
        if self.mult != 1.0:
            x *= self.mult  # x is scratch or a masked copy: never the caller's array
            total = None
        if total is None:
            total = float(np.add.reduce(x))
        self.sumsq += float(row_dots(x, x))
        # Chan et al.'s pairwise update: block mean and squared deviations merged into the running ones.
        mean = total / x.size
        x -= mean
        m2 = float(row_dots(x, x))
        merged = self.count + x.size
        delta = mean - self.mean
        self.mean += delta * x.size / merged
        self.m2 += m2 + delta * delta * (self.count * x.size / merged)
        self.count = merged

    def _rescale(self, mult: float) -> None:
        if mult != self.mult:
            ratio = mult / self.mult  # > 1 only before the first values, when the sums are still 0
            self.mean *= ratio
            self.m2 = self.m2 * ratio * ratio  # not ratio**2: that can overflow where the product cannot
            self.sumsq = self.sumsq * ratio * ratio
            self.mult = mult

    def result(self) -> TensorStats:
        zero_fraction = self.zeros / self.size if self.size else None
        if self.count == 0:
            return TensorStats(None, None, None, None, None, self.nan, self.inf, zero_fraction)
        return TensorStats(
            min=self.low,
            max=self.high,
            mean=self.mean / self.mult,
            std=math.sqrt(self.m2 / self.count) / self.mult,
            l2=math.sqrt(self.sumsq) / self.mult,
            nan=self.nan,
            inf=self.inf,
            zero_fraction=zero_fraction,
        )
