"""Guess a graph's outputs: the last ops of its inference subgraph, best first, each with its reasons."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ckptlib.graph.scan import (LOSS_OPS, METRIC_OPS, METRIC_SCOPE, NOT_OUTPUTS, PLACEHOLDERS, SIDE_OPS, SIDE_SCOPE,
                                UPDATE_OPS, GraphIndex, is_training_op, label_placeholders, node_name, reduces_batch,
                                suggest_inputs)  # fmt: skip
from ckptlib.graph.types import OutputCandidate

_HEAD_OPS = frozenset({"Softmax", "LogSoftmax", "Sigmoid", "ArgMax", "TopKV2", "Identity", "Cast"})
_LOSS_PREP_ONLY = frozenset({"Log", "Log1p", "ClipByValue"})
_OUTPUT_COLLECTION = re.compile(r"^(outputs?|logits|predictions?|probabilities|probs|scores)$", re.I)
_OUTPUT_WORDS = re.compile(r"logit|softmax|predict|probab|output|score|inference|y_conv|classes", re.I)
_SIDE_COLLECTION = re.compile(r"^(train_op|summaries|losses|update_ops|regularization_losses)$")


def _side_nodes(index: GraphIndex, labels: set[str], collections: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Loss, metric, training, saving, init and summary ops, and everything downstream of them."""
    seeds = {n.name for n in index.nodes.values()
             if n.op in SIDE_OPS or n.op.endswith(("Summary", "SummaryV2")) or SIDE_SCOPE.match(n.name)
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
    label_side |= {n for n in values if METRIC_SCOPE.search(n + "/")}  # a loss's own reshapes and argmaxes
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
    labels = label_placeholders(index)
    side = _side_nodes(index, labels, collections)
    inputs = [p.name for p in suggest_inputs(index) if p.role == "input"]
    if not inputs:  # no image-like placeholder: start from any placeholder the side ops do not own
        inputs = [n.name for n in index.nodes.values() if n.op in PLACEHOLDERS and n.name not in side]
    inference = index.descendants(inputs, data_only=True) - side if inputs else set(index.nodes) - side
    # Loss and metric scopes hold ops that do not need the labels yet (LogSoftmax of a composite
    # cross-entropy, the accuracy's argmax): they are evaluation machinery all the same.
    inference = {n for n in inference if not METRIC_SCOPE.search(n + "/")}
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
                  if c.op not in LOSS_OPS | METRIC_OPS and (m := METRIC_SCOPE.search(c.name + "/"))}
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
