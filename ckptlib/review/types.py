"""Frozen dataclasses of the review store: what a note is attached to, and the note itself."""

from __future__ import annotations

import os
from dataclasses import dataclass

VERDICTS = ("candidate", "ship", "regressed", "broken")


@dataclass(frozen=True)
class Target:
    """What a note is about: a run, one checkpoint of it, a pair of its checkpoints (a diff), or one variable.

    Paths are absolute; `checkpoint` and `checkpoint_b` are prefixes inside (or beside) the run folder.
    """

    run: str
    checkpoint: str | None = None
    variable: str | None = None
    checkpoint_b: str | None = None  # with `checkpoint`: the diff of checkpoint -> checkpoint_b

    @property
    def kind(self) -> str:
        if self.checkpoint_b is not None:
            return "diff"
        if self.variable is not None:
            return "variable"
        return "checkpoint" if self.checkpoint is not None else "run"


@dataclass(frozen=True)
class Note:
    """One note as stored, plus what is true of its checkpoint now (changed since, or deleted)."""

    id: int
    target: Target
    verdict: str | None  # one of VERDICTS, or None
    text: str  # Markdown
    author: str
    created: float  # unix seconds
    url: str | None  # the dashboard view it was written from
    supersedes: int | None = None  # the id of the note this one replaces
    superseded_by: int | None = None
    retracted: bool = False
    checkpoint_identity: str | None = None  # sha256 of the checkpoint's .index when the note was made
    checkpoint_changed: bool = False  # the checkpoint's files were rewritten since
    checkpoint_missing: bool = False  # the checkpoint is gone (the note stays on the run)

    @property
    def run(self) -> str:
        return self.target.run

    @property
    def checkpoint(self) -> str | None:
        return self.target.checkpoint

    @property
    def variable(self) -> str | None:
        return self.target.variable

    @property
    def current(self) -> bool:
        """Neither retracted nor replaced by a newer note."""
        return not self.retracted and self.superseded_by is None

    @property
    def where(self) -> str:
        """A short label of the target, e.g. 'model.ckpt-500 · dense/kernel'."""
        parts = [os.path.basename(self.target.checkpoint)] if self.target.checkpoint else []
        if self.target.checkpoint_b:
            parts = [f"{parts[0]} → {os.path.basename(self.target.checkpoint_b)}"]
        parts += [self.target.variable] if self.target.variable else []
        return " · ".join(parts) or "whole run"


@dataclass(frozen=True)
class ReportResult:
    """A review report written to disk."""

    output: str  # absolute path of the file written
    bytes: int
    format: str  # "html" or "md"
