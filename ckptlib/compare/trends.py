"""Variables across a run's checkpoints: statistics per step and relative change between steps."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from ckptlib import errors, storage
from ckptlib.compare.diff import Progress, comparable_dtypes, same_stored_bytes
from ckptlib.compare.diffstats import comparison
from ckptlib.compare.pairing import find_key, paired
from ckptlib.compare.types import ChangeMatrix, RunTrends, TrendPoint, VariableTrend
from ckptlib.engine.local import LocalEngine
from ckptlib.engine.types import Engine, Task
from ckptlib.formats import Checkpoint, open_checkpoint
from ckptlib.formats.base import CHUNK_ELEMENTS
from ckptlib.formats.types import VariableInfo
from ckptlib.runs.types import CheckpointEntry, RunHistory, SkippedCheckpoint
from ckptlib.tensors.accumulate import StatsAccumulator, aligned
from ckptlib.tensors.types import TensorStats

_Opened = tuple[CheckpointEntry, Checkpoint, dict[str, VariableInfo]]


def _numeric(info: VariableInfo) -> bool:
    return info.dtype != "string"


def run_trends(history: RunHistory, names: Sequence[str] | None = None, progress: Progress | None = None,
               backend: str = "native", where: Callable[[VariableInfo], bool] | None = None,
               chunk_elements: int = CHUNK_ELEMENTS, verify: bool = False, workers: int | None = None,
               engine: Engine | None = None) -> RunTrends:
    """Each variable's statistics in every complete checkpoint (by step), streaming one tensor at a time.

    `names` defaults to every variable of the run that `where` accepts (default: all but strings).
    Tensors larger than `chunk_elements` are streamed in chunks of that size, never held whole.
    A tensor whose stored checksum equals the previous point's is not read again (`by="checksum"`);
    `verify=True` reads every one. Each variable is one task of `engine` (ckptlib/engine/): by default
    LocalEngine(workers), up to `workers` forked processes (default: one per idle CPU, when there is enough
    to read) where forking is safe; a DaskEngine's workers open the checkpoints from their paths themselves.
    A variable whose task fails (a worker lost too often) has every checkpoint holding it under `skipped`.
    Example: `run_trends(load_history("run"), ["dense/kernel"]).variables[0].points[-1].l2`.
    """
    opened: list[_Opened] = []
    skipped = [SkippedCheckpoint(e.prefix, e.step, e.problem or "The checkpoint is incomplete.")
               for e in history.checkpoints if not e.complete]
    for entry in history.checkpoints:
        if not entry.complete:
            continue
        try:
            ckpt = open_checkpoint(entry.prefix, backend, chunk_elements)
            opened.append((entry, ckpt, paired(ckpt)))  # keyed by real names: positional keys shift
        except errors.CkptError as exc:  # history found the index readable; it may have changed since
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, str(exc), error=True))
    known: dict[str, VariableInfo] = {}
    for _, _, infos in opened:
        known.update(infos)  # later checkpoints win: kind and dtype as the run ends
    if names is None:
        accept = where or _numeric
        names = sorted(name for name, info in known.items() if accept(info))
    else:
        asked, names = names, []
        for name in asked:  # a raw key or a display name: the trend is kept under the pairing name
            key = find_key(known, name)
            if key is None:
                raise errors.VariableNotFound(
                    f"No complete checkpoint of run '{history.path}' has a variable '{name}'.")
            names.append(key)
    entries = tuple(e for e, _, _ in opened)
    ref = _RunRef(uuid.uuid4().hex, entries, tuple(storage.absolute(e.prefix) for e in entries), backend,
                  chunk_elements, verify)
    tasks = [Task(name, _trend_task, (ref, name, known[name]),
                  sum(infos[name].nbytes for _, _, infos in opened if name in infos)) for name in names]
    with _registered(ref, opened):
        outcomes = (engine or LocalEngine(workers)).run(tasks, progress, fork_safe=backend == "native")
    trends = [outcome.value if outcome.ok else _failed_trend(name, known[name], opened, outcome.error)
              for name, outcome in zip(names, outcomes)]
    if progress is not None:
        progress(len(names), len(names), "")
    return RunTrends(history.path, entries, tuple(trends), tuple(skipped))


@dataclass(frozen=True)
class _RunRef:
    """What a worker needs to open the run's checkpoints itself: paths and options, never arrays or files."""

    token: str  # one per run_trends call: a worker never mixes up two calls' checkpoints
    entries: tuple[CheckpointEntry, ...]  # the checkpoints run_trends opened, as the history lists them
    paths: tuple[str, ...]  # the same, absolute (or URLs): a Dask worker's working folder is not ours
    backend: str
    chunk_elements: int
    verify: bool


# Opened checkpoints by run token: run_trends registers its own (its forked workers inherit them, the
# in-process engine reuses them); a Dask worker process opens a run on its first task and keeps a few.
_OPENED: OrderedDict[str, list[_Opened]] = OrderedDict()
_OPENED_LOCK = threading.Lock()  # a Dask worker may run tasks on several threads
_KEEP_RUNS = 4


@contextmanager
def _registered(ref: _RunRef, opened: list[_Opened]):
    with _OPENED_LOCK:
        _OPENED[ref.token] = opened
    try:
        yield
    finally:
        with _OPENED_LOCK:
            _OPENED.pop(ref.token, None)


def _opened_run(ref: _RunRef) -> list[_Opened]:
    with _OPENED_LOCK:
        found = _OPENED.get(ref.token)
        if found is None:
            found = []
            for entry, path in zip(ref.entries, ref.paths):
                ckpt = open_checkpoint(path, ref.backend, ref.chunk_elements)
                found.append((entry, ckpt, paired(ckpt)))
            _OPENED[ref.token] = found
            while len(_OPENED) > _KEEP_RUNS:
                _OPENED.popitem(last=False)
        return found


