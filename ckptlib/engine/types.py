"""What an engine runs and returns: independent tasks, their outcomes, and the interface every engine has."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ckptlib.errors import CkptError

Progress = Callable[[int, int, str], None]  # (tasks done, tasks in all, label of the task that finished)


@dataclass(frozen=True)
class Task:
    """fn(*args), independent of every other task.

    On Dask, `fn` travels by reference (a module-level function the workers import) and `args` by pickle:
    paths, names and small records only, never arrays or open files; each worker reads what it needs.
    """

    label: str  # what progress and a failure name: a variable, a checkpoint
    fn: Callable[..., Any]
    args: tuple = ()
    weight: int = 0  # bytes the task will read: the local pool sizes itself by the sum, heaviest first


@dataclass(frozen=True)
class Outcome:
    """A task's value, or why it failed (a CkptError, or on Dask a worker lost more often than allowed)."""

    label: str
    value: Any = None
    error: str | None = None  # one line; None when the task succeeded

    @property
    def ok(self) -> bool:
        return self.error is None


class Engine(Protocol):
    """Runs tasks; outcomes come back in the order of `tasks`, progress is called as each one finishes."""

    def run(self, tasks: Sequence[Task], progress: Progress | None = None, fork_safe: bool = True) -> list[Outcome]:
        """`fork_safe=False` when the tasks may not run in a forked copy of this process (TensorFlow's threads)."""


class EngineUnavailable(CkptError):
    """The Dask scheduler named by --scheduler (or CKPTLIB_DASK_SCHEDULER) cannot be reached or has no workers."""
