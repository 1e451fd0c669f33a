"""Compare two checkpoints variable by variable, streaming each pair of tensors chunk by chunk.

NaN/Inf semantics (the same as TensorStats, which leaves NaN/Inf out of min..l2):
- equality decides `status`, `num_changed` and `frac_changed` at every position: NaN vs NaN and an
  Inf vs the same Inf are unchanged; NaN vs a number, or Inf vs anything else, is changed;
- the norms (l2_diff, rel_change, max/mean_abs_diff, cosine) use only the positions where both
  values are finite; the other positions are counted in `nonfinite`. With no such position the
  norms are None. They never come out NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ckptlib.compare.diffstats import ArrayComparison, compare_chunks
from ckptlib.compare.mapping import NameMapping, suggest_pairs, suggest_rules
from ckptlib.compare.pairing import pair_key, paired
from ckptlib.compare.types import CheckpointDiff, VariableDiff
from ckptlib.formats import Checkpoint
from ckptlib.formats.types import VariableInfo
from ckptlib.tensors.stats import as_float_components

Progress = Callable[[int, int, str], None]


def compare_arrays(a: np.ndarray, b: np.ndarray, atol: float = 0.0) -> ArrayComparison:
    """Statistics of b - a in float64, block by block; strings and bools by equality only.

    >>> compare_arrays(np.array([1.0, 2.0]), np.array([1.0, 4.0])).l2_diff
    2.0
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    fa, fb = as_float_components(a), as_float_components(b)
    if fa is None or fb is None or a.dtype == np.bool_ or b.dtype == np.bool_:
        return compare_chunks([a.reshape(-1)], [b.reshape(-1)], equality=True)
    if fa.size != fb.size:
        raise ValueError("a complex tensor is compared with a real one")
    return compare_chunks([fa], [fb], atol)


def comparable_dtypes(dtype_a: str, dtype_b: str) -> bool:
    """Values of two different dtypes can be compared as numbers (not strings, bools, real vs complex)."""
    if "string" in (dtype_a, dtype_b) or "bool" in (dtype_a, dtype_b):
        return False
    return dtype_a.startswith("complex") == dtype_b.startswith("complex")


def same_stored_bytes(a: Checkpoint, info_a: VariableInfo, b: Checkpoint, info_b: VariableInfo) -> bool:
    """Both files store a checksum of the tensor, and dtype, shape, size and checksum are all equal.

    A crc32c match between different tensors of the same size happens once in 2**32 pairs: --verify
    (`verify=True`) reads the bytes instead of trusting it.
    """
    if (info_a.dtype, info_a.shape, info_a.nbytes) != (info_b.dtype, info_b.shape, info_b.nbytes):
        return False
    crc_a = a.checksum(info_a.name)
    return crc_a is not None and crc_a == b.checksum(info_b.name)


def _removed_display(info_a: VariableInfo, target: str) -> str:
    """A removed row's display name: A's own, or what the mapping renamed it to."""
    return info_a.display_name if target == pair_key(info_a) else target


def _row(a: Checkpoint, b: Checkpoint, info_a: VariableInfo | None, info_b: VariableInfo | None, name: str,
         atol: float, verify: bool = False) -> VariableDiff:
    known = info_b or info_a
    base = VariableDiff(
        name=info_b.name if info_b else name,
        name_a=info_a.name if info_a else None,
        display_name=info_b.display_name if info_b else _removed_display(info_a, name),
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
    if not verify and same_stored_bytes(a, info_a, b, info_b):
        # Identical bytes: b - a is 0 wherever it is defined. rel_change and cosine divide by ||a||, and
        # nonfinite counts NaN/Inf: only the bytes tell those, so they stay null (--verify computes them).
        numbers = info_a.num_elements > 0 and not ({info_a.dtype, info_b.dtype} & {"string", "bool"})
        zero = 0.0 if numbers else None
        return replace(base, status="unchanged", l2_diff=zero, max_abs_diff=zero, mean_abs_diff=zero,
                       frac_changed=0.0 if info_a.num_elements else None, num_changed=0, by="checksum")
    # A and B stream in lockstep, chunk by chunk: memory does not grow with the tensor's size. A damaged
    # tensor raises (CorruptCheckpoint after its last chunk) before any statistic of it is kept.
    equality = bool({info_a.dtype, info_b.dtype} & {"string", "bool"})
    result = compare_chunks(a.iter_chunks(info_a.name), b.iter_chunks(info_b.name), atol, equality)
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
                     progress: Progress | None = None, verify: bool = False) -> CheckpointDiff:
    """Every variable of A and B compared, rows sorted by (B's) name. Raises CkptError on a bad file.

    Tensors whose stored checksums (and dtype, shape, size) match are `unchanged` without being read
    (`by="checksum"`); `verify=True` reads and compares every byte instead.

    Example: `diff_checkpoints(open_checkpoint("run/model.ckpt-1"), open_checkpoint("run/model.ckpt-2"))
    .summary["changed"]`; pass `NameMapping(rules=(("^resnet/", "model/backbone/"),))` for renamed scopes.
    """
    if not atol >= 0:  # also rejects NaN
        raise ValueError(f"atol must be >= 0, not {atol}")
    mapping = mapping or NameMapping()
    infos_a = paired(a)
    targets = mapping.apply_all(infos_a)
    by_target = {target: infos_a[raw] for raw, target in targets.items()}
    infos_b = paired(b)
    names = sorted(set(by_target) | set(infos_b))
    rows = []
    for done, name in enumerate(names):
        if progress is not None:
            progress(done, len(names), name)
        rows.append(_row(a, b, by_target.get(name), infos_b.get(name), name, atol, verify))
    if progress is not None:
        progress(len(names), len(names), "")
    removed = [replace(by_target[key], name=key) for key, r in zip(names, rows) if r.status == "removed"]
    added = [replace(infos_b[key], name=key) for key, r in zip(names, rows) if r.status == "added"]
    pairs = suggest_pairs(removed, added)
    return CheckpointDiff(a=a.prefix, b=b.prefix, atol=float(atol), variables=tuple(rows), suggestions=pairs,
                          suggested_rules=suggest_rules(pairs, by_target, infos_b))
