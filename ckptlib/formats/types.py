"""Frozen dataclasses of every format: what one stored variable is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VariableInfo:
    """One tensor stored in a checkpoint."""

    name: str  # the raw key in the checkpoint
    shape: tuple[int, ...]
    dtype: str  # numpy-style: float32, bfloat16, int64, bool, string, ...
    num_elements: int
    nbytes: int  # bytes it occupies in the data shard(s)
    kind: str  # model | optimizer | counter | metadata
    full_name: str | None = None  # the real name the file gives (object graph, Keras path); None when none
    slot_of: str | None = None  # an optimizer slot's weight (its display name), where the file says so
    copy_of: str | None = None  # the key of an earlier tensor this one duplicates (a SavedModel lists each twice)
    note: str | None = None  # how the display name was found, when it is a guess (e.g. Keras weights by position)

    @property
    def scope(self) -> str:
        """Everything before the last '/', TF2 '.ATTRIBUTES/...' suffix removed; '' at top level."""
        display = self.display_name
        return display.rsplit("/", 1)[0] if "/" in display else ""

    @property
    def display_name(self) -> str:
        """The file's real name for it (`sequential/hidden/kernel`), else the key without TF2's '/.ATTRIBUTES/…'."""
        return self.full_name or self.name.split("/.ATTRIBUTES/")[0]
