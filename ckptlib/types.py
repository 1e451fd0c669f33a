"""Frozen dataclasses that cross the boundary between ckptlib and its callers (CLI, dashboard)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint of a run: what the state file says, reconciled with the files on disk."""

    prefix: str  # absolute path without the .index/.data/.meta suffix
    step: int | None
    mtime: float | None  # unix seconds; state-file timestamp when present, else the .index file's mtime
    size_bytes: int  # index + data shards + .meta that exist on disk
    in_state: bool  # listed by the `checkpoint` state file
    latest: bool  # the state file's model_checkpoint_path
    complete: bool  # index and every data shard present, shard sizes consistent with the index
    has_meta: bool
    problem: str | None  # a sentence for a person, or None when all is well
    preserved: bool = False  # kept on disk by keep_checkpoint_every_n_hours (per the state file)

    @property
    def name(self) -> str:
        return os.path.basename(self.prefix)

    @property
    def orphan(self) -> bool:
        """On disk but not listed by the state file (and not explained by retention)."""
        return not self.in_state and not self.preserved and self.size_bytes > 0

    @property
    def missing(self) -> bool:
        """Listed by the state file but none of its files are on disk."""
        return self.in_state and self.size_bytes == 0

    @property
    def status(self) -> str:
        """A one-word summary for tables: latest, kept, preserved, orphan, missing, incomplete."""
        if self.missing:
            return "missing"
        if not self.complete:
            return "incomplete"
        if self.latest:
            return "latest"
        if self.in_state:
            return "kept"
        if self.preserved:
            return "preserved"
        return "orphan"


@dataclass(frozen=True)
class RunHistory:
    """A run folder and its checkpoints sorted by step (unknown steps last, then by time)."""

    path: str
    checkpoints: tuple[CheckpointEntry, ...]
    problem: str | None = None  # about the state file as a whole
    notes: tuple[str, ...] = ()  # plain-words remarks on the run (absolute paths resolved, retention...)
    last_preserved_timestamp: float | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep)) or self.path

    @property
    def latest(self) -> CheckpointEntry | None:
        """The state file's latest checkpoint if its files are complete, else the newest complete one."""
        for entry in self.checkpoints:
            if entry.latest and entry.complete:
                return entry
        complete = [e for e in self.checkpoints if e.complete]
        return complete[-1] if complete else None


@dataclass(frozen=True)
class RunSummary:
    """A run found under a root folder, as listed by `runs`."""

    path: str
    name: str  # path relative to the root
    num_checkpoints: int
    latest_step: int | None


@dataclass(frozen=True)
class VariableInfo:
    """One tensor stored in a checkpoint."""

    name: str  # the raw key in the checkpoint
    shape: tuple[int, ...]
    dtype: str  # numpy-style: float32, bfloat16, int64, bool, string, ...
    num_elements: int
    nbytes: int  # bytes it occupies in the data shard(s)
    kind: str  # model | optimizer | counter | metadata

    @property
    def scope(self) -> str:
        """Everything before the last '/', TF2 '.ATTRIBUTES/...' suffix removed; '' at top level."""
        display = self.display_name
        return display.rsplit("/", 1)[0] if "/" in display else ""

    @property
    def display_name(self) -> str:
        """The name without TF2's '/.ATTRIBUTES/VARIABLE_VALUE' tail."""
        return self.name.split("/.ATTRIBUTES/")[0]


@dataclass(frozen=True)
class TensorStats:
    """Float64 statistics of one tensor; min..l2 ignore NaN/Inf, which are counted apart."""

    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    l2: float | None
    nan: int
    inf: int
    zero_fraction: float | None


@dataclass(frozen=True)
class Histogram:
    """Counts of finite values in equal-width bins; len(edges) == len(counts) + 1."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class TensorSummary:
    """What `show` reports for one variable: its statistics, histogram and a bounded preview."""

    checkpoint: str
    info: VariableInfo
    stats: TensorStats
    histogram: Histogram | None
    preview: object  # nested lists of JSON-safe scalars (small tensors), else the first values flattened
    preview_truncated: bool
