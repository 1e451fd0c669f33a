"""Compare two checkpoints variable by variable, holding one pair of tensors in memory at a time.

NaN/Inf semantics (the same as TensorStats, which leaves NaN/Inf out of min..l2):
- equality decides `status`, `num_changed` and `frac_changed` at every position: NaN vs NaN and an
  Inf vs the same Inf are unchanged; NaN vs a number, or Inf vs anything else, is changed;
- the norms (l2_diff, rel_change, max/mean_abs_diff, cosine) use only the positions where both
  values are finite; the other positions are counted in `nonfinite`. With no such position the
  norms are None. They never come out NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ckptlib.mapping import NameMapping, suggest_pairs, suggest_rules
from ckptlib.reader import Checkpoint
from ckptlib.stats import CHUNK, as_float_components
from ckptlib.types import CheckpointDiff, VariableDiff, VariableInfo

Progress = Callable[[int, int, str], None]
# Sums of squares overflow float64 past ~2**511 and underflow below ~2**-537: outside this band
# the values are scaled by a power of two first, which is exact and cancels out of every ratio.
_SAFE_PEAK = (2.0**-200, 2.0**200)


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


def compare_arrays(a: np.ndarray, b: np.ndarray, atol: float = 0.0) -> ArrayComparison:
    """Statistics of b - a in float64, chunk by chunk; strings and bools by equality only.

    >>> compare_arrays(np.array([1.0, 2.0]), np.array([1.0, 4.0])).l2_diff
    2.0
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    fa, fb = as_float_components(a), as_float_components(b)
    if fa is None or fb is None or a.dtype == np.bool_ or b.dtype == np.bool_:
        return _compare_equality(a.reshape(-1), b.reshape(-1))
    if fa.size != fb.size:
        raise ValueError("a complex tensor is compared with a real one")
    return _compare_numbers(fa, fb, atol)


def _compare_equality(fa: np.ndarray, fb: np.ndarray) -> ArrayComparison:
    changed = 0
    for start in range(0, fa.size, CHUNK):
        changed += int(np.count_nonzero(fa[start : start + CHUNK] != fb[start : start + CHUNK]))
    frac = changed / fa.size if fa.size else None
    return ArrayComparison(None, None, None, None, None, frac, changed, None)


def _scale(*flats: np.ndarray) -> float:
    """1.0, or the power of two that brings the largest finite |value| into [0.5, 1)."""
    if not any(f.dtype == np.float64 for f in flats):
        return 1.0  # narrower types and integers cannot overflow a float64 sum of squares
    peak = 0.0
    for flat in flats:
        for start in range(0, flat.size, CHUNK):
            chunk = np.abs(flat[start : start + CHUNK])
            chunk = chunk[np.isfinite(chunk)]
            if chunk.size:
                peak = max(peak, float(chunk.max()))
    if peak == 0.0 or _SAFE_PEAK[0] <= peak <= _SAFE_PEAK[1]:
        return 1.0
    return math.ldexp(1.0, -math.frexp(peak)[1])


