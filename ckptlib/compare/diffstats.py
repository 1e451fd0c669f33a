"""Float64 statistics of b - a over two aligned chunk streams, accumulated block by block in one pass."""

# NaN/Inf semantics are diff.py's (see its docstring): equality at every position decides
# `num_changed`; the norms use the positions where both values are finite. Scaling against
# overflow works as in accumulate.py (a running power-of-two multiplier from the peak |value|);
# only float64 values can need it: squares of float32/float16/bfloat16 and of any 64-bit
# integer stay far inside float64's range.

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ckptlib.tensors.accumulate import BLOCK, ROW, aligned, aligned_empty, multiplier, real_components, row_dots

# Blocks of BLOCK elements (accumulate.py): a and b in float64 (512 KB; |b - a| then overwrites a)
# stay in L2; twice as long spilled out of it and ran slower (benchmarks/README.md).
_SHORT = 2048  # Σ|d| is a dot with ones: 2048 of them (16 KB) stay in L1; 8192 did not (1.7x slower)


@dataclass(frozen=True)
class ArrayComparison:
    """The diff statistics of two same-shape arrays (see VariableDiff for each field)."""

    l2_diff: float | None
    rel_change: float | None
    max_abs_diff: float | None
    mean_abs_diff: float | None
    cosine: float | None
    frac_changed: float | None
    num_changed: int
    nonfinite: int | None


class EqualAccumulator:
    """Strings and bools: only how many positions differ."""

    def __init__(self):
        self.size = self.changed = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self.size += a.size
        self.changed += int(np.count_nonzero(a != b))

    def result(self) -> ArrayComparison:
        frac = self.changed / self.size if self.size else None
        return ArrayComparison(None, None, None, None, None, frac, self.changed, None)


def comparison(equality: bool, atol: float = 0.0) -> EqualAccumulator | DiffAccumulator:
    """The accumulator for a pair of tensors: by equality (strings, bools) or by float64 statistics."""
    return EqualAccumulator() if equality else DiffAccumulator(atol)


def compare_chunks(chunks_a: Iterable[np.ndarray], chunks_b: Iterable[np.ndarray], atol: float = 0.0,
                   equality: bool = False) -> ArrayComparison:
    """Compare two tensors given as flat chunk streams (e.g. Checkpoint.iter_chunks), in lockstep."""
    acc = comparison(equality, atol)
    for a, b in aligned(chunks_a, chunks_b):
        acc.add(a, b)
    return acc.result()


