"""Cached versions of the expensive answers (diff, trends, health, one tensor's summary), keyed by content.

A key holds every checkpoint's identity — its path, the sha256 of its .index (which lists each tensor's
crc32c) and the size and mtime of each of its files — plus every option, so a rewritten checkpoint or a
changed option is a new key, never a stale answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptlib import errors, storage
from ckptlib.cache import incremental
from ckptlib.cache.store import ResultCache, key_of
from ckptlib.compare.types import CheckpointDiff, RunHealth, RunTrends
from ckptlib.formats.identity import checkpoint_identity, file_signature
from ckptlib.runs.statefile import STATE_FILENAME
from ckptlib.runs.types import RunHistory
from ckptlib.tensors.types import TensorSummary

if TYPE_CHECKING:
    from ckptlib.compare.diff import Progress
    from ckptlib.compare.mapping import NameMapping
    from ckptlib.formats import Checkpoint

# What computes a result is imported when a result is computed: a fresh process answered from the cache
# (a CLI call, a dashboard after a restart) does not pay for the diff, trends and health code.


def checkpoint_parts(prefix: str) -> list:
    return [prefix, checkpoint_identity(prefix), file_signature(prefix)]


def run_parts(history: RunHistory) -> list:
    """The run as far as a trend or a health check can tell: its complete checkpoints and the state file."""
    state = storage.join(history.path, STATE_FILENAME)
    state_sig = [storage.getsize(state), storage.getmtime(state)] if storage.isfile(state) else None
    return [history.path, state_sig,
            [[e.step, e.complete, e.problem, *checkpoint_parts(e.prefix)] for e in history.checkpoints]]


def _mapping_parts(mapping: NameMapping | None) -> list:
    if mapping is None:
        return [[], "", ""]  # what NameMapping() gives
    return [list(map(list, mapping.rules)), mapping.strip_prefix_a, mapping.add_prefix_a]


def cached_diff(cache: ResultCache | None, a: Checkpoint, b: Checkpoint, mapping: NameMapping | None = None,
                atol: float = 0.0, progress: Progress | None = None, verify: bool = False,
                backend: str = "native") -> CheckpointDiff:
    """diff_checkpoints(a, b, …) through `cache` (None: computed every time)."""
    def compute():
        from ckptlib.compare.diff import diff_checkpoints

        return diff_checkpoints(a, b, mapping=mapping, atol=atol, progress=progress, verify=verify)

    if cache is None:
        return compute()
    parts = ["diff", checkpoint_parts(a.prefix), checkpoint_parts(b.prefix), _mapping_parts(mapping), float(atol),
             verify, backend]
    return cache.get_or_compute(parts, compute)


def cached_trends(cache: ResultCache | None, history: RunHistory, names=None, progress: Progress | None = None,
                  backend: str = "native", verify: bool = False, kinds: tuple[str, ...] | None = None,
                  engine=None) -> RunTrends:
    """run_trends through `cache`; `kinds` limits the default variables to those kinds (strings left out).

    On a miss, the run's previous answer for the same options (kept under a key of its own) is extended
    with the checkpoints that arrived since, when that gives what a full run would (cache/incremental.py).
    `engine` (e.g. a Dask cluster) runs the work; it does not change the answer, so it is not in the key.
    """
    where = None if kinds is None else (lambda info: info.kind in kinds and info.dtype != "string")

    def compute_for(sub: RunHistory) -> RunTrends:
        from ckptlib.compare.trends import run_trends

        return run_trends(sub, names, progress=progress, backend=backend, verify=verify, where=where, engine=engine)

    if cache is None:
        return compute_for(history)
    options = [None if names is None else list(names), backend, verify, None if kinds is None else sorted(kinds)]
    parts = ["trends", run_parts(history), *options]
    key = key_of(parts)
    found = cache.get(key)
    if found is not None:
        cache.hits += 1
        return found
    cache.misses += 1
    latest_key = key_of(["trends-latest", history.path, *options])
    ids = {e.prefix: checkpoint_parts(e.prefix) for e in history.checkpoints if e.complete}
    result = None
    previous = cache.get(latest_key)
    if isinstance(previous, tuple) and len(previous) == 2 and isinstance(previous[1], RunTrends):
        try:
            result = incremental.extend(previous[1], dict(previous[0]), history, ids, compute_for)
        except errors.CkptError:
            result = None
    if result is None:
        result = compute_for(history)
    if any(s.error for s in result.skipped) or any(s.error for t in result.variables for s in t.skipped):
        return result  # a read that failed (a lost worker, a file mid-rewrite) may succeed next time: not kept
    cache.put(key, result)
    cache.put(latest_key, (tuple(ids.items()), result))
    return result


def cached_health(cache: ResultCache | None, history: RunHistory, *, jump_ratio: float, collapse_ratio: float,
                  include_optimizer: bool, progress: Progress | None = None, backend: str = "native",
                  verify: bool = False, engine=None) -> RunHealth:
    def compute():
        from ckptlib.compare.health import run_health

        return run_health(history, jump_ratio=jump_ratio, collapse_ratio=collapse_ratio,
                          include_optimizer=include_optimizer, progress=progress, backend=backend, verify=verify,
                          engine=engine)

    if cache is None:
        return compute()
    parts = ["health", run_parts(history), float(jump_ratio), float(collapse_ratio), include_optimizer, backend,
             verify]
    return cache.get_or_compute(parts, compute)


def cached_summary(cache: ResultCache | None, ckpt: Checkpoint, name: str, backend: str = "native") -> TensorSummary:
    def compute():
        from ckptlib.tensors.stats import summarize_variable

        return summarize_variable(ckpt, name)

    if cache is None:
        return compute()
    return cache.get_or_compute(["summary", checkpoint_parts(ckpt.prefix), name, backend], compute)
