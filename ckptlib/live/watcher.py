"""Follow a run folder while it trains: report each new complete checkpoint once, in step order, never half-written.

A checkpoint is read only when all of these hold (checked in this order, cheapest first):
1. its `.index` is listed and no `<prefix>_temp*/` folder of an unfinished save is beside it;
2. the size and mtime of its index and data shards are the same at two consecutive polls (a copy or a
   slow writer is still at work otherwise: wait, don't fail);
3. it was not already handled with exactly these files;
4. its index decodes and every data shard is there and as long as the index says (history's `complete`).
It is reported once per (prefix, sha256 of its index): a prefix rewritten with new tensors is new again.
A checkpoint that vanishes under the watcher (max_to_keep deleting old ones) is skipped silently; one that is
still there but unreadable is tried again at the next poll, then given up until its files change.
"""

from __future__ import annotations

import hashlib
import math
import os
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ckptlib import errors, storage
from ckptlib.compare.types import DEFAULT_COLLAPSE, DEFAULT_JUMP
from ckptlib.formats import Checkpoint, bundle, open_checkpoint
from ckptlib.live.listing import Fingerprint, Listing, list_run
from ckptlib.live.measure import Reported, measure
from ckptlib.live.types import WatchEvent
from ckptlib.runs import keras_run
from ckptlib.runs.naming import step_from_name
from ckptlib.runs.types import SkippedCheckpoint

MAX_BACKOFF = 8  # remote runs: the poll interval doubles while nothing changes, up to this many times
_MAX_INDEX_BYTES = 256 << 20  # hashed whole to key a report; larger ones are keyed by their size and mtime
# The stored counters history reads a step from when a prefix has no '-N' suffix (runs/history.py).
_COUNTER_KEYS = ("global_step", "step/.ATTRIBUTES/VARIABLE_VALUE", "global_step/.ATTRIBUTES/VARIABLE_VALUE")


@dataclass(frozen=True)
class _Ready:
    """A prefix that passed every check and is open, waiting for its turn in step order."""

    name: str
    fingerprint: Fingerprint
    key: tuple[str, str]
    ckpt: Checkpoint
    step: int | None

    @property
    def time(self) -> float | None:
        index = self.fingerprint.index  # a Keras file has none: its newest file's mtime
        stamps = [index] if index else list(self.fingerprint.files)
        times = [s[2] for s in stamps if s[2] is not None]
        return max(times) if times else None


class RunWatcher:
    """One watch of one run folder: what the last poll saw, and what was already read or reported.

    `poll()` is `read(scan())`; the two halves are separate so that a caller (or a test) can tell the
    listing from the reading. Example: `w = RunWatcher("run"); w.scan(); time.sleep(2); list(w.poll())`.
    """

    def __init__(self, run: str, jump_ratio: float = DEFAULT_JUMP, collapse_ratio: float = DEFAULT_COLLAPSE,
                 on_skip: Callable[[SkippedCheckpoint], None] | None = None):
        self.run = storage.absolute(run)
        if not storage.isdir(self.run):
            what = "it is not a folder" if storage.exists(self.run) else "no such folder"
            raise errors.NotFound(f"Cannot watch run '{self.run}': {what}.")
        for label, ratio in (("jump_ratio", jump_ratio), ("collapse_ratio", collapse_ratio)):
            if not ratio > 1:
                raise ValueError(f"{label} must be > 1, not {ratio}")
        self.jump_ratio, self.collapse_ratio = float(jump_ratio), float(collapse_ratio)
        self.on_skip = on_skip
        self.changed = False  # whether the last scan saw any file change (drives the remote back-off)
        self._last: Listing | None = None
        self._done: dict[str, Fingerprint] = {}  # handled with these files: reported, a duplicate, or incomplete
        self._failed: dict[str, Fingerprint] = {}  # unreadable once with these files: one more try
        self._reported: set[tuple[str, str]] = set()
        self._previous: Reported | None = None

    def poll(self) -> Iterator[WatchEvent]:
        return self.read(self.scan())

    def scan(self) -> list[str]:
        """List the folder; the names of the prefixes that are stable, finished and not handled yet."""
        try:
            listing = list_run(self.run)
        except OSError:  # the folder is briefly unreachable (network, a remount): try again next poll
            self.changed = False
            return []
        last, self._last = self._last, listing
        self.changed = last is None or listing != last
        for table in (self._done, self._failed):
            for name in [n for n in table if n not in listing.prefixes]:
                del table[name]  # gone: if the prefix comes back it is looked at afresh
        if last is None:
            return []  # nothing is stable before a second look
        bundles = [name for name, found in listing.prefixes.items()
                   if found.index is not None and not found.temp and last.prefixes.get(name) == found]
        # ModelCheckpoint writes a Keras file whole and closes it: stable over two polls means finished.
        return sorted(name for name in set(bundles) | set(listing.stable_keras(last))
                      if self._done.get(name) != listing.prefixes[name])

    def read(self, names: list[str]) -> Iterator[WatchEvent]:
        """Open the prefixes `scan` named and yield the events of the complete, new ones by step."""
        ready = [r for r in (self._open(name) for name in names) if r is not None]
        ready.sort(key=lambda r: (r.step is None, r.step or 0, r.time or 0.0, r.name))
        for item in ready:
            try:
                event, reported = measure(item.ckpt, item.step, item.time, self._previous,
                                          self.jump_ratio, self.collapse_ratio)
            except (errors.CkptError, OSError) as exc:
                self._failure(item.name, item.fingerprint, item.step, exc)
                continue
            self._done[item.name] = item.fingerprint
            self._reported.add(item.key)
            self._previous = reported
            yield event

    def _open(self, name: str) -> _Ready | None:
        found = self._last.prefixes.get(name) if self._last is not None else None
        if found is None:  # not from this watcher's last scan
            return None
        prefix = storage.join(self.run, name)
        if found.keras:
            return self._open_keras(name, prefix, found)
        try:
            key = (name, _index_key(prefix, found))
            if key in self._reported:  # touched or copied again, same index: reported already
                self._done[name] = found
                return None
            index = bundle.read_index(prefix)
            problems = index.shard_problems()
            if problems and not _listed_complete(index, found):
                self._done[name] = found  # a shard missing or short: looked at again once its files change
                return None
            if problems:  # complete in the listing, not on disk: its files changed under us
                raise errors.IncompleteCheckpoint(f"Cannot read checkpoint '{prefix}': {' '.join(problems)}")
            ckpt = open_checkpoint(prefix)
            return _Ready(name, found, key, ckpt, _step(name, ckpt))
        except (errors.CkptError, OSError) as exc:
            self._failure(name, found, step_from_name(name), exc)
            return None

    def _open_keras(self, name: str, prefix: str, found: Fingerprint) -> _Ready | None:
        """A Keras file: keyed by its files' sizes and mtimes (no index to hash), stepped by its name."""
        key = (name, repr(found.files))
        if key in self._reported:
            self._done[name] = found
            return None
        names = [n for n, f in self._last.prefixes.items() if f.keras]
        step = keras_run.name_steps(names)[0].get(name)
        try:
            return _Ready(name, found, key, open_checkpoint(prefix), step)
        except (errors.CkptError, OSError) as exc:
            self._failure(name, found, step, exc)
            return None

    def _failure(self, name: str, found: Fingerprint, step: int | None, exc: Exception) -> None:
        prefix = storage.join(self.run, name)
        try:
            still_there = storage.exists(prefix if found.keras else prefix + ".index")
        except OSError:
            still_there = False
        if not still_there:
            return  # deleted between the listing and the reading: nothing to report, nothing to say
        if self._failed.get(name) != found:
            self._failed[name] = found  # maybe caught mid-rewrite: one more try at the next poll
            return
        del self._failed[name]
        self._done[name] = found  # unreadable twice with the same files: given up until they change
        if self.on_skip is not None:
            self.on_skip(SkippedCheckpoint(prefix, step, str(exc), error=True))


