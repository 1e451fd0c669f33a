"""What a new checkpoint says next to the one reported before it: nan_inf, norm jumps and collapses, change."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ckptlib import errors
from ckptlib.compare.diff import diff_checkpoints
from ckptlib.compare.health import checkpoint_health
from ckptlib.compare.pairing import pair_key
from ckptlib.compare.types import CheckpointDiff, HealthFlag
from ckptlib.formats import Checkpoint
from ckptlib.formats.types import VariableInfo
from ckptlib.live.types import Change, WatchEvent
from ckptlib.tensors.stats import variable_stats

TOP = 5  # variables listed in a change, largest rel_change first
_FLOATING = ("float", "bfloat", "complex")  # the dtypes `health` examines (model weights only, by default)


@dataclass(frozen=True)
class _Norm:
    """One weight's statistics in a reported checkpoint, kept so that the next one needs no re-read."""

    signature: tuple  # (dtype, shape, stored bytes, stored crc32c): equal signatures mean equal bytes
    l2: float | None
    nan: int
    inf: int


@dataclass(frozen=True)
class Reported:
    """The last checkpoint reported: its reader (for the next diff) and its weights' norms."""

    prefix: str
    step: int | None
    ckpt: Checkpoint
    norms: Mapping[str, _Norm]


def examined(info: VariableInfo) -> bool:
    """Floating-point model weights: what `health` checks unless asked for optimizer slots too."""
    return info.kind == "model" and info.dtype.startswith(_FLOATING)


def measure(ckpt: Checkpoint, step: int | None, time: float | None, previous: Reported | None,
            jump_ratio: float, collapse_ratio: float) -> tuple[WatchEvent, Reported]:
    """The event of `ckpt`, and what to keep of it for the next one. CkptError/OSError when it cannot be read.

    Only the comparison may fail quietly (the previous checkpoint deleted by max_to_keep meanwhile): the
    event then carries a Change with no numbers and a `problem`.
    """
    norms = _norms(ckpt, previous)
    flags: list[HealthFlag] = []
    if any(n.nan or n.inf for n in norms.values()):  # health's own flags and wording; a second read, rarely
        flags += [replace(f, step=step) for f in checkpoint_health(ckpt)]
    if previous is not None:
        flags += _norm_flags(ckpt.prefix, step, norms, previous, jump_ratio, collapse_ratio)
    event = WatchEvent(ckpt.prefix, step, time, tuple(flags), _change(previous, ckpt))
    return event, Reported(ckpt.prefix, step, ckpt, norms)


def _norms(ckpt: Checkpoint, previous: Reported | None) -> dict[str, _Norm]:
    found = {}
    for info in ckpt.variables:
        if not examined(info):
            continue
        key = pair_key(info)  # the real name where the file has one: a Keras model's positional keys shift
        signature = (info.dtype, info.shape, info.nbytes, ckpt.checksum(info.name))
        kept = previous.norms.get(key) if previous is not None else None
        if kept is not None and signature[3] is not None and kept.signature == signature:
            found[key] = kept  # the same stored bytes as last time: nothing to read
            continue
        stats = variable_stats(ckpt, info.name)  # streamed chunk by chunk
        found[key] = _Norm(signature, stats.l2, stats.nan, stats.inf)
    return found


def _where(prefix: str, step: int | None) -> str:
    return f"step {step}" if step is not None else os.path.basename(prefix)


def _norm_flags(prefix: str, step: int | None, norms: Mapping[str, _Norm], previous: Reported,
                jump_ratio: float, collapse_ratio: float) -> list[HealthFlag]:
    """health's norm_jump / norm_collapse rule, applied to two consecutive reported checkpoints."""
    flags = []
    for name, now in sorted(norms.items()):
        before = previous.norms.get(name)
        if before is None or not before.l2 or now.l2 is None:  # from 0 (zero-initialised biases) no ratio exists
            continue
        ratio = now.l2 / before.l2
        if ratio > jump_ratio:
            flag = "norm_jump"
        elif ratio < 1 / collapse_ratio:
            flag = "norm_collapse"
        else:
            continue
        detail = (f"L2 norm went from {before.l2:.6g} at {_where(previous.prefix, previous.step)} to {now.l2:.6g} "
                  f"at {_where(prefix, step)} (x{ratio:.3g}).")
        flags.append(HealthFlag(prefix, step, name, flag, detail))
    return flags


def _change(previous: Reported | None, ckpt: Checkpoint) -> Change | None:
    if previous is None:
        return None
    if previous.prefix == ckpt.prefix:  # our reader of it holds the old index; the old data is gone
        return Change(previous.prefix, None, (), "The previous checkpoint was this prefix, overwritten since: its "
                                                 "old tensors are gone.")
    try:
        diff = diff_checkpoints(previous.ckpt, ckpt)  # equal stored crc32c: unchanged, bytes not read
    except (errors.CkptError, OSError) as exc:  # e.g. max_to_keep deleted the previous one meanwhile
        return Change(previous.prefix, None, (), f"Cannot compare with {os.path.basename(previous.prefix)}: {exc}")
    moved = sorted(_rel_changes(diff, previous), key=lambda pair: (-pair[1], pair[0]))
    return Change(previous.prefix, moved[0][1] if moved else None, tuple(moved[:TOP]))


def _rel_changes(diff: CheckpointDiff, previous: Reported) -> list[tuple[str, float]]:
    """(name, rel_change) of the model weights; counters and optimizer slots would drown them out."""
    pairs = []
    for row in diff.variables:
        if row.kind != "model":
            continue
        rel = row.rel_change
        if rel is None and row.by == "checksum":
            # diff leaves rel_change null for a crc32c match (||a|| unread); we know ||a|| from last time.
            kept = previous.norms.get(row.display_name or "") or previous.norms.get(row.name_a or row.name)
            rel = 0.0 if kept is not None and kept.l2 else None
        if rel is not None:
            pairs.append((row.display_name or row.name, float(rel)))
    return pairs
