"""Guess a graph's inputs (placeholders) and outputs (last ops of its inference subgraph); no TensorFlow."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from ckptlib.nodeattrs import dtype_name, shape_value
from ckptlib.types import OutputCandidate, PlaceholderInfo

PLACEHOLDERS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
LOSS_OPS = frozenset({"SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits", "CTCLoss"})
METRIC_OPS = frozenset({"InTopK", "InTopKV2"})
UPDATE_OPS = frozenset({
    "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "ScatterUpdate", "ScatterAdd", "ScatterSub", "ResourceScatterUpdate", "ResourceScatterAdd",
})
SIDE_OPS = LOSS_OPS | METRIC_OPS | UPDATE_OPS | frozenset({
    "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints",
    "ShardedFilename", "ShardedFilespec", "MergeSummary", "WriteSummary", "Print", "PrintV2", "Assert", "NoOp",
})
# Never an output: sources, variable plumbing and shape arithmetic.
NOT_OUTPUTS = PLACEHOLDERS | UPDATE_OPS | frozenset({
    "Const", "NoOp", "VariableV2", "Variable", "VarHandleOp", "ReadVariableOp", "VarIsInitializedOp",
    "IsVariableInitialized", "Shape", "ShapeN", "Size", "Rank",
})
# Scopes that hold training, saving and evaluation machinery (first name component, `_N` suffix allowed).
_SIDE_SCOPE = re.compile(r"^(gradients|save|init|report_uninitialized_variables)(_\d+)?(/|$)")
_METRIC_SCOPE = re.compile(r"(^|/)(?P<scope>[^/]*(accuracy|metric|eval|loss|xent|entropy|in_top_k|AssignMovingAvg)"
                           r"[^/]*|update_[^/]*)/", re.I)
_OUTPUT_WORDS = re.compile(r"logit|softmax|predict|probab|output|score|inference|y_conv|classes", re.I)
_OUTPUT_COLLECTION = re.compile(r"^(outputs?|logits|predictions?|probabilities|probs|scores)$", re.I)
_SIDE_COLLECTION = re.compile(r"^(train_op|summaries|losses|update_ops|regularization_losses)$")
_LABEL_NAME = re.compile(r"^(labels?|y|y_|y_true|targets?|ground_truth|gt|truth)(_\d+)?$", re.I)
_HEAD_OPS = frozenset({"Softmax", "LogSoftmax", "Sigmoid", "ArgMax", "TopKV2", "Identity", "Cast"})
_PASS_OPS = frozenset({"Cast", "Identity", "Reshape", "Squeeze", "ArgMax", "OneHot", "ExpandDims", "StopGradient"})
_ROLE_ORDER = {"input": 0, "labels": 1, "keep_prob": 2, "dropout_rate": 2, "training_flag": 3, "other": 4}


def node_name(ref: str) -> str:
    """'^a/b' or 'a/b:1' -> 'a/b'."""
    return ref.lstrip("^").split(":")[0]


class GraphIndex:
    """Nodes by name with their consumers, built once from a GraphDef's nodes."""

    def __init__(self, nodes: Iterable):
        self.nodes = {n.name: n for n in nodes}
        self.order = {name: i for i, name in enumerate(self.nodes)}
        self.consumers: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for ref in node.input:
                src = node_name(ref)
                if src in self.consumers and node.name not in self.consumers[src]:
                    self.consumers[src].append(node.name)

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """`names` and everything they depend on (data and control inputs)."""
        return self._walk(names, lambda n: [node_name(r) for r in self.nodes[n].input])

    def descendants(self, names: Iterable[str], data_only: bool = False) -> set[str]:
        def nxt(name):
            return [c for c in self.consumers[name] if not data_only or self._reads(c, name)]
        return self._walk(names, nxt)

    def _reads(self, consumer: str, name: str) -> bool:
        """`consumer` takes an output of `name` as data (not only as a control dependency)."""
        return any(not r.startswith("^") and node_name(r) == name for r in self.nodes[consumer].input)

    def nearby(self, name: str, depth: int) -> set[str]:
        """Consumers of `name` up to `depth` hops away."""
        layer, seen = {name}, set()
        for _ in range(depth):
            layer = {c for n in layer for c in self.consumers[n]} - seen
            seen |= layer
        return seen

    def _walk(self, names, nxt) -> set[str]:
        seen, todo = set(), [n for n in names if n in self.nodes]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(n for n in nxt(name) if n in self.nodes and n not in seen)
        return seen


def placeholder_info(node, role: str = "other") -> PlaceholderInfo:
    dtype = node.attr["dtype"].type if "dtype" in node.attr else 0
    dims = shape_value(node.attr["shape"].shape) if "shape" in node.attr else None
    return PlaceholderInfo(node.name, dtype_name(dtype), None if dims is None else tuple(dims),
                           node.op == "PlaceholderWithDefault", role)


def placeholder_role(index: GraphIndex, node, labels: set[str]) -> str:
    info = placeholder_info(node)
    if node.name in labels:
        return "labels"
    scalar_like = info.shape is None or info.shape == ()
    if info.dtype == "bool" and scalar_like:
        return "training_flag"
    if info.dtype.startswith("float") and scalar_like:
        leaf = node.name.rsplit("/", 1)[-1].lower()
        if "keep" in leaf or any("dropout" in n.lower() for n in index.nearby(node.name, 3)):
            return "dropout_rate" if "rate" in leaf else "keep_prob"
        return "other"
    return "other" if scalar_like else "input"


