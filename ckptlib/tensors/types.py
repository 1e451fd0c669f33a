"""Frozen dataclasses of one tensor's statistics, histogram and summary."""

from __future__ import annotations

from dataclasses import dataclass

from ckptlib.formats.types import VariableInfo


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
