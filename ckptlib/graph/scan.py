"""A graph's nodes indexed for queries, the op families that matter, and its inputs (placeholders); no TensorFlow."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable

import numpy as np

from ckptlib.graph.nodeattrs import dtype_name, shape_value
from ckptlib.graph.types import PlaceholderInfo

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
# Reductions: one that folds the batch dimension away gives a loss or a metric, never a per-image output.
REDUCTIONS = frozenset({"Mean", "Sum", "Max", "Min", "Prod", "All", "Any", "EuclideanNorm"})
_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank"})  # a tensor's shape, not its values
# What a cross-entropy makes of probabilities: log(y), log(clip(y)).
NUM_CLASSES = 10
PIXELS = 784
# Scopes that hold training, saving and evaluation machinery (first name component, `_N` suffix allowed).
SIDE_SCOPE = re.compile(r"^(gradients|save|init|report_uninitialized_variables)(_\d+)?(/|$)")
METRIC_SCOPE = re.compile(r"(^|/)(?P<scope>[^/]*(accuracy|metric|eval|loss|xent|entropy|in_top_k|AssignMovingAvg)"
                           r"[^/]*|update_[^/]*)/", re.I)
_TRAINING_SCOPE = re.compile(r"(^|/)(gradients|save|init)(_\d+)?/")
_LABEL_NAME = re.compile(r"^(labels?|y|y_|y_true|targets?|ground_truth|gt|truth)(_\d+)?$", re.I)
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

    def data_ancestors(self, names: Iterable[str]) -> set[str]:
        """`names` and everything they read as data (control dependencies not followed)."""
        return self._walk(names, lambda n: [node_name(r) for r in self.nodes[n].input if not r.startswith("^")])

    def data_consumers(self, name: str) -> list[str]:
        return [c for c in self.consumers[name] if self._reads(c, name)]

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

    def _walk(self, names, nxt, stop=None) -> set[str]:
        """Every node reachable from `names` by `nxt`; nodes for which `stop` is true are not entered."""
        seen, todo = set(), [n for n in names if n in self.nodes]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(n for n in nxt(name) if n in self.nodes and n not in seen and not (stop and stop(n)))
        return seen

    def values_from(self, names: Iterable[str]) -> set[str]:
        """What `names` feed image by image: data descendants, not through shape queries, reductions over
        the batch (a regulariser's sum of squares) or training ops."""
        def stop(name):
            node = self.nodes[name]
            return node.op in _SHAPE_OPS or is_training_op(node) or reduces_batch(self, node)
        return self._walk(names, self.data_consumers, stop=stop)


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


def is_training_op(node) -> bool:
    """Gradients, optimizer updates, saving and init: ops that train or store the model."""
    return bool(_TRAINING_SCOPE.search(node.name)) or node.op in UPDATE_OPS or node.op == "NoOp" or \
        node.op.startswith(("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply"))


def _int_values(node) -> set[int] | None:
    """The values of a small integer Const node (reduction axes), or None."""
    if node.op != "Const" or "value" not in node.attr:
        return None
    tensor = node.attr["value"].tensor
    if tensor.dtype not in (3, 9):  # DT_INT32, DT_INT64
        return None
    if tensor.tensor_content:
        width = 4 if tensor.dtype == 3 else 8
        if len(tensor.tensor_content) % width:
            return None
        return {int(v) for v in np.frombuffer(tensor.tensor_content, f"<i{width}")}
    return {int(v) for v in (tensor.int_val if tensor.dtype == 3 else tensor.int64_val)}


def reduces_batch(index: GraphIndex, node) -> bool:
    """A reduction over the batch dimension (axis 0, or every axis of a tensor of unknown rank): its result
    is one number per batch (a loss, an accuracy), not one per image."""
    if node.op == "L2Loss":
        return True
    if node.op not in REDUCTIONS or len(node.input) < 2:
        return False
    axes = index.nodes.get(node_name(node.input[1]))
    if axes is None:
        return False
    if axes.op == "Range":  # tf.reduce_mean(t) of a tensor of unknown rank: range(rank(t))
        return True
    values = _int_values(axes)
    return values is not None and 0 in values


def _image_like(info: PlaceholderInfo) -> bool:
    """A float placeholder taking whole MNIST-sized images: [N, 784], [N, 28, 28], [N, 28, 28, 1]..."""
    dims = info.shape[1:] if info.shape else ()
    return (info.dtype.startswith(("float", "bfloat")) and bool(dims) and None not in dims
            and math.prod(dims) == PIXELS)


def _labels_like(info: PlaceholderInfo) -> bool:
    """[N, 10] float (one-hot) or [N] integer (class ids)."""
    if info.shape is None:
        return False
    if info.dtype.startswith(("float", "bfloat")):
        return len(info.shape) == 2 and info.shape[1] == NUM_CLASSES
    return info.dtype.startswith(("int", "uint")) and len(info.shape) == 1


def _feeds_only_losses(index: GraphIndex, name: str) -> bool:
    """Everything computed from `name` ends in losses, metrics, comparisons or training: what labels do
    (a mask or a second input would reach an output of the model instead)."""
    for below in index.descendants([name], data_only=True) - {name}:
        node = index.nodes[below]
        if index.data_consumers(below):
            continue
        if not (reduces_batch(index, node) or node.op in SIDE_OPS or node.op in ("Equal", "NotEqual")
                or node.op.endswith(("Summary", "SummaryV2")) or is_training_op(node)
                or METRIC_SCOPE.search(below + "/")):
            return False
    return True


def label_placeholders(index: GraphIndex) -> set[str]:
    """Placeholders named like labels, reaching a loss/metric op's labels argument, or shaped like labels
    ([N, 10] float, [N] int) beside an image-shaped input when all they feed is losses and metrics."""
    placeholders = [n for n in index.nodes.values() if n.op in PLACEHOLDERS]
    found = {n.name for n in placeholders if _LABEL_NAME.match(n.name.rsplit("/", 1)[-1])}
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
    infos = {n.name: placeholder_info(n) for n in placeholders}
    images = {name for name, info in infos.items() if _image_like(info)}
    for name, info in infos.items():
        if images - {name} and name not in found and _labels_like(info) and _feeds_only_losses(index, name):
            found.add(name)
    return found


def suggest_inputs(index: GraphIndex) -> tuple[PlaceholderInfo, ...]:
    """Every placeholder outside the saver's scope, inputs first, then labels, dropout, flags."""
    labels = label_placeholders(index)
    infos = [placeholder_info(n, placeholder_role(index, n, labels)) for n in index.nodes.values()
             if n.op in PLACEHOLDERS and not SIDE_SCOPE.match(n.name)]
    return tuple(sorted(infos, key=lambda p: (_ROLE_ORDER[p.role], index.order[p.name])))


def close_matches(name: str, names: Iterable[str], limit: int = 5) -> str:
    """' Close matches: a, b.' or '' — for 'no such node' messages."""
    names = list(names)
    found = difflib.get_close_matches(name, names, n=limit, cutoff=0.5)
    leaf = name.rsplit("/", 1)[-1]
    found += [n for n in names if n.rsplit("/", 1)[-1] == leaf and n not in found][: limit - len(found)]
    return f" Close matches: {', '.join(found)}." if found else ""
