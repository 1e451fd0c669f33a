"""Does an export hold exactly the weights of a training checkpoint? One verdict from a diff of the two."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ckptlib.compare.types import CheckpointDiff
from ckptlib.formats import Checkpoint

# Formats that hold a model's weights for serving, not a training state (no optimizer, no counters).
EXPORT_FORMATS = frozenset({"saved-model", "keras", "keras-weights-h5", "keras-legacy-h5", "frozen-graph"})


@dataclass(frozen=True)
class Parity:
    """How many of the export's model weights are bit-identical to the checkpoint's."""

    export: str  # "a" or "b": the side that is the export
    checkpoint: str  # the other side's path
    identical: int
    differ: tuple[str, ...]  # display names of paired weights whose values differ (or whose shape/dtype does)
    missing: tuple[str, ...]  # the export's weights the checkpoint does not hold
    by_content: tuple[tuple[str, str], ...] = ()  # (export name, checkpoint name) paired by identical bytes

    @property
    def total(self) -> int:
        return self.identical + len(self.differ) + len(self.missing)

    @property
    def holds(self) -> bool:
        return self.total > 0 and self.identical == self.total

    @property
    def sentence(self) -> str:
        path = self.checkpoint.rstrip("/")
        if path.endswith("/variables/variables"):  # a SavedModel's bundle: name the export folder
            path = path[: -len("/variables/variables")]
        name = path.rsplit("/", 1)[-1]
        counts = f"{self.identical}/{self.total} identical"
        if self.by_content:
            counts += f" ({len(self.by_content)} matched by content: the export does not name them)"
        if self.holds:
            return f"export holds the weights of {name}: {counts}"
        parts = [counts]
        if self.differ:
            parts.append(f"{len(self.differ)} differ ({', '.join(self.differ[:3])}{' …' if len(self.differ) > 3 else ''})")
        if self.missing:
            parts.append(f"{len(self.missing)} not in {name}")
        return f"export does not hold the weights of {name}: " + ", ".join(parts)


SERVING_FORMATS = frozenset({"saved-model", "frozen-graph"})  # made to serve, never to resume training


def export_side(format_a: str, format_b: str) -> str | None:
    """'a' or 'b': the side that is an export of the other's weights, else None.

    One side an export format and the other a training checkpoint: that side. Both exports: the one made for
    serving (a SavedModel against the .keras it came from), else None: two Keras files of one run
    (ModelCheckpoint's epochs) or two exports are compared as they are, with no verdict.

    >>> export_side("saved-model", "tf-bundle-v2"), export_side("keras", "keras"), export_side("keras", "saved-model")
    ('a', None, 'b')
    """
    a, b = format_a in EXPORT_FORMATS, format_b in EXPORT_FORMATS
    if a and b:
        a, b = format_a in SERVING_FORMATS, format_b in SERVING_FORMATS
        if a == b:
            return None
    return "a" if a else "b" if b else None


def parity(diff: CheckpointDiff, side: str, export: Checkpoint | None = None,
           other: Checkpoint | None = None) -> Parity:
    """The verdict for the export on `side` ('a' or 'b') against the other side of `diff`.

    Given both checkpoints, export weights that no name pairs (a TF2 function frozen to Consts named
    `unknown_0`, …) are matched to unpaired weights of the same dtype and shape by their bytes.
    """
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', not {side!r}")
    missing_status = "removed" if side == "a" else "added"
    identical, differ, missing = 0, [], []
    for row in diff.variables:
        if row.kind != "model" or row.status == ("added" if side == "a" else "removed"):
            continue  # only the export's own model weights count; the checkpoint's optimizer state does not
        name = row.display_name or row.name
        if row.status == "unchanged":
            identical += 1
        elif row.status == missing_status:
            missing.append(name)
        else:
            differ.append(name)
    verdict = Parity(side, diff.b if side == "a" else diff.a, identical, tuple(differ), tuple(missing))
    if export is None or other is None or not missing:
        return verdict
    return _match_by_content(diff, verdict, export, other)


def _match_by_content(diff: CheckpointDiff, verdict: Parity, export: Checkpoint, other: Checkpoint) -> Parity:
    unpaired = "added" if verdict.export == "a" else "removed"
    candidates = [r for r in diff.variables if r.kind == "model" and r.status == unpaired]
    rows = {(r.display_name or r.name): r for r in diff.variables}
    matched, still_missing = [], []
    for name in verdict.missing:
        row = rows[name]
        mine = row.name_a if verdict.export == "a" else row.name
        info = export.info(mine)
        values = None
        for candidate in candidates:
            theirs = candidate.name if verdict.export == "a" else candidate.name_a
            shape = candidate.shape_b if verdict.export == "a" else candidate.shape_a
            dtype = candidate.dtype_b if verdict.export == "a" else candidate.dtype_a
            if shape != info.shape or dtype != info.dtype:
                continue
            values = export.read(mine) if values is None else values
            if np.array_equal(values, other.read(theirs)):
                matched.append((name, candidate.display_name or theirs))
                candidates.remove(candidate)
                break
        else:
            still_missing.append(name)
    return replace(verdict, identical=verdict.identical + len(matched), missing=tuple(still_missing),
                   by_content=tuple(matched))