def _label_placeholders(index: GraphIndex) -> set[str]:
    """Placeholders named like labels or reaching a loss/metric op's labels argument."""
    found = {n.name for n in index.nodes.values()
             if n.op in PLACEHOLDERS and _LABEL_NAME.match(n.name.rsplit("/", 1)[-1])}
    for node in index.nodes.values():
        if node.op in LOSS_OPS | METRIC_OPS and len(node.input) > 1:
            todo = [node_name(node.input[1])]
            while todo:
                src = index.nodes.get(todo.pop())
                if src is None:
                    continue
                if src.op in PLACEHOLDERS:
                    found.add(src.name)
                elif src.op in _PASS_OPS and src.input:
                    todo.append(node_name(src.input[0]))
    return found


def suggest_inputs(index: GraphIndex) -> tuple[PlaceholderInfo, ...]:
    """Every placeholder outside the saver's scope, inputs first, then labels, dropout, flags."""
    labels = _label_placeholders(index)
    infos = [placeholder_info(n, placeholder_role(index, n, labels)) for n in index.nodes.values()
             if n.op in PLACEHOLDERS and not _SIDE_SCOPE.match(n.name)]
    return tuple(sorted(infos, key=lambda p: (_ROLE_ORDER[p.role], index.order[p.name])))


def _side_nodes(index: GraphIndex, labels: set[str], collections: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Loss, metric, training, saving, init and summary ops, and everything downstream of them."""
    seeds = {n.name for n in index.nodes.values()
             if n.op in SIDE_OPS or n.op.endswith(("Summary", "SummaryV2")) or _SIDE_SCOPE.match(n.name)
             or n.op.startswith(("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply"))}
    for key, items in collections.items():
        if _SIDE_COLLECTION.match(key):
            seeds.update(node_name(i) for i in items)
    return index.descendants(seeds | labels)


def suggest_outputs(index: GraphIndex, collections: Mapping[str, tuple[str, ...]] | None = None,
                    limit: int = 10) -> tuple[OutputCandidate, ...]:
    """The last ops of the inference subgraph, best first (see DESIGN.md, `graph`)."""
    collections = collections or {}
    labels = _label_placeholders(index)
    side = _side_nodes(index, labels, collections)
    inputs = [p.name for p in suggest_inputs(index) if p.role == "input"]
    if not inputs:  # no image-like placeholder: start from any placeholder the side ops do not own
        inputs = [n.name for n in index.nodes.values() if n.op in PLACEHOLDERS and n.name not in side]
    inference = index.descendants(inputs, data_only=True) - side if inputs else set(index.nodes) - side
    # Loss and metric scopes hold ops that do not need the labels yet (LogSoftmax of a composite
    # cross-entropy, the accuracy's argmax): they are evaluation machinery all the same.
    inference = {n for n in inference if not _METRIC_SCOPE.search(n + "/")}
    in_collection = {node_name(i): key for key, items in collections.items() if _OUTPUT_COLLECTION.match(key)
                     for i in items}
    found: dict[str, _Why] = {}
    for name in inference:
        node = index.nodes[name]
        consumers = [index.nodes[c] for c in index.consumers[name]]
        if node.op in NOT_OUTPUTS:
            continue
        if consumers and all(c.op in UPDATE_OPS for c in consumers):
            continue  # a value written into a variable (moving averages), not a prediction
        why = found.setdefault(name, _Why())
        why.collection = in_collection.get(name)
        direct = {c.op for c in consumers if c.op in LOSS_OPS | METRIC_OPS}
        scopes = {m.group("scope") + "/" for c in consumers
                  if c.op not in LOSS_OPS | METRIC_OPS and (m := _METRIC_SCOPE.search(c.name + "/"))}
        why.feeds = sorted(direct) + sorted(scopes)
        if not any(c.name in inference for c in consumers):
            why.terminal = "feeds nothing" if not consumers else "feeds only training, loss, metric or saving ops"
            src = node_name(node.input[0]) if node.op in _HEAD_OPS and node.input else None
            if src in inference and index.nodes[src].op not in NOT_OUTPUTS:
                found.setdefault(src, _Why()).head_of = f"{node.op} '{name}'"
    scored = []
    for name, why in found.items():
        if why.reasons():
            words = any(_OUTPUT_WORDS.search(part) for part in name.rsplit("/", 2)[-2:])
            score = 8 * bool(why.collection) + 4 * words + 2 * bool(why.feeds) + 1 * bool(why.terminal)
            candidate = OutputCandidate(name, index.nodes[name].op, "; ".join(why.reasons()))
            scored.append((-score, index.order[name], candidate))
    return tuple(c for _, _, c in sorted(scored, key=lambda t: t[:2]))[:limit]


class _Why:
    """Why an op looks like an output; every field is one reason."""

    def __init__(self):
        self.collection: str | None = None
        self.feeds: list[str] = []
        self.terminal: str | None = None
        self.head_of: str | None = None

    def reasons(self) -> list[str]:
        out = [f"in collection '{self.collection}'"] if self.collection else []
        out += ["feeds " + ", ".join(self.feeds)] if self.feeds else []
        out += [self.terminal] if self.terminal else []
        out += [f"input of {self.head_of}"] if self.head_of else []
        return out


def close_matches(name: str, names: Iterable[str], limit: int = 5) -> str:
    """' Close matches: a, b.' or '' — for 'no such node' messages."""
    names = list(names)
    found = difflib.get_close_matches(name, names, n=limit, cutoff=0.5)
    leaf = name.rsplit("/", 1)[-1]
    found += [n for n in names if n.rsplit("/", 1)[-1] == leaf and n not in found][: limit - len(found)]
    return f" Close matches: {', '.join(found)}." if found else ""
