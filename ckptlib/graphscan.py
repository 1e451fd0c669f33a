"""Guess a graph's inputs (placeholders) and outputs (last ops of its inference subgraph); no TensorFlow."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping

import numpy as np

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
# Reductions: one that folds the batch dimension away gives a loss or a metric, never a per-image output.
REDUCTIONS = frozenset({"Mean", "Sum", "Max", "Min", "Prod", "All", "Any", "EuclideanNorm"})
_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank"})  # a tensor's shape, not its values
# What a cross-entropy makes of probabilities: log(y), log(clip(y)).
_LOSS_PREP_ONLY = frozenset({"Log", "Log1p", "ClipByValue"})
NUM_CLASSES = 10
PIXELS = 784
# Scopes that hold training, saving and evaluation machinery (first name component, `_N` suffix allowed).
_SIDE_SCOPE = re.compile(r"^(gradients|save|init|report_uninitialized_variables)(_\d+)?(/|$)")
_METRIC_SCOPE = re.compile(r"(^|/)(?P<scope>[^/]*(accuracy|metric|eval|loss|xent|entropy|in_top_k|AssignMovingAvg)"
                           r"[^/]*|update_[^/]*)/", re.I)
_OUTPUT_WORDS = re.compile(r"logit|softmax|predict|probab|output|score|inference|y_conv|classes", re.I)
_OUTPUT_COLLECTION = re.compile(r"^(outputs?|logits|predictions?|probabilities|probs|scores)$", re.I)
_SIDE_COLLECTION = re.compile(r"^(train_op|summaries|losses|update_ops|regularization_losses)$")
_TRAINING_SCOPE = re.compile(r"(^|/)(gradients|save|init)(_\d+)?/")
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
                or _METRIC_SCOPE.search(below + "/")):
            return False
    return True


def _label_placeholders(index: GraphIndex) -> set[str]:
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


def label_side_heads(index: GraphIndex, labels: set[str], inputs: list[str]) -> list[tuple[str, list[str]]]:
    """The model's output as seen from the labels: (op, entry points) for the deepest op that every value the
    loss and metric side reads from the input's side derives from (Softmax, when the cross-entropy reads
    log(Softmax) and the accuracy its argmax; the logits, when a loss op and an argmax read them)."""
    if not labels or not inputs:
        return []
    values = index.values_from(inputs)
    label_side = {n for n in index.descendants(labels, data_only=True) if not is_training_op(index.nodes[n])}
    label_side |= {n for n in values if _METRIC_SCOPE.search(n + "/")}  # a loss's own reshapes and argmaxes
    entries = sorted((n for n in values - label_side
                      if any(c in label_side for c in index.data_consumers(n))), key=index.order.get)
    if not entries:
        return []
    common = set(values)
    for entry in entries:
        common &= index.data_ancestors([entry])
    feeding = index.data_ancestors(node_name(r) for n in common for r in index.nodes[n].input if not r.startswith("^"))
    deepest = common - feeding  # not read, even through a batch statistic or a cond, by another common op
    heads = []
    for name in sorted(deepest, key=index.order.get):
        name = _before_loss_prep(index, name, values)
        if index.nodes[name].op not in NOT_OUTPUTS and name not in (h for h, _ in heads):
            heads.append((name, entries))
    return heads


def _before_loss_prep(index: GraphIndex, name: str, values: set[str]) -> str:
    """From argmax(y), log(y), log(y + 1e-10) or log(clip(y)) back to y: the output, not what a loss or a
    metric made of it."""
    node = index.nodes[name]
    if node.op == "ArgMax":
        return _upstream(index, node, values) or name
    if node.op not in _LOSS_PREP_ONLY:
        return name
    node = index.nodes[_upstream(index, node, values) or name]
    data = [index.nodes.get(node_name(r)) for r in node.input if not r.startswith("^")]
    if node.op == "ClipByValue" or (node.op in ("Add", "AddV2", "Maximum") and any(map(_scalar_const, data))):
        return _upstream(index, node, values) or node.name  # the epsilon that keeps log() finite
    return node.name


def _upstream(index: GraphIndex, node, values: set[str]) -> str | None:
    """The one data input of `node` computed from the model's input, if there is exactly one."""
    found = {node_name(r) for r in node.input if not r.startswith("^") and node_name(r) in values}
    return found.pop() if len(found) == 1 else None


def _scalar_const(node) -> bool:
    return node is not None and node.op == "Const" and "value" in node.attr and \
        not node.attr["value"].tensor.tensor_shape.dim


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
    for name, entries in label_side_heads(index, labels, inputs):
        found.setdefault(name, _Why()).label_side = entries
    for name in inference:
        node = index.nodes[name]
        consumers = [index.nodes[c] for c in index.consumers[name]]
        if node.op in NOT_OUTPUTS or reduces_batch(index, node):
            continue  # a full reduction is a loss or a metric, even when it feeds nothing
        if consumers and all(c.op in UPDATE_OPS for c in consumers):
            continue  # a value written into a variable (moving averages), not a prediction
        if node.op in _LOSS_PREP_ONLY and consumers and not any(c.name in inference for c in consumers):
            continue  # log(y) or clip(y) made for a cross-entropy: y is the output
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
            score = (16 * bool(why.label_side) + 8 * bool(why.collection) + 4 * words + 2 * bool(why.feeds)
                     + 1 * bool(why.terminal))
            candidate = OutputCandidate(name, index.nodes[name].op, "; ".join(why.reasons()))
            scored.append((-score, index.order[name], candidate))
    return tuple(c for _, _, c in sorted(scored, key=lambda t: t[:2]))[:limit]


class _Why:
    """Why an op looks like an output; every field is one reason."""

    def __init__(self):
        self.label_side: list[str] = []  # what the loss/metric side reads, all derived from this op
        self.collection: str | None = None
        self.feeds: list[str] = []
        self.terminal: str | None = None
        self.head_of: str | None = None

    def reasons(self) -> list[str]:
        shown = ", ".join(self.label_side[:4]) + (", …" if len(self.label_side) > 4 else "")
        out = [f"deepest op that all the loss/metric side reads comes from ({shown})"] if self.label_side else []
        out += [f"in collection '{self.collection}'"] if self.collection else []
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