class DiffAccumulator:
    """Float64 sums over blocks of a, b and b - a (complex values count their re and im parts apart)."""

    def __init__(self, atol: float = 0.0, block: int = BLOCK):
        self.atol = atol
        self.block = block
        self.size = self.changed = self.count = self.nonfinite = 0
        self.mult, self.peak = 1.0, 0.0
        self.sum_d2 = self.sum_a2 = self.sum_b2 = self.sum_ab = self.sum_abs = self.peak_abs = 0.0  # scaled
        self._rows = aligned_empty((2, block))  # a and b in float64, then |b - a| over a
        self._flags = np.empty(block, dtype=np.bool_)
        self._sums = BlockSums(self._rows)

    @np.errstate(invalid="ignore", over="ignore")  # Inf - Inf, overflowing squares: the masked path redoes them
    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        """Add two equal-length flat contiguous pieces (complex ones count re and im apart)."""
        a, b = real_components(a), real_components(b)
        # float64 holds integers exactly only up to 2**53: with atol 0, integers compare in their own type.
        exact = self.atol == 0 and a.dtype.kind in "iu" and b.dtype.kind in "iu"
        wide = a.dtype == np.float64 or b.dtype == np.float64
        # One float dtype: a != b in it is b - a != 0 in float64 (exact casts), reading half the bytes.
        raw = exact or (a.dtype == b.dtype and a.dtype.kind == "f")
        block, (full_a, full_b) = self.block, self._rows
        for start in range(0, a.size, block):
            ra, rb = a[start : start + block], b[start : start + block]
            ca, cb = (full_a, full_b) if ra.size == block else self._rows[:, : ra.size]
            ca[...] = ra  # to float64, exact but for 64-bit integers beyond 2**53
            cb[...] = rb
            self.size += ra.size
            if not self._add_clean(ra, rb, ca, cb, wide, raw):
                ca[...] = ra  # the clean path may have left |b - a| there
                self._add_masked(ra, rb, ca, cb, exact, wide)

    def _add_clean(self, ra, rb, ca: np.ndarray, cb: np.ndarray, wide: bool, raw: bool) -> bool:
        """The common case, no NaN/Inf and no scaling: False (nothing added) when the block is not."""
        n = ca.size
        if wide:  # float64 may need scaling, which only the masked path applies
            both = self._rows[:, :n]
            low, high = float(both.min()), float(both.max())  # NaN propagates
            if not (math.isfinite(low) and math.isfinite(high)):
                return False
            self.peak = max(self.peak, -low, high)
            self._rescale(multiplier(self.peak))
            if self.mult != 1.0:
                return False
        flags = self._flags[:n]
        if not self.atol:  # for finite values, b - a == 0 exactly when b == a (gradual underflow)
            np.not_equal(ra, rb, out=flags) if raw else np.not_equal(ca, cb, out=flags)
        sums = self._sums(n)  # leaves |b - a| where a was
        if not math.isfinite(sum(sums)):  # any NaN or Inf in a or b reaches the squares: no scan for them
            return False
        if self.atol:
            np.greater(ca, self.atol, out=flags)
        self.changed += int(np.count_nonzero(flags))  # booleans: ~4x faster than counting float64 |b - a|
        self._add_sums(sums, float(np.maximum.reduce(ca)), n)
        return True

    def _add_masked(self, ra, rb, ca, cb, exact: bool, wide: bool) -> None:
        if exact:
            self.changed += int(np.count_nonzero(ra != rb))
        else:
            same = (np.abs(cb - ca) <= self.atol) | (ca == cb) | (np.isnan(ca) & np.isnan(cb))
            self.changed += ca.size - int(np.count_nonzero(same))
        finite = np.isfinite(ca) & np.isfinite(cb)
        kept = int(np.count_nonzero(finite))
        if kept < ca.size:
            self.nonfinite += ca.size - kept
            ca, cb = ca[finite], cb[finite]
        if not kept:
            return
        if wide:
            self.peak = max(self.peak, -float(ca.min()), float(ca.max()), -float(cb.min()), float(cb.max()))
            self._rescale(multiplier(self.peak))
        if self.mult != 1.0:  # scratch or masked copies: never the caller's arrays
            ca *= self.mult
            cb *= self.mult
        absd = np.abs(cb - ca)
        sums = tuple(float(row_dots(x, y)) for x, y in ((absd, absd), (ca, ca), (cb, cb), (ca, cb)))
        self._add_sums((*sums, float(absd.sum())), float(absd.max()), kept)

    def _add_sums(self, sums: tuple[float, ...], peak_abs: float, count: int) -> None:
        """Add (|d|², |a|², |b|², a·b, Σ|d|) and max |d| of `count` finite positions (d = b - a)."""
        self.sum_d2 += sums[0]
        self.sum_a2 += sums[1]
        self.sum_b2 += sums[2]
        self.sum_ab += sums[3]
        self.sum_abs += sums[4]
        self.peak_abs = max(self.peak_abs, peak_abs)
        self.count += count

    def _rescale(self, mult: float) -> None:
        if mult != self.mult:
            ratio = mult / self.mult  # > 1 only before the first values, when the sums are still 0
            # x * ratio * ratio, not x * ratio**2: the square alone can overflow where the product cannot.
            self.sum_d2, self.sum_a2 = self.sum_d2 * ratio * ratio, self.sum_a2 * ratio * ratio
            self.sum_b2, self.sum_ab = self.sum_b2 * ratio * ratio, self.sum_ab * ratio * ratio
            self.sum_abs, self.peak_abs = self.sum_abs * ratio, self.peak_abs * ratio
            self.mult = mult

    def result(self) -> ArrayComparison:
        frac = self.changed / self.size if self.size else None
        if self.count == 0:
            return ArrayComparison(None, None, None, None, None, frac, self.changed, self.nonfinite)
        norm_d, norm_a, norm_b = math.sqrt(self.sum_d2), math.sqrt(self.sum_a2), math.sqrt(self.sum_b2)
        cosine = None
        if norm_a > 0 and norm_b > 0:  # rounding may step just past +-1
            cosine = min(1.0, max(-1.0, self.sum_ab / (norm_a * norm_b)))
        return ArrayComparison(
            l2_diff=_finite(norm_d / self.mult),
            rel_change=_finite(norm_d / norm_a) if norm_a > 0 else None,
            max_abs_diff=_finite(self.peak_abs / self.mult),
            mean_abs_diff=_finite(self.sum_abs / self.count / self.mult),
            cosine=cosine,
            frac_changed=frac,
            num_changed=self.changed,
            nonfinite=self.nonfinite,
        )


class BlockSums:
    """(Σ|d|², Σa², Σb², Σab, Σ|d|) of a block held as the rows (a, b) of a float64 array; d = b - a.

    Each sum is BLAS dots of at most ROW elements (np.vecdot over a 2-D view: one call per block).
    The squares of a and b come first: |b - a| is then formed in place of a, which the caller reads.
    """

    def __init__(self, rows: np.ndarray):
        self._rows = rows
        self._block = rows.shape[1] if rows.shape[1] % ROW == 0 else -1  # the size the views fit
        if self._block > 0:  # views made once: a block is only a dozen numpy calls
            grid = rows.reshape(2, -1, ROW)
            out = np.empty((4, rows.shape[1] // ROW))
            self._out, self._short_out = out, np.empty(rows.shape[1] // _SHORT)
            # every view the block's calls take, made once: each costs a numpy call's worth
            self._views = (grid, grid[0], grid[1], rows[0], rows[1], out[:2], out[2], out[3],
                           rows[0].reshape(-1, _SHORT), np.ones(_SHORT))

    def __call__(self, n: int) -> tuple[float, float, float, float, float]:
        if n != self._block:  # the last block of a chunk
            rows = self._rows[:, :n]
            a2, b2 = row_dots(rows, rows).tolist()
            ab = float(row_dots(rows[0], rows[1]))
            absd = np.abs(np.subtract(rows[1], rows[0], out=rows[0]), out=rows[0])
            return float(row_dots(absd, absd)), a2, b2, ab, float(np.add.reduce(absd))
        grid, grid_a, grid_b, a, b, out_squares, out_ab, out_d2, short, ones = self._views
        vecdot = np.vecdot
        vecdot(grid, grid, out=out_squares)
        vecdot(grid_a, grid_b, out=out_ab)
        np.abs(np.subtract(b, a, out=a), out=a)  # in place: ~15% faster than into a third row
        vecdot(grid_a, grid_a, out=out_d2)
        vecdot(short, ones, out=self._short_out)
        a2, b2, ab, d2 = self._out.sum(axis=1).tolist()
        return d2, a2, b2, ab, float(self._short_out.sum())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
