"""Frozen dataclasses of runs: a run's checkpoints, runs under a root, checkpoints left out."""

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
    state_known: bool = True  # False when the run has no readable state file: nothing is an orphan then
    checksums: str = "unverified"  # unverified | ok | damaged: whether every tensor's crc32c was read and checked
    # The training step stored in the checkpoint (global_step, step, the optimizer's iterations), read for
    # object-based (TF2) checkpoints, whose '-N' counts saves, and for names without '-N'; else None.
    stored_step: int | None = None
    time_source: str = "file"  # where `mtime` comes from: state (the state file's timestamp) | file | unknown

    @property
    def training_step(self) -> int | None:
        """The step a person means: the stored training step when known, else `step` (the '-N' suffix)."""
        return self.stored_step if self.stored_step is not None else self.step

    @property
    def name(self) -> str:
        return os.path.basename(self.prefix)

    @property
    def has_problem(self) -> bool:
        """Something to fix: missing, incomplete, damaged or orphaned (kept on purpose or unlisted is not)."""
        return self.status in ("missing", "incomplete", "damaged", "orphan")

    @property
    def usable(self) -> bool:
        """Complete, and not found damaged by a checksum check."""
        return self.complete and self.checksums != "damaged"

    @property
    def orphan(self) -> bool:
        """On disk but not listed by a readable state file (and not explained by retention)."""
        return self.state_known and not self.in_state and not self.preserved and self.size_bytes > 0

    @property
    def missing(self) -> bool:
        """Listed by the state file but none of its files are on disk."""
        return self.in_state and self.size_bytes == 0

    @property
    def status(self) -> str:
        """A one-word summary for tables: latest, kept, preserved, orphan, unlisted (no readable state
    file), missing, incomplete, damaged (found by a checksum check)."""
        if self.missing:
            return "missing"
        if not self.complete:
            return "incomplete"
        if self.checksums == "damaged":
            return "damaged"
        if self.latest:
            return "latest"
        if self.in_state:
            return "kept"
        if self.preserved:
            return "preserved"
        return "orphan" if self.state_known else "unlisted"


@dataclass(frozen=True)
class RunHistory:
    """A run folder and its checkpoints sorted by step (unknown steps last, then by time)."""

    path: str
    checkpoints: tuple[CheckpointEntry, ...]
    problem: str | None = None  # about the state file as a whole
    notes: tuple[str, ...] = ()  # plain-words remarks on the run (absolute paths resolved, retention...)
    last_preserved_timestamp: float | None = None
    next_deleted: str | None = None  # prefix the Saver's max_to_keep removes at the next save, when known
    file_times_copied: bool = False  # the files' mtimes look copied (git clone, cp), not saved: see `notes`

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep)) or self.path

    @property
    def latest(self) -> CheckpointEntry | None:
        """The state file's latest checkpoint if its files are complete, else the newest complete one."""
        for entry in self.checkpoints:
            if entry.latest and entry.usable:
                return entry
        # Prefer what the state file still lists: an orphan may come from another attempt of the job.
        complete = [e for e in self.checkpoints if e.usable and e.in_state] or [
            e for e in self.checkpoints if e.usable
        ]
        return complete[-1] if complete else None


@dataclass(frozen=True)
class RunSummary:
    """A run found under a root folder, as listed by `runs`."""

    path: str
    name: str  # path relative to the root
    num_checkpoints: int
    latest_step: int | None


@dataclass(frozen=True)
class SkippedCheckpoint:
    """A checkpoint of a run left out of a trend or health check, and why."""

    prefix: str
    step: int | None
    reason: str
    variable: str | None = None  # None when the whole checkpoint was left out
    error: bool = False  # the checkpoint holds the variable but reading it failed
