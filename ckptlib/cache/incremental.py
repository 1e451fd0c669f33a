"""Bring a run's last trends up to date: read only the checkpoints that arrived (or lost their predecessor).

A live run gains a checkpoint every few minutes and `max_to_keep` deletes the oldest. Recomputing the
whole run each time reads every tensor of every checkpoint again. Per-checkpoint statistics do not depend
on the other checkpoints, `rel_change_prev` depends on the previous one and `rel_change_first` on the first,
so when the first checkpoint is unchanged only the new checkpoints and those whose predecessor changed need
reading — each with its (new) predecessor and the first beside it. The merged result is what a full run of
run_trends gives (same points, same arithmetic); whenever that cannot be guaranteed (the first checkpoint
changed, a rewritten checkpoint, a variable missing somewhere, the set of variables changed) this returns
None and the caller computes from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ckptlib.compare.types import RunTrends, TrendPoint, VariableTrend
from ckptlib.runs.types import RunHistory, SkippedCheckpoint

Identities = dict[str, list]  # prefix -> its checkpoint_parts (identity of its files)


def extend(old: RunTrends, old_ids: Identities, history: RunHistory, ids: Identities,
           compute: Callable[[RunHistory], RunTrends]) -> RunTrends | None:
    """`old` (computed for the checkpoints `old_ids`) extended to `history`; None when a full run is needed.

    `compute(sub_history)` runs run_trends with the caller's options on a history of a few checkpoints.
    """
    complete = [e for e in history.checkpoints if e.complete]
    if not complete or not old.checkpoints or any(s.error for s in old.skipped):
        return None
    if any(trend.skipped for trend in old.variables):
        return None  # a variable absent somewhere: its "previous point" is not simply the previous checkpoint
    first = complete[0].prefix
    if old.checkpoints[0].prefix != first or old_ids.get(first) != ids.get(first):
        return None
    old_order = [e.prefix for e in old.checkpoints]
    for prefix in old_order:
        if prefix in ids and old_ids.get(prefix) != ids[prefix]:
            return None  # rewritten in place
    order = [e.prefix for e in complete]
    previous_old = dict(zip(old_order[1:], old_order[:-1]))
    redo = [p for i, p in enumerate(order) if i and (p not in previous_old or previous_old[p] != order[i - 1])]
    if not redo:
        return None if order != old_order else _rebuilt(old, history, complete, {})
    wanted = {first} | set(redo) | {order[order.index(p) - 1] for p in redo}
    sub = replace(history, checkpoints=tuple(e for e in history.checkpoints if e.prefix in wanted))
    fresh = compute(sub)
    if any(s.error for s in fresh.skipped) or any(t.skipped for t in fresh.variables):
        return None
    if [t.name for t in fresh.variables] != [t.name for t in old.variables]:
        return None
    return _rebuilt(old, history, complete, {t.name: t for t in fresh.variables}, set(redo))


def _rebuilt(old: RunTrends, history: RunHistory, complete: list, fresh: dict[str, VariableTrend],
             redo: set[str] = frozenset()) -> RunTrends:
    order = [e.prefix for e in complete]
    variables = []
    for trend in old.variables:
        points: dict[str, TrendPoint] = {p.prefix: p for p in trend.points}
        newer = fresh.get(trend.name)
        if newer is not None:
            points.update({p.prefix: p for p in newer.points if p.prefix in redo})
        merged = tuple(points[prefix] for prefix in order)
        last = newer if newer is not None and order[-1] in redo else trend
        variables.append(replace(trend, kind=last.kind, dtype=last.dtype, shape=last.shape, points=merged,
                                 display_name=last.display_name, key=last.key))
    # Incomplete checkpoints are listed as the new history has them.
    skipped = tuple(SkippedCheckpoint(e.prefix, e.step, e.problem or "The checkpoint is incomplete.")
                    for e in history.checkpoints if not e.complete)
    return RunTrends(history.path, tuple(complete), tuple(variables), skipped)
