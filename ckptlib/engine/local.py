"""Tasks in this process, or shared out over forked processes where that is safe and worth it."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ckptlib.engine.types import Outcome, Progress, Task
from ckptlib.errors import CkptError

# Tasks are independent: forked processes each run a share of them, the same arithmetic on the same bytes,
# so the same numbers as one process. Only fork: the child starts in milliseconds with this process's
# memory (the checkpoints the caller opened), where spawn and forkserver re-import numpy, ckptlib and
# the program's __main__ (`python -m ckptlib` would run again). Forking while another Python thread runs
# can leave the child a lock held mid-update, so a process with threads (a Streamlit server) stays
# serial, and so do tasks that are not fork-safe (TensorFlow's own threads). OpenBLAS's idle pool is
# safe to fork: it shuts down and restarts around fork (pthread_atfork).
# Two workers cost ~0.1 s to fork and feed (measured on a 7-checkpoint sample run); one process streams
# ~400 MB/s of stored bytes here, so below this the pool would eat most of what it saves.
PARALLEL_MIN_BYTES = 256 << 20
_TASKS: Sequence[Task] | None = None  # the forked workers' tasks (inherited, never pickled), set around a pool


@dataclass(frozen=True)
class LocalEngine:
    """This machine's CPUs: `workers` processes (None: one per idle CPU when there is enough to read; 1: serial)."""

    workers: int | None = None

    def run(self, tasks: Sequence[Task], progress: Progress | None = None, fork_safe: bool = True) -> list[Outcome]:
        count = process_count(self.workers, tasks, fork_safe)
        outcomes = _forked(tasks, progress, count) if count > 1 else None
        if outcomes is None:
            outcomes = []
            for done, task in enumerate(tasks):
                if progress is not None:
                    progress(done, len(tasks), task.label)
                outcomes.append(_outcome(task))
        return outcomes


def _outcome(task: Task) -> Outcome:
    try:
        return Outcome(task.label, task.fn(*task.args))
    except CkptError as exc:  # a bug (any other exception) still stops the run, with its traceback
        return Outcome(task.label, error=str(exc))


def process_count(workers: int | None, tasks: Sequence[Task], fork_safe: bool = True) -> int:
    """1, or more where fork is safe and `workers` asks for them or (by default) there is enough to read."""
    if workers == 1 or len(tasks) < 2 or not fork_safe or not sys.platform.startswith("linux"):
        return 1
    import multiprocessing  # here, not at the top: ~20 ms of every command's start (with concurrent.futures)

    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if workers is None:
        if sum(task.weight for task in tasks) < PARALLEL_MIN_BYTES:
            return 1
        # Only CPUs that other work leaves idle (this process counted once): on this 2-core machine at a
        # load average of ~4, two workers took 3.1 s where one process took 2.2 s.
        cpus = len(os.sched_getaffinity(0))
        workers = min(cpus, int(cpus + 1 - os.getloadavg()[0]))
    return max(1, min(workers, len(tasks)))


def _forked(tasks: Sequence[Task], progress: Progress | None, count: int) -> list[Outcome] | None:
    """The outcomes of `tasks` (in order) from `count` forked processes; None if processes cannot start."""
    global _TASKS
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # Heaviest first, handed to whichever process is free: the shares come out even without planning.
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].weight)
    done: dict[int, Outcome] = {}
    _TASKS = tasks
    try:
        with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_inherited, index): index for index in order}
            for future in as_completed(futures):
                if progress is not None:
                    progress(len(done), len(tasks), tasks[futures[future]].label)
                done[futures[future]] = future.result()
    except (OSError, BrokenProcessPool):  # no fork (process limits), or a worker was killed: serial instead
        return None
    finally:
        _TASKS = None
    return [done[index] for index in range(len(tasks))]


def _inherited(index: int) -> Outcome:
    """In a forked worker: one of the tasks the parent set before forking."""
    return _outcome(_TASKS[index])
