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
    state_known: bool = True  # False when the run has no readable state file: nothing is an orphan then

    @property
    def name(self) -> str:
        return os.path.basename(self.prefix)

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
    file), missing, incomplete."""
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

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep)) or self.path

    @property
    def latest(self) -> CheckpointEntry | None:
        """The state file's latest checkpoint if its files are complete, else the newest complete one."""
        for entry in self.checkpoints:
            if entry.latest and entry.complete:
                return entry
        # Prefer what the state file still lists: an orphan may come from another attempt of the job.
        complete = [e for e in self.checkpoints if e.complete and e.in_state] or [
            e for e in self.checkpoints if e.complete
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


# --- Compare: diff, trends, health (appended) ---------------------------------------------------
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
class SkippedCheckpoint:
    """A checkpoint of a run left out of a trend or health check, and why."""

    prefix: str
    step: int | None
    reason: str
    variable: str | None = None  # None when the whole checkpoint was left out
    error: bool = False  # the checkpoint holds the variable but reading it failed


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


@dataclass(frozen=True)
class VariableTrend:
    """A variable across a run's complete checkpoints, sorted by step."""

    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...]  # as in the last checkpoint holding it
    points: tuple[TrendPoint, ...]
    skipped: tuple[SkippedCheckpoint, ...]  # complete checkpoints without it, or unreadable for it


@dataclass(frozen=True)
class RunTrends:
    """Trends of several variables over one run; `checkpoints` are the complete ones, by step."""

    run: str
    checkpoints: tuple[CheckpointEntry, ...]
    variables: tuple[VariableTrend, ...]
    skipped: tuple[SkippedCheckpoint, ...]  # incomplete checkpoints, for every variable

    def get(self, name: str) -> VariableTrend | None:
        for trend in self.variables:
            if trend.name == name:
                return trend
        return None


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


# ---------------------------------------------------------------------------------------------
# Graph, freeze and evaluate (metagraph.py, freeze.py, mnist.py, evaluate.py)


@dataclass(frozen=True)
class GraphOp:
    """One node of a graph."""

    name: str
    type: str
    device: str  # '' when not pinned (or when devices were cleared)
    inputs: tuple[str, ...]  # 'name', 'name:1' (second output), '^name' (control dependency)


@dataclass(frozen=True)
class CollectionInfo:
    """One collection of a meta graph, its items decoded to readable names or values."""

    key: str
    kind: str  # node_list | bytes_list | int64_list | float_list | any_list | empty
    items: tuple[str, ...]  # tensor/op/variable names; numbers and strings as text


@dataclass(frozen=True)
class PlaceholderInfo:
    """A placeholder: a value the graph expects to be fed."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None  # None: unknown rank; None inside: unknown dimension
    has_default: bool  # PlaceholderWithDefault: runs without being fed
    role: str  # input | labels | keep_prob | dropout_rate | training_flag | other (a guess)


@dataclass(frozen=True)
class OutputCandidate:
    """An op that looks like the end of the inference subgraph, with why."""

    name: str
    type: str
    reason: str


@dataclass(frozen=True)
class SaverInfo:
    """The meta graph's SaverDef."""

    filename_tensor: str
    save_tensor: str
    restore_op: str
    max_to_keep: int
    keep_checkpoint_every_n_hours: float
    sharded: bool
    version: str  # V1 | V2


@dataclass(frozen=True)
class SignatureTensor:
    """One input or output of a SignatureDef."""

    key: str
    name: str
    dtype: str
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class SignatureInfo:
    """One SignatureDef of a meta graph."""

    key: str
    method_name: str
    inputs: tuple[SignatureTensor, ...]
    outputs: tuple[SignatureTensor, ...]


