"""A graph as a tree of name scopes: side ops, the inference path, collapsed and expanded scopes, the box cap."""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass, field

from ckptlib.graph.layout import layered_layout
from ckptlib.graph.picture_types import Box, Edge, GraphPicture, LoadedGraph
from ckptlib.graph.scan import PLACEHOLDERS, SIDE_SCOPE, is_training_op, node_name

_SAVE_OPS = frozenset({"SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints",
                       "ShardedFilename", "ShardedFilespec", "VarIsInitializedOp", "IsVariableInitialized"})
OVERFLOW = "…"  # no TensorFlow op name can hold it, so an overflow box's id never clashes with an op's
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # graph -> {what: value}, computed once


def _cached(graph: LoadedGraph, key, build):
    slot = _CACHE.setdefault(graph, {})
    if key not in slot:
        slot[key] = build()
    return slot[key]


def parent(name: str) -> str:
    return name.rpartition("/")[0]


def _is_side_seed(node) -> bool:
    return bool(SIDE_SCOPE.match(node.name)) or is_training_op(node) or node.op in _SAVE_OPS or \
        node.op.endswith(("Summary", "SummaryV2")) or node.op == "SummaryWriter" or \
        (node.op in PLACEHOLDERS and node.name.rsplit("/", 1)[-1] == "saver_filename")  # a TF2 SavedModel's


def side_ops(graph: LoadedGraph) -> frozenset[str]:
    """Training, saving, init and summary ops, what they compute, and the sources that feed only them
    (learning rates, slot variables, initializers); never an op the suggested outputs read."""
    return _cached(graph, "side", lambda: _side_ops(graph))


def _side_ops(graph: LoadedGraph) -> frozenset[str]:
    index = graph.index
    kept = index.data_ancestors(graph.suggested_outputs[:1])
    seeds = [n.name for n in graph.nodes if _is_side_seed(n) and n.name not in kept]
    hidden = index.descendants(seeds, data_only=True) - kept
    # A loss or a metric is computed from a placeholder: it stays even though only gradients read it.
    fed = index.descendants([n.name for n in graph.nodes if n.op in PLACEHOLDERS and n.name not in hidden],
                            data_only=True)
    spare = set(index.nodes) - fed - kept - hidden  # what may go because of what reads it
    if fed:  # dead ends outside the computation from the inputs: variable snapshots, summary tags
        hidden |= {n for n in spare if not index.consumers[n]}
    live = {name: sum(c not in hidden for c in consumers) for name, consumers in index.consumers.items()}
    todo = [n for n in spare if index.consumers[n] and not live[n]] + list(hidden)
    hidden.update(todo)
    while todo:  # an op all of whose consumers are hidden serves only them
        for ref in index.nodes[todo.pop()].input:
            src = node_name(ref)
            if src in spare and src not in hidden:
                live[src] -= 1
                if live[src] <= 0:
                    hidden.add(src)
                    todo.append(src)
    return frozenset(hidden)


def inference_path(graph: LoadedGraph, inputs=None, outputs=None) -> frozenset[str]:
    """Ops on a data path from `inputs` (default: the suggested inputs) to `outputs` (default: the best
    suggested output); every data ancestor of the outputs when no input is known."""
    inputs, outputs = path_ends(graph, inputs, outputs)
    return _cached(graph, ("path", inputs, outputs), lambda: _path(graph, inputs, outputs))