def _trend_task(ref: _RunRef, name: str, info: VariableInfo) -> VariableTrend:
    """One variable's trend, wherever the engine runs it (here, a forked process, a Dask worker)."""
    return _variable_trend(name, info, _opened_run(ref), ref.verify)


def _failed_trend(name: str, info: VariableInfo, opened: list[_Opened], reason: str) -> VariableTrend:
    """A variable whose task failed: each checkpoint holding it is skipped with the reason, the others as usual."""
    skipped = tuple(
        SkippedCheckpoint(e.prefix, e.step, f"Could not compute the trend of '{name}': {reason}", name, error=True)
        if name in infos else SkippedCheckpoint(e.prefix, e.step, f"{e.name} has no variable '{name}'.", name)
        for e, _, infos in opened)
    return VariableTrend(name, info.kind, info.dtype, info.shape, (), skipped, info.display_name, info.name)


@dataclass(frozen=True)
class _Held:
    """One checkpoint's copy of the variable: its array when small, else re-streamed from disk on demand."""

    ckpt: Checkpoint
    info: VariableInfo
    array: np.ndarray | None

    @classmethod
    def load(cls, ckpt: Checkpoint, info: VariableInfo) -> _Held:
        small = (info.num_elements <= ckpt.chunk_elements or info.dtype == "string") and len(info.shape) <= 64
        return cls(ckpt, info, ckpt.read(info.name).reshape(-1) if small else None)

    def chunks(self) -> Iterator[np.ndarray]:
        return iter((self.array,)) if self.array is not None else self.ckpt.iter_chunks(self.info.name)


def _variable_trend(name: str, info: VariableInfo, opened: list[_Opened], verify: bool = False) -> VariableTrend:
    points, skipped = [], []
    first = previous = None  # kept whole only when small: memory does not grow with the tensor's size
    for entry, ckpt, infos in opened:
        if name not in infos:
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, f"{entry.name} has no variable '{name}'.", name))
            continue
        if not verify and previous is not None and points and _unchanged(previous, ckpt, infos[name]):
            # The same bytes as the previous point: its statistics hold, nothing to read.
            points.append(_repeat(points[-1], entry, previous is first, infos[name].num_elements > 0))
            continue
        try:
            current = _Held.load(ckpt, infos[name])
            stats, rel_prev, frac_prev, rel_first = _measure(current, previous, first)
        except errors.CkptError as exc:  # one damaged tensor should not hide the rest of the run
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, str(exc), name, error=True))
            continue
        points.append(TrendPoint(
            step=entry.step, prefix=entry.prefix, l2=stats.l2, mean=stats.mean, std=stats.std, min=stats.min,
            max=stats.max, nan=stats.nan, inf=stats.inf, rel_change_prev=rel_prev, rel_change_first=rel_first,
            frac_changed_prev=frac_prev,
        ))  # fmt: skip
        if first is None:
            first = current
        previous = current
    return VariableTrend(name, info.kind, info.dtype, info.shape, tuple(points), tuple(skipped), info.display_name,
                         info.name)


def _unchanged(previous: _Held, ckpt: Checkpoint, info: VariableInfo) -> bool:
    try:
        return same_stored_bytes(previous.ckpt, previous.info, ckpt, info)
    except errors.CkptError:  # e.g. the previous checkpoint vanished: read this one instead
        return False


def _repeat(last: TrendPoint, entry: CheckpointEntry, last_is_first: bool, has_elements: bool) -> TrendPoint:
    """The point of a checkpoint whose tensor has the previous point's bytes: same statistics, no change."""
    moved = 0.0 if last.l2 else None  # ||0|| / ||prev||, undefined when the previous norm is 0 (or unknown)
    if last.mean is None and last.l2 is None:  # strings and bools: equality only, no norms
        moved = None
    return replace(last, step=entry.step, prefix=entry.prefix, rel_change_prev=moved,
                   frac_changed_prev=0.0 if has_elements else None,
                   rel_change_first=moved if last_is_first else last.rel_change_first, by="checksum")


def _measure(current: _Held, previous: _Held | None, first: _Held | None):
    """(stats, rel_change_prev, frac_changed_prev, rel_change_first) in one lockstep pass over the three."""
    with_prev = previous is not None and _comparable(previous.info, current.info)
    with_first = first is not None and first is not previous and _comparable(first.info, current.info)
    against = [held for held, wanted in ((previous, with_prev), (first, with_first)) if wanted]
    # _comparable pairs strings and bools only with their own dtype: one mode fits every pair.
    no_stats = current.info.dtype in ("string", "bool")
    stats = StatsAccumulator()
    diffs = [comparison(equality=no_stats) for _ in against]
    for pieces in aligned(current.chunks(), *(held.chunks() for held in against)):
        if not no_stats:
            stats.add(pieces[0])
        for acc, old in zip(diffs, pieces[1:]):
            acc.add(old, pieces[0])
    results = [acc.result() for acc in diffs]
    prev = results[0] if with_prev else None
    since_first = prev if first is previous else (results[-1] if with_first else None)
    return (TensorStats(None, None, None, None, None, 0, 0, None) if no_stats else stats.result(),
            prev.rel_change if prev else None, prev.frac_changed if prev else None,
            since_first.rel_change if since_first else None)  # fmt: skip


def _comparable(old: VariableInfo, new: VariableInfo) -> bool:
    """Changes are meaningless across a change of shape or of dtype family (string, bool, real, complex)."""
    return old.shape == new.shape and (old.dtype == new.dtype or comparable_dtypes(old.dtype, new.dtype))


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
