"""The few verbs of `import ckptlib`: open a run or a checkpoint, read or stream a tensor, diff, trends.

Every example runs from the repository root (tests/test_api.py runs them as doctests).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type names only: importing them here would make `import ckptlib` pay for numpy
    import numpy as np

    from ckptlib.compare.types import CheckpointDiff, RunTrends
    from ckptlib.formats import Checkpoint
    from ckptlib.runs.types import RunHistory, RunSummary


def find_runs(root: str) -> tuple[RunSummary, ...]:
    """Every folder under `root` (itself included) that holds checkpoints.

    >>> import ckptlib
    >>> [run.name for run in ckptlib.find_runs("sample_checkpoints")][:2]
    ['from_cluster', 'linear']
    """
    from ckptlib.runs.history import find_runs as _find_runs

    return _find_runs(root)


def open_run(run_dir: str) -> RunHistory:
    """A run's checkpoints sorted by step, the state file reconciled with what is on disk.

    >>> run = ckptlib.open_run("sample_checkpoints/linear")
    >>> [entry.step for entry in run.checkpoints], run.latest.name
    ([100, 200, 300, 400, 500], 'model.ckpt-500')
    """
    from ckptlib.runs.history import load_history

    return load_history(run_dir)


def open_checkpoint(path: str, backend: str = "native") -> Checkpoint:
    """A checkpoint by prefix, by one of its files, or by run folder (its latest complete one).

    >>> ckpt = ckptlib.open_checkpoint("sample_checkpoints/linear")
    >>> [(v.name, v.shape, v.dtype) for v in ckpt.variables]
    [('global_step', (), 'int64'), ('linear/bias', (1,), 'float32'), ('linear/weights', (3, 1), 'float32')]
    """
    from ckptlib.runs.resolve import open_checkpoint as _open

    return _open(path, backend)


def read_tensor(checkpoint: str | Checkpoint, name: str) -> np.ndarray:
    """One tensor as a numpy array (`checkpoint` is a path or an opened Checkpoint).

    >>> ckptlib.read_tensor("sample_checkpoints/linear/model.ckpt-500", "linear/weights").shape
    (3, 1)
    """
    return _opened(checkpoint).read(name)


def stream_tensor(checkpoint: str | Checkpoint, name: str, chunk_elements: int = 1 << 20) -> Iterator[np.ndarray]:
    """A tensor flattened in C order as chunks of about `chunk_elements`, for bounded memory.

    Each chunk is valid only until the next one is requested (the buffer is reused): copy to keep it.

    >>> [chunk.size for chunk in ckptlib.stream_tensor("sample_checkpoints/linear", "linear/weights", 2)]
    [2, 1]
    """
    return _opened(checkpoint).iter_chunks(name, chunk_elements)


def diff(a: str | Checkpoint, b: str | Checkpoint, rules: Sequence[tuple[str, str]] = (),
         atol: float = 0.0) -> CheckpointDiff:
    """Every variable of A against B's: status, l2_diff, rel_change, cosine... (`rules`: regex renames of A).

    >>> d = ckptlib.diff("sample_checkpoints/linear/model.ckpt-100", "sample_checkpoints/linear/model.ckpt-500")
    >>> d.summary["changed"], [v.name for v in d.variables if v.status == "changed"][:2]
    (3, ['global_step', 'linear/bias'])
    """
    from ckptlib.compare.diff import diff_checkpoints
    from ckptlib.compare.mapping import NameMapping

    return diff_checkpoints(_opened(a), _opened(b), NameMapping(rules=tuple(rules)), atol)


def trends(run_dir: str | RunHistory, names: Sequence[str] | None = None) -> RunTrends:
    """Statistics of each variable over a run's complete checkpoints, with the change between steps.

    >>> t = ckptlib.trends("sample_checkpoints/linear", ["linear/weights"])
    >>> [p.step for p in t.get("linear/weights").points]
    [100, 200, 300, 400, 500]
    """
    from ckptlib.compare.trends import run_trends

    history = open_run(run_dir) if isinstance(run_dir, str) else run_dir
    return run_trends(history, names)


def _opened(checkpoint: str | Checkpoint) -> Checkpoint:
    return open_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