def watch_run(run: str, interval: float = 2.0, timeout: float | None = None,
              stop: Callable[[], bool] | None = None, sleep: Callable[[float], None] = _time.sleep,
              clock: Callable[[], float] = _time.monotonic, *, jump_ratio: float = DEFAULT_JUMP,
              collapse_ratio: float = DEFAULT_COLLAPSE,
              on_skip: Callable[[SkippedCheckpoint], None] | None = None) -> Iterator[WatchEvent]:
    """The run's complete checkpoints as WatchEvents: those already there first (by step), then new ones.

    Polls every `interval` seconds (a URL backs off to 8x while nothing changes) until `timeout` seconds
    have passed (None: forever) or `stop()` returns True (a threading.Event's `is_set` fits). The run must
    be a folder (NotFound otherwise, raised now, not at the first `next`); it may hold no checkpoint yet.
    `on_skip` hears of checkpoints that stay unreadable although complete on disk.

    Example: `for event in watch_run("runs/mnist", timeout=60): print(event.step, event.change)`.
    """
    if not (interval > 0 and math.isfinite(interval)):
        raise ValueError(f"interval must be a finite number > 0, not {interval}")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout must be >= 0, not {timeout}")
    watcher = RunWatcher(run, jump_ratio, collapse_ratio, on_skip)
    return _follow(watcher, interval, timeout, stop, sleep, clock)


def _follow(watcher: RunWatcher, interval: float, timeout: float | None, stop, sleep, clock) -> Iterator[WatchEvent]:
    start = clock()
    wait = interval
    remote = storage.is_url(watcher.run)
    while True:
        yield from watcher.poll()
        if stop is not None and stop():
            return
        left = None if timeout is None else timeout - (clock() - start)
        if left is not None and left <= 0:
            return
        # Every remote listing is a request: back off while the run is quiet, and come back to the base
        # interval as soon as anything changes (a change needs a second, confirming look soon).
        wait = interval if not remote or watcher.changed else min(wait * 2, interval * MAX_BACKOFF)
        sleep(wait if left is None else min(wait, left))


def _index_key(prefix: str, found: Fingerprint) -> str:
    try:
        return hashlib.sha256(storage.read_bytes(prefix + ".index", _MAX_INDEX_BYTES)).hexdigest()
    except ValueError:  # too large to hash in one go: its size and mtime stand in for its bytes
        return repr(found.index)


def _listed_complete(index: bundle.BundleIndex, found: Fingerprint) -> bool:
    """Whether the listing showed every data shard at least as long as the index needs."""
    sizes = {name: size for name, size, _ in found.files}
    return all(sizes.get(os.path.basename(index.data_path(shard)), -1) >= needed
               for shard, needed in index.expected_shard_sizes().items())


def _step(name: str, ckpt: Checkpoint) -> int | None:
    """The '-N' suffix, else the global step stored in the checkpoint (as history does), else None."""
    step = step_from_name(name)
    if step is not None:
        return step
    infos = {info.name: info for info in ckpt.variables}
    for key in _COUNTER_KEYS:
        info = infos.get(key)
        if info is not None and info.dtype.startswith("int") and info.shape == ():
            return int(ckpt.read(key))
    return None