@dataclass(frozen=True)
class MetaGraphInfo:
    """What a `.meta` file holds, as `graph` reports it."""

    path: str
    tensorflow_version: str
    tags: tuple[str, ...]
    ops: tuple[GraphOp, ...]  # in graph order
    collections: tuple[CollectionInfo, ...]  # sorted by key
    op_type_counts: tuple[tuple[str, int], ...]  # most frequent first
    devices: tuple[str, ...]  # distinct device pins still in `ops`
    cleared_devices: tuple[str, ...]  # pins removed because clear_devices was asked for
    saver: SaverInfo | None
    signatures: tuple[SignatureInfo, ...]
    suggested_inputs: tuple[PlaceholderInfo, ...]
    suggested_outputs: tuple[OutputCandidate, ...]
    num_functions: int = 0  # functions in the graph's library (their ops are not listed)

    @property
    def num_ops(self) -> int:
        return len(self.ops)


@dataclass(frozen=True)
class NodeDefInfo:
    """One node_def with its attributes made readable."""

    name: str
    type: str
    device: str
    inputs: tuple[str, ...]
    consumers: tuple[str, ...]  # nodes that take one of its outputs or depend on it
    attrs: tuple[tuple[str, object], ...]  # (key, JSON-safe value: str, number, bool, list or dict)


@dataclass(frozen=True)
class FreezeResult:
    """A frozen GraphDef written by `freeze`."""

    output: str  # the .pb path written
    checkpoint: str  # the checkpoint prefix whose values were frozen
    num_nodes: int
    bytes: int
    outputs: tuple[str, ...]  # output node names
    cleared_devices: tuple[str, ...]  # pins the frozen ops had in the meta graph, cleared
    num_variables: int = 0  # variables turned into constants


@dataclass(frozen=True)
class MnistTestSet:
    """The MNIST test set: uint8 images [N, 28, 28] and uint8 labels [N]."""

    images: object  # numpy uint8 array [N, 28, 28]
    labels: object  # numpy uint8 array [N]
    source: str  # where it was read from, for people

    @property
    def num_examples(self) -> int:
        return int(len(self.labels))


@dataclass(frozen=True)
class EvalMetric:
    """A metric tensor read while evaluating: its batch values' mean weighted by batch size."""

    name: str
    value: float


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of a frozen graph on the MNIST test set."""

    model: str  # the .pb (or checkpoint prefix) evaluated
    accuracy: float
    num_examples: int
    per_class_accuracy: tuple[float | None, ...]  # 10 entries; None for a class with no examples
    confusion: tuple[tuple[int, ...], ...]  # 10x10: rows true class, columns predicted class
    images_per_second: float
    device: str  # e.g. 'CPU' or 'GPU:0 (NVIDIA A100-SXM4-40GB)'
    input: str  # tensor names ('x:0')
    output: str
    output_kind: str  # logits | probabilities | class_ids
    feeds: tuple[tuple[str, object], ...]  # placeholder -> value fed (defaults and --feed), sorted
    metric: EvalMetric | None
    dataset_source: str
    batch_size: int
    raw_pixels: bool = False
    misclassified: tuple[tuple[int, int, int], ...] = ()  # (test index, true, predicted), the first ones

    @property
    def num_correct(self) -> int:
        return int(sum(row[i] for i, row in enumerate(self.confusion)))


@dataclass(frozen=True)
class EvalPoint:
    """Accuracy of one checkpoint of a run."""

    step: int | None
    prefix: str
    accuracy: float
    num_examples: int
    meta: str = ""  # the .meta whose graph was frozen (another checkpoint's when this one has none)
    metric: float | None = None  # the graph's own metric tensor (--metric), when asked for


@dataclass(frozen=True)
class EvalHistory:
    """Accuracy over a run's checkpoints."""

    run: str
    points: tuple[EvalPoint, ...]  # sorted by step
    skipped: tuple[SkippedCheckpoint, ...]  # reason says why; variable is None
    dataset_source: str = ""
    device: str = ""

    @property
    def best(self) -> EvalPoint | None:
        return max(self.points, key=lambda p: p.accuracy) if self.points else None