def _compare_numbers(fa: np.ndarray, fb: np.ndarray, atol: float) -> ArrayComparison:
    # float64 holds integers exactly only up to 2**53: with atol 0, compare integers in their own type.
    exact_ints = atol == 0 and fa.dtype.kind in "iu" and fb.dtype.kind in "iu"
    scale = _scale(fa, fb)
    changed = count = nonfinite = 0
    sum_d2 = sum_a2 = sum_b2 = sum_ab = sum_abs = peak_abs = 0.0
    for start in range(0, fa.size, CHUNK):
        ra, rb = fa[start : start + CHUNK], fb[start : start + CHUNK]
        ca, cb = ra.astype(np.float64), rb.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            if exact_ints:
                differs = ra != rb
            else:
                same = (np.abs(cb - ca) <= atol) | (ca == cb) | (np.isnan(ca) & np.isnan(cb))
                differs = ~same
        changed += int(np.count_nonzero(differs))
        finite = np.isfinite(ca) & np.isfinite(cb)
        if not finite.all():
            nonfinite += int(finite.size - np.count_nonzero(finite))
            ca, cb = ca[finite], cb[finite]
        if scale != 1.0:
            ca, cb = ca * scale, cb * scale
        delta = cb - ca
        count += ca.size
        sum_d2 += float(np.dot(delta, delta))
        sum_a2 += float(np.dot(ca, ca))
        sum_b2 += float(np.dot(cb, cb))
        sum_ab += float(np.dot(ca, cb))
        if delta.size:
            absolute = np.abs(delta)
            sum_abs += float(absolute.sum())
            peak_abs = max(peak_abs, float(absolute.max()))
    frac = changed / fa.size if fa.size else None
    if count == 0:
        return ArrayComparison(None, None, None, None, None, frac, changed, nonfinite)
    norm_d, norm_a, norm_b = math.sqrt(sum_d2), math.sqrt(sum_a2), math.sqrt(sum_b2)
    cosine = None
    if norm_a > 0 and norm_b > 0:
        cosine = min(1.0, max(-1.0, sum_ab / (norm_a * norm_b)))  # rounding may step just past +-1
    return ArrayComparison(
        l2_diff=_finite(norm_d / scale),
        rel_change=_finite(norm_d / norm_a) if norm_a > 0 else None,
        max_abs_diff=_finite(peak_abs / scale),
        mean_abs_diff=_finite(sum_abs / count / scale),
        cosine=cosine,
        frac_changed=frac,
        num_changed=changed,
        nonfinite=nonfinite,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def comparable_dtypes(dtype_a: str, dtype_b: str) -> bool:
    """Values of two different dtypes can be compared as numbers (not strings, bools, real vs complex)."""
    if "string" in (dtype_a, dtype_b) or "bool" in (dtype_a, dtype_b):
        return False
    return dtype_a.startswith("complex") == dtype_b.startswith("complex")


def _row(a: Checkpoint, b: Checkpoint, info_a: VariableInfo | None, info_b: VariableInfo | None, name: str,
         atol: float) -> VariableDiff:
    known = info_b or info_a
    base = VariableDiff(
        name=name,
        name_a=info_a.name if info_a else None,
        status="",
        kind=known.kind,
        shape_a=info_a.shape if info_a else None,
        shape_b=info_b.shape if info_b else None,
        dtype_a=info_a.dtype if info_a else None,
        dtype_b=info_b.dtype if info_b else None,
    )
    if info_b is None:
        return replace(base, status="removed")
    if info_a is None:
        return replace(base, status="added")
    # A row whose shape and dtype both changed is shape_changed; dtype_a/dtype_b still show the rest.
    if info_a.shape != info_b.shape:
        return replace(base, status="shape_changed")
    status = "dtype_changed" if info_a.dtype != info_b.dtype else None
    if status and not comparable_dtypes(info_a.dtype, info_b.dtype):
        return replace(base, status=status)
    result = compare_arrays(a.read(info_a.name), b.read(info_b.name), atol)
    return replace(
        base,
        status=status or ("changed" if result.num_changed else "unchanged"),
        l2_diff=result.l2_diff,
        rel_change=result.rel_change,
        max_abs_diff=result.max_abs_diff,
        mean_abs_diff=result.mean_abs_diff,
        cosine=result.cosine,
        frac_changed=result.frac_changed,
        num_changed=result.num_changed,
        nonfinite=result.nonfinite,
    )


def diff_checkpoints(a: Checkpoint, b: Checkpoint, mapping: NameMapping | None = None, atol: float = 0.0,
                     progress: Progress | None = None) -> CheckpointDiff:
    """Every variable of A and B compared, rows sorted by (B's) name. Raises CkptError on a bad file.

    Example: `diff_checkpoints(open_checkpoint("run/model.ckpt-1"), open_checkpoint("run/model.ckpt-2"))
    .summary["changed"]`; pass `NameMapping(rules=(("^resnet/", "model/backbone/"),))` for renamed scopes.
    """
    if not atol >= 0:  # also rejects NaN
        raise ValueError(f"atol must be >= 0, not {atol}")
    mapping = mapping or NameMapping()
    infos_a = {info.name: info for info in a.variables}
    targets = mapping.apply_all(infos_a)
    by_target = {target: infos_a[raw] for raw, target in targets.items()}
    infos_b = {info.name: info for info in b.variables}
    names = sorted(set(by_target) | set(infos_b))
    rows = []
    for done, name in enumerate(names):
        if progress is not None:
            progress(done, len(names), name)
        rows.append(_row(a, b, by_target.get(name), infos_b.get(name), name, atol))
    if progress is not None:
        progress(len(names), len(names), "")
    removed = [replace(by_target[r.name], name=r.name) for r in rows if r.status == "removed"]
    added = [infos_b[r.name] for r in rows if r.status == "added"]
    pairs = suggest_pairs(removed, added)
    return CheckpointDiff(a=a.prefix, b=b.prefix, atol=float(atol), variables=tuple(rows), suggestions=pairs,
                          suggested_rules=suggest_rules(pairs))
