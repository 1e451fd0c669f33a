"""Frozen dataclasses of the graph picture and the graph diff: a loaded graph, boxes, edges, op diffs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

DIFF_STATUSES = ("added", "removed", "changed", "unchanged")


# eq=False: equality and hashing by identity, since the NodeDef protos inside are neither hashable nor cheap
# to compare; the cached index below needs the instance __dict__ that a slotted class would not have.
@dataclass(frozen=True, eq=False)
class LoadedGraph:
    """One graph, whatever file it came from: a `.meta`, a frozen `.pb` or a SavedModel's meta graph."""

    path: str  # the file read (the .meta, the .pb, the SavedModel's saved_model.pb)
    kind: str  # meta | frozen | saved_model
    nodes: tuple = field(repr=False)  # the GraphDef's NodeDef protos, in graph order
    function_names: tuple[str, ...] = ()  # functions of the graph's library (their bodies are not in `nodes`)
    suggested_inputs: tuple[str, ...] = ()  # op names, best first (signature inputs for a SavedModel)
    suggested_outputs: tuple[str, ...] = ()  # op names, best first (signature outputs for a SavedModel)
    tags: tuple[str, ...] = ()  # the meta graph's tags ('serve' for most SavedModels)
    function: str | None = None  # the library function whose body `nodes` is (None: the top-level graph)
    functions: tuple = field(default=(), repr=False)  # the library's FunctionDef protos
    # (signature key, function) for each signature whose outputs a function call computes: the body behind
    # it (thin wrappers followed), 'serving_default' first
    signature_functions: tuple[tuple[str, str], ...] = ()

    @property
    def num_ops(self) -> int:
        return len(self.nodes)

    @cached_property
    def index(self):
        """The nodes indexed by name with their consumers (scan.GraphIndex), built on first use."""
        from ckptlib.graph.scan import GraphIndex

        return GraphIndex(self.nodes)


class FunctionInfo(NamedTuple):
    """One function of a graph's library, as the Function chooser lists it."""

    name: str
    num_nodes: int  # node_defs in its body (its arguments and return values not counted)
    label: str  # 'serving_default → __inference___call___112', or 'name (2 in → 1 out)'


@dataclass(frozen=True)
class Box:
    """One box of the picture: a collapsed scope or a single op."""

    id: str  # an op's name, or a scope's path followed by '/' (a scope and an op may share a name)
    label: str  # what to write on it: the op's last name part, or the scope's with its op count
    kind: str  # scope | op
    scope: str  # a scope box: its own path; an op box: the scope it sits in ('' at the top)
    op_count: int  # ops inside (1 for an op box)
    op_type: str | None  # an op box's type; None for a scope
    on_path: bool  # holds an op on the inference path (suggested inputs to suggested outputs)
    status: str | None  # diff status (the worst inside a scope), None without statuses
    x: float  # layer: longest path from the sources, in layer units
    y: float  # row within the layer, 1.0 apart, centred on 0


@dataclass(frozen=True)
class Edge:
    """Data edges between ops of two different boxes, counted."""

    src: str  # Box.id
    dst: str  # Box.id
    count: int
    on_path: bool  # at least one of them runs along the inference path


@dataclass(frozen=True)
class GraphPicture:
    """What to draw: at most the box cap of boxes, their aggregated edges, and what was left out."""

    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    hidden_ops: int  # training, saving, init and summary ops not drawn (0 with show_side_ops)
    capped_note: str | None  # which scopes stayed collapsed or were cut short to stay under the cap
    expanded: tuple[str, ...] = ()  # the scopes actually open, '' (the top) first

    def box(self, box_id: str) -> Box:
        return next(b for b in self.boxes if b.id == box_id)


@dataclass(frozen=True)
class OpDiff:
    """One op of A and/or B compared; `name` is B's name (A's mapped for a removed op)."""

    name: str
    name_a: str | None  # A's own name, None for an added op
    status: str  # added | removed | changed | unchanged
    type_a: str | None
    type_b: str | None
    changes: tuple[str, ...] = ()  # 'op type: VariableV2 → Const', 'device: …', 'attr strides: … → …'

    @property
    def scope(self) -> str:
        """The top-level scope the op belongs to (its first name part)."""
        return self.name.split("/", 1)[0]


@dataclass(frozen=True)
class ScopeCount:
    """Ops per status under one top-level scope."""

    scope: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class GraphDiff:
    """Two graphs compared op by op, aligned by name (after A's names went through the name mapping)."""

    a: str
    b: str
    kind_a: str
    kind_b: str
    ops: tuple[OpDiff, ...]  # sorted by name

    @property
    def summary(self) -> dict[str, int]:
        """Ops per status, every status present (0 when none)."""
        counts = dict.fromkeys(DIFF_STATUSES, 0)
        for op in self.ops:
            counts[op.status] += 1
        return counts

    @property
    def identical(self) -> bool:
        return all(op.status == "unchanged" for op in self.ops)

    @property
    def scopes(self) -> tuple[ScopeCount, ...]:
        """Per top-level scope counts, scopes with the most differences first."""
        counts: dict[str, dict[str, int]] = {}
        for op in self.ops:
            row = counts.setdefault(op.scope, dict.fromkeys(DIFF_STATUSES, 0))
            row[op.status] += 1
        rows = [ScopeCount(scope, **row) for scope, row in counts.items()]
        return tuple(sorted(rows, key=lambda r: (-(r.added + r.removed + r.changed), r.scope)))

    def statuses_b(self) -> dict[str, str]:
        """B's op name -> status (added, changed, unchanged): colours for a picture of B."""
        return {op.name: op.status for op in self.ops if op.status != "removed"}

    def statuses_a(self) -> dict[str, str]:
        """A's op name -> status (removed, changed, unchanged): colours for a picture of A."""
        return {op.name_a: op.status for op in self.ops if op.status != "added"}
