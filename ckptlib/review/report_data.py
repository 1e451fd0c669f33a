"""What a review report shows, gathered once (history, notes, health, top changes, accuracy) for either renderer."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from ckptlib import errors
from ckptlib.compare.diff import diff_checkpoints
from ckptlib.compare.health import run_health
from ckptlib.compare.types import RunHealth, VariableDiff
from ckptlib.evaluate.types import EvalHistory
from ckptlib.review.types import Note
from ckptlib.runs.resolve import open_checkpoint
from ckptlib.runs.types import RunHistory

MAX_CHANGES = 15
CHANGED_SINCE = "made on an earlier version of this checkpoint"
DELETED = "checkpoint deleted"


@dataclass(frozen=True)
class NotesSection:
    """The run's notes (newest first) and each checkpoint's standing verdict, or why they are unavailable."""

    notes: tuple[Note, ...] = ()
    verdicts: dict[str, Note] = field(default_factory=dict)  # prefix -> the note carrying its verdict
    unavailable: str | None = None  # a sentence when there is no store or it cannot be read

    def count(self, prefix: str) -> int:
        """Standing notes that concern this checkpoint (alone, one of its variables, or a diff with it)."""
        return sum(1 for n in self.notes if n.current and prefix in (n.checkpoint, n.target.checkpoint_b))


@dataclass(frozen=True)
class ChangesSection:
    """The largest relative changes from checkpoint a to b, or a sentence saying why there are none."""

    a: str | None = None
    b: str | None = None
    top: tuple[VariableDiff, ...] = ()
    summary: dict[str, int] = field(default_factory=dict)  # diff status -> rows
    left_out: int = 0  # changed optimizer slots, counters and metadata not ranked with the weights
    absent: str | None = None


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows; rendering reads only this."""

    history: RunHistory
    generated: float  # unix seconds
    notes: NotesSection
    health: RunHealth
    changes: ChangesSection
    accuracy: EvalHistory | None


def note_state(note: Note) -> str | None:
    """Why a note may no longer describe what is on disk, in the words the report prints."""
    if note.checkpoint_missing:
        return DELETED
    if note.checkpoint_changed:
        return CHANGED_SINCE
    return None


def gather_notes(store, run: str) -> NotesSection:
    """Notes and verdicts of `run`; a missing or unreachable store becomes a sentence, not a failure."""
    if store is None:
        return NotesSection(unavailable="Notes unavailable: no review database was given.")
    try:
        return NotesSection(notes=store.notes(run=run), verdicts=store.verdicts(run))
    except errors.ReviewUnavailable as exc:
        # The report is still worth having without notes (e.g. a CI job with no database).
        return NotesSection(unavailable=f"Notes unavailable: {exc}")


def gather_health(history: RunHistory) -> RunHealth:
    return run_health(history)


def pick_pair(history: RunHistory, a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """The two prefixes to compare: those given, the missing side filled from the run's complete checkpoints."""
    complete = [e.prefix for e in history.checkpoints if e.complete]
    if a is None and b is None:
        return (complete[-2], complete[-1]) if len(complete) >= 2 else (None, None)
    if a is None:
        return _neighbour(complete, b, before=True), b
    if b is None:
        return a, _neighbour(complete, a, before=False)
    return a, b


def _neighbour(complete: list[str], given: str, before: bool) -> str | None:
    """The closest complete checkpoint before (or the latest after) `given`, else the latest other one."""
    if given in complete:
        i = complete.index(given)
        side = complete[:i] if before else complete[i + 1:]
        if side:
            return side[-1]
    others = [p for p in complete if p != given]
    return others[-1] if others else None


def gather_changes(history: RunHistory, a: str | None, b: str | None) -> ChangesSection:
    """Top changes by rel_change between prefixes a and b (already resolved; None when there is no pair)."""
    if a is None or b is None:
        count = sum(1 for e in history.checkpoints if e.complete)
        if count < 2:
            return ChangesSection(a=a, b=b, absent=f"The run has {count} complete checkpoint{'s' * (count != 1)}: "
                                                   "at least two are needed to show what changed.")
        return ChangesSection(a=a, b=b, absent="No other complete checkpoint to compare with.")
    try:
        diff = diff_checkpoints(open_checkpoint(a), open_checkpoint(b))
    except (errors.CorruptCheckpoint, errors.IncompleteCheckpoint) as exc:
        # A damaged tensor is itself a finding: say so in the report rather than refuse to write it.
        return ChangesSection(a=a, b=b, absent=f"Could not compare the checkpoints: {exc}")
    moved = [r for r in diff.variables if r.rel_change is not None and r.status != "unchanged"]
    # Model weights are what a reviewer asks about; optimizer slots (Adam's v grows from ~0) and counters
    # would fill the list. They stand in only for a checkpoint whose variables have no model kind at all.
    weights = [r for r in moved if r.kind == "model"]
    ranked = sorted(weights or moved, key=lambda r: (-r.rel_change, r.name))
    left_out = len(moved) - len(weights) if weights else 0
    return ChangesSection(a=a, b=b, top=tuple(ranked[:MAX_CHANGES]), summary=diff.summary, left_out=left_out)


# --- formatting shared by both renderers ------------------------------------------------------------
def utc(seconds: float | None, with_seconds: bool = True) -> str:
    if seconds is None:
        return "—"
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M") + " UTC"


def number(value: float | None) -> str:
    """Six significant digits: the precision every number of the report is printed with."""
    return "—" if value is None else f"{value:.6g}"


def size(num_bytes: int) -> str:
    if num_bytes < 1024:
        return f"{num_bytes} B"
    value = num_bytes / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def step_label(step: int | None, prefix: str | None) -> str:
    if step is not None:
        return f"step {step}"
    return prefix.rsplit("/", 1)[-1] if prefix else "whole run"


def summary_sentence(summary: dict[str, int]) -> str:
    """'5 changed, 2 unchanged, 1 added' (statuses with no rows left out)."""
    return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in summary.items() if n) or "no variables"


def left_out_sentence(section: ChangesSection) -> str:
    if not section.left_out:
        return ""
    n = section.left_out
    return (f"{n} other changed variable{'s' * (n != 1)} (optimizer slots, counters) {'are' if n != 1 else 'is'} "
            "not ranked with the weights: `python -m ckptlib diff A B` lists every row.")


def verdict_label(note: Note | None) -> str:
    if note is None:
        return ""
    state = note_state(note)
    return f"{note.verdict} ({state})" if state else str(note.verdict)