def path_ends(graph: LoadedGraph, inputs=None, outputs=None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The op names the inference path runs between (tensor names 'x:0' accepted)."""
    return (tuple(graph.suggested_inputs if inputs is None else (node_name(i) for i in inputs)),
            tuple(graph.suggested_outputs[:1] if outputs is None else (node_name(o) for o in outputs)))


def _path(graph: LoadedGraph, inputs, outputs) -> frozenset[str]:
    index = graph.index
    upstream = index.data_ancestors(outputs)
    if not inputs:
        return frozenset(upstream)
    return frozenset(index.descendants(inputs, data_only=True) & upstream)


@dataclass
class ScopeTree:
    """Ops grouped by name scope. An op whose name is also a scope (a variable `w` beside `w/read`) lives in
    that scope, as TensorBoard draws it; `home` is the scope an op is shown in."""

    names: list[str]  # ops in graph order
    home: dict[str, str] = field(default_factory=dict)
    count: Counter = field(default_factory=Counter)  # scope -> ops at or under it ('' counts all)
    child_scopes: dict[str, list[str]] = field(default_factory=dict)
    ops_in: dict[str, list[str]] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)  # scope -> order of first appearance (ties go by it)

    def __post_init__(self):
        scopes: dict[str, None] = {"": None}  # insertion order: first appearance in the graph
        for name in self.names:
            cut = name.rfind("/")
            while cut > 0 and name[:cut] not in scopes:
                scopes[name[:cut]] = None
                cut = name.rfind("/", 0, cut)
        self.rank = {s: i for i, s in enumerate(scopes)}
        self.child_scopes = {s: [] for s in scopes}
        self.ops_in = {s: [] for s in scopes}
        for scope in scopes:
            if scope:
                self.child_scopes[parent(scope)].append(scope)
        for name in self.names:
            home = name if name in scopes else parent(name)
            self.home[name] = home
            self.ops_in[home].append(name)
            self.count[""] += 1
            while home:
                self.count[home] += 1
                home = parent(home)

    def children(self, scope: str) -> list[tuple[str, str]]:
        """(kind, name) of what opening `scope` shows: its sub-scopes, then its own ops."""
        return [("scope", s) for s in self.child_scopes.get(scope, ())] + [("op", o) for o in self.ops_in.get(scope, ())]


def scope_tree(graph: LoadedGraph, show_side_ops: bool = False) -> ScopeTree:
    def build():
        hidden = frozenset() if show_side_ops else side_ops(graph)
        return ScopeTree([n.name for n in graph.nodes if n.name not in hidden])
    return _cached(graph, ("tree", show_side_ops), build)


def scope_children(graph: LoadedGraph, scope: str, show_side_ops: bool = False) -> list[tuple[str, int]]:
    """(child scope, op count) under `scope` ('' for the top), sorted by name; [] for an unknown scope."""
    tree = scope_tree(graph, show_side_ops)
    scope = scope.rstrip("/")
    return sorted((s, tree.count[s]) for s in tree.child_scopes.get(scope, ()))


@dataclass
class Opened:
    """What the picture shows: open scopes, and for a scope cut short, the children left in its overflow box."""

    open: list[str]
    cut: dict[str, list[tuple[str, str]]]
    notes: list[str]


def open_scopes(tree: ScopeTree, expanded, max_boxes: int, path: frozenset[str], ends=frozenset()) -> Opened:
    """Open the top, then the requested scopes (their parents too) level by level, smallest first, while the
    boxes stay within `max_boxes`; the biggest requests stay collapsed. A scope with more direct children
    than the cap shows what fits (the path's `ends`, then the path, then the biggest) and one overflow box."""
    wanted = set()
    for scope in expanded:
        scope = scope.rstrip("/")
        while scope and scope in tree.count and scope not in wanted:
            wanted.add(scope)
            scope = parent(scope)
    priority = {}  # op or scope -> 0 holds an end of the path, 1 holds a path op (absent: neither)
    for rank, names in ((1, path), (0, ends)):
        for name in names:
            if name in tree.home:
                priority[name] = rank
                scope = tree.home[name]
                while scope and priority.get(scope, 2) > rank:
                    priority[scope] = rank
                    scope = parent(scope)
    opened = Opened(open=[], cut={}, notes=[])
    count, level, collapsed = 1, [""], []
    while level:
        # A scope holding a single op costs no box to open: draw the op rather than a box to click.
        wanted.update(c for s in level for c in tree.child_scopes[s] if tree.count[c] == 1)
        for scope in sorted(level, key=lambda s: (tree.count[s], tree.rank[s])):
            items = tree.children(scope)
            if count - 1 + len(items) <= max_boxes:
                count += len(items) - 1
            elif len(items) > max_boxes and max_boxes - count >= max(1, max_boxes // 4):
                # Never fits whole: worth showing in part only with a fair share of the boxes left.
                keep = max_boxes - count  # the scope's own box goes, an overflow box comes
                ranked = sorted(range(len(items)), key=lambda i: (
                    priority.get(items[i][1], 2), -(tree.count[items[i][1]] if items[i][0] == "scope" else 1), i))
                shown = set(ranked[:keep])
                opened.cut[scope] = [item for i, item in enumerate(items) if i not in shown]
                opened.notes.append(f"'{scope or 'the top level'}' has {len(items)} direct children: "
                                    f"{keep} shown, {len(items) - keep} in one box")
                count = max_boxes
            else:
                collapsed.append(scope)
                continue
            opened.open.append(scope)
        now_open = set(opened.open)
        done = now_open | set(collapsed) | {n for items in opened.cut.values() for _, n in items}  # cut: unseen
        level = [s for s in wanted if s not in done and parent(s) in now_open]
    if collapsed:
        biggest = sorted(collapsed, key=lambda s: (-tree.count[s], tree.rank[s]))
        shown = ", ".join(f"'{s}' ({tree.count[s]} ops)" for s in biggest[:5])
        opened.notes.insert(0, f"kept collapsed to stay under {max_boxes} boxes: {shown}"
                               + (f" and {len(biggest) - 5} more" if len(biggest) > 5 else ""))
    return opened


def overflow_id(scope: str) -> str:
    return f"{scope}/{OVERFLOW}" if scope else OVERFLOW


def box_ids(tree: ScopeTree, opened: Opened) -> dict[str, str]:
    """Every op's box: its own, its outermost collapsed scope's (`scope/`), or an overflow box."""
    open_set = set(opened.open)
    cut_scopes = {scope: {name for kind, name in items if kind == "scope"} for scope, items in opened.cut.items()}
    cut_ops = {name for items in opened.cut.values() for kind, name in items if kind == "op"}
    memo: dict[str, str | None] = {"": None}

    def scope_box(scope: str) -> str | None:
        chain = []
        while scope not in memo:
            chain.append(scope)
            scope = parent(scope)
        box = memo[scope]
        for s in reversed(chain):
            if box is None and s not in open_set:
                p = parent(s)
                box = overflow_id(p) if s in cut_scopes.get(p, ()) else s + "/"
            memo[s] = box
        return box

    boxes = {}
    for name in tree.names:
        home = tree.home[name]
        box = scope_box(home)
        boxes[name] = box if box is not None else (overflow_id(home) if name in cut_ops else name)
    return boxes


def scope_picture(graph: LoadedGraph, expanded=frozenset(), show_side_ops: bool = False, max_boxes: int = 300,
                  statuses=None, *, inputs=None, outputs=None) -> GraphPicture:
    """The graph as boxes: every top-level scope collapsed but those in `expanded` (a scope path, with or
    without its trailing '/'; its parents open with it), side ops left out unless `show_side_ops`, at
    most `max_boxes` boxes, laid out in layers. `statuses` ({op name: diff status}) colours the boxes; the
    inference path runs from `inputs` to `outputs` (default: the suggested ones).

        >>> pic = scope_picture(load_graph("run/model.ckpt-1.meta"), expanded={"hidden"})
        >>> [b.label for b in pic.boxes if b.on_path][:4], pic.hidden_ops
        (['x', 'MatMul (2)', 'add (2)', 'Relu'], 219)
    """
    if max_boxes < 2:
        raise ValueError(f"max_boxes must be at least 2, not {max_boxes}")
    tree = scope_tree(graph, show_side_ops)
    path = inference_path(graph, inputs, outputs)
    ends = {n for names in path_ends(graph, inputs, outputs) for n in names if n in path}
    opened = open_scopes(tree, expanded, max_boxes, path, ends)
    owner = box_ids(tree, opened)
    members: dict[str, list[str]] = {}
    for name in tree.names:
        members.setdefault(owner[name], []).append(name)
    counts: Counter = Counter()
    along: set[tuple[str, str]] = set()
    for name in tree.names:
        dst = owner[name]
        for ref in graph.index.nodes[name].input:
            src = owner.get(node_name(ref))
            if ref.startswith("^") or src is None or src == dst:
                continue  # control dependencies order ops; the picture shows where data flows
            counts[src, dst] += 1
            if name in path and node_name(ref) in path:
                along.add((src, dst))
    where = layered_layout(list(members), counts)
    boxes = tuple(_box(graph, tree, opened, box_id, ops, path, statuses, where[box_id])
                  for box_id, ops in members.items())
    edges = tuple(Edge(src, dst, n, (src, dst) in along) for (src, dst), n in counts.items())
    return GraphPicture(boxes=boxes, edges=edges, hidden_ops=0 if show_side_ops else len(side_ops(graph)),
                        capped_note="; ".join(opened.notes) or None, expanded=tuple(opened.open))


def _box(graph, tree, opened, box_id, ops, path, statuses, xy) -> Box:
    status = worst_status([statuses.get(o) for o in ops]) if statuses else None
    on_path = any(o in path for o in ops)
    if box_id.endswith("/"):
        scope = box_id[:-1]
        label = f"{scope.rsplit('/', 1)[-1]} ({len(ops)})"
        return Box(box_id, label, "scope", scope, len(ops), None, on_path, status, *xy)
    if box_id.endswith(OVERFLOW):
        scope = parent(box_id)
        label = f"{OVERFLOW} {len(opened.cut[scope])} more ({len(ops)} ops)"
        return Box(box_id, label, "scope", scope, len(ops), None, on_path, status, *xy)
    node = graph.index.nodes[box_id]
    return Box(box_id, box_id.rsplit("/", 1)[-1], "op", tree.home[box_id], 1, node.op, on_path, status, *xy)


def worst_status(found) -> str | None:
    """A scope's status from its ops': the one they share, else 'changed' (something inside differs)."""
    kinds = {s for s in found if s}
    if not kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "changed"
