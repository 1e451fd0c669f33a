"""Which checkpoints of a run eval-history evaluates, with which .meta graph, and which it skips and why."""

from __future__ import annotations

from dataclasses import dataclass

from ckptlib.runs.types import CheckpointEntry, RunHistory, SkippedCheckpoint


@dataclass(frozen=True)
class PlannedCheckpoint:
    """One checkpoint of the run, in history order: the graph to freeze it with, or why it cannot be."""

    entry: CheckpointEntry
    meta: str | None  # its own .meta, else the nearest one of the run (same run, same graph)
    skipped: SkippedCheckpoint | None = None


def plan_history(history: RunHistory) -> list[PlannedCheckpoint]:
    """Every checkpoint of `history`: incomplete ones, and those of a run without any .meta, are skipped."""
    metas = [(i, e.prefix + ".meta") for i, e in enumerate(history.checkpoints) if e.has_meta]
    planned = []
    for position, entry in enumerate(history.checkpoints):
        if not entry.complete:
            reason = entry.problem or "incomplete checkpoint"
            planned.append(PlannedCheckpoint(entry, None, SkippedCheckpoint(entry.prefix, entry.step, reason)))
            continue
        meta = entry.prefix + ".meta" if entry.has_meta else _nearest(metas, position)
        skipped = None if meta else SkippedCheckpoint(entry.prefix, entry.step, "no .meta graph in the run to freeze with")
        planned.append(PlannedCheckpoint(entry, meta, skipped))
    return planned


def _nearest(metas: list[tuple[int, str]], position: int) -> str | None:
    """The .meta of the closest earlier checkpoint in step order, else of the first later one."""
    before = [m for i, m in metas if i < position]
    after = [m for i, m in metas if i > position]
    return before[-1] if before else after[0] if after else None
