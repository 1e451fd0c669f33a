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

from ckptlib.tensors.accumulate import BLOCK, Scratch, aligned, multiplier, real_components


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
        self._scratch = Scratch(3, block)

    @np.errstate(invalid="ignore", over="ignore")  # Inf - Inf, overflowing squares: the masked path redoes them
    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        """Add two equal-length flat contiguous pieces (complex ones count re and im apart)."""
        a, b = real_components(a), real_components(b)
        # float64 holds integers exactly only up to 2**53: with atol 0, integers compare in their own type.
        exact = self.atol == 0 and a.dtype.kind in "iu" and b.dtype.kind in "iu"
        wide = a.dtype == np.float64 or b.dtype == np.float64
        for start in range(0, a.size, self.block):
            ra, rb = a[start : start + self.block], b[start : start + self.block]
            ca, cb = self._scratch.cast(0, ra), self._scratch.cast(1, rb)
            self.size += ra.size
            if not self._add_clean(ra, rb, ca, cb, exact, wide):
                self._add_masked(ra, rb, ca, cb, exact, wide)

    def _add_clean(self, ra, rb, ca, cb, exact: bool, wide: bool) -> bool:
        """The common case, no NaN/Inf and no scaling: False (nothing added) when the block is not."""
        if wide:  # float64 may need scaling, which only the masked path applies
            bounds = (float(ca.min()), float(ca.max()), float(cb.min()), float(cb.max()))  # NaN propagates
            if not all(math.isfinite(bound) for bound in bounds):
                return False
            self.peak = max(self.peak, -bounds[0], bounds[1], -bounds[2], bounds[3])
            self._rescale(multiplier(self.peak))
            if self.mult != 1.0:
                return False
        d = np.subtract(cb, ca, out=self._scratch.take(2, ca.size))
        absd = np.abs(d, out=d)
        sums = (float(np.dot(absd, absd)), float(np.dot(ca, ca)), float(np.dot(cb, cb)), float(np.dot(ca, cb)))
        if not math.isfinite(sum(sums)):  # a NaN or Inf in a or b reaches the sums of squares
            return False
        if exact:
            self.changed += int(np.count_nonzero(ra != rb))
        elif self.atol:
            self.changed += int(np.count_nonzero(absd > self.atol))
        else:  # for finite values, b - a == 0 exactly when b == a (gradual underflow)
            self.changed += int(np.count_nonzero(absd))
        self._add_sums(sums, absd, ca.size)
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
        sums = (float(np.dot(absd, absd)), float(np.dot(ca, ca)), float(np.dot(cb, cb)), float(np.dot(ca, cb)))
        self._add_sums(sums, absd, kept)

    def _add_sums(self, sums: tuple[float, float, float, float], absd: np.ndarray, count: int) -> None:
        """Add (|d|², |a|², |b|², a·b) and |b - a| of `count` finite positions."""
        self.sum_d2 += sums[0]
        self.sum_a2 += sums[1]
        self.sum_b2 += sums[2]
        self.sum_ab += sums[3]
        self.sum_abs += float(absd.sum())
        self.peak_abs = max(self.peak_abs, float(absd.max()))
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


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
