"""Frozen dataclasses of comparisons: diffs, trends over a run, health flags."""

from __future__ import annotations

from dataclasses import dataclass

from ckptlib.runs.types import CheckpointEntry, SkippedCheckpoint

# Health flags and their thresholds (compare/health.py computes them; the CLI offers them without importing it).
FLAGS = ("nan_inf", "frozen", "norm_jump", "norm_collapse")
DEFAULT_JUMP = 4.0  # flag when a norm grows more than 4x between consecutive checkpoints
DEFAULT_COLLAPSE = 4.0  # flag when a norm shrinks more than 4x


# Statistics over two tensors use only the element positions where both values are finite (as
# TensorStats ignores NaN/Inf); those positions are counted in `nonfinite`. Equality-based fields
# (status, frac_changed) look at every position: NaN vs NaN and Inf vs the same Inf are unchanged.

DIFF_STATUSES = ("changed", "unchanged", "added", "removed", "shape_changed", "dtype_changed")


@dataclass(frozen=True)
class SuggestedPair:
    """A removed and an added variable that are probably the same one renamed (same shape and dtype)."""

    removed: str  # the removed row's name (A's name after the mapping)
    added: str  # B's name
    shape: tuple[int, ...]
    dtype: str
    similarity: float  # difflib ratio of the two names, 0..1


@dataclass(frozen=True)
class VariableDiff:
    """One row of a checkpoint diff; statistics are None where they do not apply."""

    name: str  # B's name; for a removed row, A's name after the mapping
    name_a: str | None  # A's raw name; None for an added row
    status: str  # one of DIFF_STATUSES
    kind: str  # model | optimizer | counter | metadata (B's when present, else A's)
    shape_a: tuple[int, ...] | None
    shape_b: tuple[int, ...] | None
    dtype_a: str | None
    dtype_b: str | None
    l2_diff: float | None = None  # ||b - a||_2
    rel_change: float | None = None  # ||b - a||_2 / ||a||_2, None when ||a||_2 == 0
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    cosine: float | None = None  # a.b / (||a|| ||b||), None when either norm is 0
    frac_changed: float | None = None  # share of float components with |b - a| > atol
    num_changed: int | None = None
    nonfinite: int | None = None  # positions where a or b is NaN/Inf, left out of the norms
    by: str | None = None  # "checksum": found unchanged by equal stored crc32c, bytes not read
    display_name: str | None = None  # the real name (object graph, Keras path) the pair was matched by


@dataclass(frozen=True)
class CheckpointDiff:
    """Every variable of two checkpoints compared; `suggestions` pair up likely renames."""

    a: str
    b: str
    atol: float
    variables: tuple[VariableDiff, ...]
    suggestions: tuple[SuggestedPair, ...] = ()
    suggested_rules: tuple[str, ...] = ()  # REGEX=REPL rules that would explain the suggestions

    @property
    def summary(self) -> dict[str, int]:
        """Rows per status, every status present (0 when none)."""
        counts = dict.fromkeys(DIFF_STATUSES, 0)
        for row in self.variables:
            counts[row.status] += 1
        return counts


@dataclass(frozen=True)
class TrendPoint:
    """One variable in one checkpoint: its statistics and how far it moved since the previous point."""

    step: int | None
    prefix: str
    l2: float | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    nan: int
    inf: int
    rel_change_prev: float | None  # ||x_t - x_prev|| / ||x_prev||; None at the first point
    rel_change_first: float | None  # ||x_t - x_first|| / ||x_first||; None at the first point
    frac_changed_prev: float | None  # share of components that differ from the previous point
    by: str | None = None  # "checksum": the same stored crc32c as the previous point, bytes not read again


@dataclass(frozen=True)
class VariableTrend:
    """A variable across a run's complete checkpoints, sorted by step."""

    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...]  # as in the last checkpoint holding it
    points: tuple[TrendPoint, ...]
    skipped: tuple[SkippedCheckpoint, ...]  # complete checkpoints without it, or unreadable for it
    display_name: str | None = None  # the real name (object graph, Keras path), as in the last checkpoint
    key: str | None = None  # the raw key in the last checkpoint holding it (positional keys may shift)


@dataclass(frozen=True)
class RunTrends:
    """Trends of several variables over one run; `checkpoints` are the complete ones, by step."""

    run: str
    checkpoints: tuple[CheckpointEntry, ...]
    variables: tuple[VariableTrend, ...]
    skipped: tuple[SkippedCheckpoint, ...]  # incomplete checkpoints, for every variable

    def get(self, name: str) -> VariableTrend | None:
        """The trend of a variable by its name (the pairing key) or its display name."""
        for trend in self.variables:
            if trend.name == name:
                return trend
        return next((trend for trend in self.variables if name in (trend.display_name, trend.key)), None)


@dataclass(frozen=True, eq=False)
class ChangeMatrix:
    """rel_change_prev of variables (rows) over checkpoints (columns); NaN where undefined."""

    values: object  # numpy float64 array, shape (len(variables), len(prefixes))
    variables: tuple[str, ...]
    steps: tuple[int | None, ...]
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class HealthFlag:
    """Something in a run that deserves a look: nan_inf, frozen, norm_jump or norm_collapse."""

    prefix: str | None  # the checkpoint concerned; None for run-wide flags (frozen)
    step: int | None
    variable: str
    flag: str
    detail: str


@dataclass(frozen=True)
class RunHealth:
    """Health flags of a run, the variables examined, and the checkpoints left out."""

    run: str
    flags: tuple[HealthFlag, ...]
    checked: tuple[str, ...]  # variable names examined
    skipped: tuple[SkippedCheckpoint, ...]
    jump_ratio: float
    collapse_ratio: float
    include_optimizer: bool
