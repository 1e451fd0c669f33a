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

    @property
    def scope(self) -> str:
        """Everything before the last '/', TF2 '.ATTRIBUTES/...' suffix removed; '' at top level."""
        display = self.display_name
        return display.rsplit("/", 1)[0] if "/" in display else ""

    @property
    def display_name(self) -> str:
        """The name without TF2's '/.ATTRIBUTES/VARIABLE_VALUE' tail."""
        return self.name.split("/.ATTRIBUTES/")[0]
