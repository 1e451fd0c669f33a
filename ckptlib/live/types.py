"""Frozen dataclasses of a live watch: one event per new complete checkpoint, and its change since the last."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ckptlib.compare.types import HealthFlag


@dataclass(frozen=True)
class Change:
    """How far the model weights moved since the previously reported checkpoint."""

    from_prefix: str  # the previously reported checkpoint
    max_rel_change: float | None  # the largest rel_change (||b - a|| / ||a||) over model weights; None if none defined
    top: tuple[tuple[str, float], ...]  # up to 5 (variable, rel_change), largest first
    problem: str | None = None  # why there are no numbers (the previous checkpoint was deleted or overwritten)


@dataclass(frozen=True)
class WatchEvent:
    """A new complete checkpoint of a watched run: when it was written, its flags, its change."""

    prefix: str
    step: int | None
    time: float | None  # unix seconds: the .index file's mtime (None when a remote store does not tell)
    health: tuple[HealthFlag, ...]  # nan_inf of this checkpoint; norm_jump / norm_collapse against the last
    change: Change | None  # None for the first checkpoint reported

    @property
    def name(self) -> str:
        return os.path.basename(self.prefix)

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(f.flag for f in self.health)
