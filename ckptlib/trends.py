"""Variables across a run's checkpoints: statistics per step and relative change between steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ckptlib import errors
from ckptlib.diff import Progress, comparable_dtypes, compare_arrays
from ckptlib.reader import Checkpoint
from ckptlib.stats import tensor_stats
from ckptlib.types import (ChangeMatrix, CheckpointEntry, RunHistory, RunTrends, SkippedCheckpoint, TrendPoint,
                           VariableInfo, VariableTrend)  # fmt: skip

_Opened = tuple[CheckpointEntry, Checkpoint, dict[str, VariableInfo]]


def _numeric(info: VariableInfo) -> bool:
    return info.dtype != "string"


def run_trends(history: RunHistory, names: Sequence[str] | None = None, progress: Progress | None = None,
               backend: str = "native", where: Callable[[VariableInfo], bool] | None = None) -> RunTrends:
    """Each variable's statistics in every complete checkpoint (by step), reading one tensor at a time.

    `names` defaults to every variable of the run that `where` accepts (default: all but strings).
    Example: `run_trends(load_history("run"), ["dense/kernel"]).variables[0].points[-1].l2`.
    """
    opened: list[_Opened] = []
    skipped = [SkippedCheckpoint(e.prefix, e.step, e.problem or "The checkpoint is incomplete.")
               for e in history.checkpoints if not e.complete]
    for entry in history.checkpoints:
        if not entry.complete:
            continue
        ckpt = Checkpoint(entry.prefix, backend)
        try:
            opened.append((entry, ckpt, {info.name: info for info in ckpt.variables}))
        except errors.CkptError as exc:  # history found the index readable; it may have changed since
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, str(exc), error=True))
    known: dict[str, VariableInfo] = {}
    for _, _, infos in opened:
        known.update(infos)  # later checkpoints win: kind and dtype as the run ends
    if names is None:
        accept = where or _numeric
        names = sorted(name for name, info in known.items() if accept(info))
    else:
        for name in names:
            if name not in known:
                raise errors.VariableNotFound(
                    f"No complete checkpoint of run '{history.path}' has a variable '{name}'.")
    trends = []
    for done, name in enumerate(names):
        if progress is not None:
            progress(done, len(names), name)
        trends.append(_variable_trend(name, known[name], opened))
    if progress is not None:
        progress(len(names), len(names), "")
    return RunTrends(history.path, tuple(e for e, _, _ in opened), tuple(trends), tuple(skipped))


def _variable_trend(name: str, info: VariableInfo, opened: list[_Opened]) -> VariableTrend:
    points, skipped = [], []
    first = previous = None  # at most three copies of this one variable are alive at a time
    for entry, ckpt, infos in opened:
        if name not in infos:
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, f"{entry.name} has no variable '{name}'.", name))
            continue
        try:
            array = ckpt.read(name)
        except errors.CkptError as exc:  # one damaged tensor should not hide the rest of the run
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, str(exc), name, error=True))
            continue
        stats = tensor_stats(array)
        rel_prev = frac_prev = rel_first = None
        if previous is not None:
            rel_prev, frac_prev = _change(previous, array)
            rel_first = rel_prev if previous is first else _change(first, array)[0]
        points.append(TrendPoint(
            step=entry.step, prefix=entry.prefix, l2=stats.l2, mean=stats.mean, std=stats.std, min=stats.min,
            max=stats.max, nan=stats.nan, inf=stats.inf, rel_change_prev=rel_prev, rel_change_first=rel_first,
            frac_changed_prev=frac_prev,
        ))  # fmt: skip
        if first is None:
            first = array
        previous = array
    return VariableTrend(name, info.kind, info.dtype, info.shape, tuple(points), tuple(skipped))


def _change(old: np.ndarray, new: np.ndarray) -> tuple[float | None, float | None]:
    """(rel_change, frac_changed) of new against old; None when shape or dtype make them meaningless."""
    if old.shape != new.shape or not _same_family(old.dtype, new.dtype):
        return None, None
    result = compare_arrays(old, new)
    return result.rel_change, result.frac_changed


def _same_family(a: np.dtype, b: np.dtype) -> bool:
    if a == b:
        return True
    name_a = "string" if a == object else a.name
    name_b = "string" if b == object else b.name
    return comparable_dtypes(name_a, name_b)


def change_matrix(trends: RunTrends) -> ChangeMatrix:
    """rel_change_prev as a (variables x checkpoints) float64 array, NaN where undefined (e.g. the first)."""
    column = {entry.prefix: j for j, entry in enumerate(trends.checkpoints)}
    values = np.full((len(trends.variables), len(trends.checkpoints)), np.nan)
    for i, trend in enumerate(trends.variables):
        for point in trend.points:
            if point.rel_change_prev is not None:
                values[i, column[point.prefix]] = point.rel_change_prev
    return ChangeMatrix(
        values=values,
        variables=tuple(t.name for t in trends.variables),
        steps=tuple(e.step for e in trends.checkpoints),
        prefixes=tuple(e.prefix for e in trends.checkpoints),
    )
