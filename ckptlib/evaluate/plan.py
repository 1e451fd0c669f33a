"""Decide how to run a frozen graph on MNIST: input and output tensors, input layout, extra feeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ckptlib.errors import BadGraphIO
from ckptlib.evaluate.feeds import NUM_CLASSES, Feed, labels_layout, plan_feeds
from ckptlib.evaluate.tfgraph import ancestors, describe, find_tensor, ops_by_name, static_shape
from ckptlib.graph import outputs
from ckptlib.graph import scan as graphscan

PIXELS = 784
_DEFAULT_LAYOUTS = {1: (784,), 2: (28, 28), 3: (28, 28, 1)}
# LeNet-5 wants 32x32 digits: the LeNet tutorials zero-padded MNIST by 2 pixels on each side.
LENET_PAD = 2
_PADDED_PIXELS = (28 + 2 * LENET_PAD) ** 2


@dataclass(frozen=True)
class EvalPlan:
    """Everything the batch loop needs, decided before the first batch runs."""

    input: str  # tensor name
    example_shape: tuple[int, ...]  # one image's layout: (784,), (28, 28), (28, 28, 1)...
    input_dtype: np.dtype
    fixed_batch: int | None  # the input's batch dimension when the graph fixes it
    output: str
    output_is_ids: bool  # [N] class ids instead of [N, 10] scores
    feeds: tuple[Feed, ...]
    labels: str | None
    labels_one_hot: bool
    labels_dtype: np.dtype | None
    metric: str | None
    padding: int = 0  # zero pixels added on each side of every 28x28 digit before the reshape


def example_shape(tensor) -> tuple[int, ...] | None:
    """The per-image layout an input placeholder wants, or None when 784 pixels (or 32x32 padded) cannot fit it."""
    shape = static_shape(tensor)
    if shape is None:
        return (PIXELS,)
    dims = shape[1:]
    if not dims:
        return None
    known = math.prod(d for d in dims if d is not None)
    unknown = [i for i, d in enumerate(dims) if d is None]
    if not unknown:
        return tuple(dims) if known == PIXELS or padding_for(dims) else None
    if len(unknown) == 1 and known and PIXELS % known == 0:
        return tuple(PIXELS // known if d is None else d for d in dims)
    default = _DEFAULT_LAYOUTS.get(len(dims))
    if default and all(d is None or d == e for d, e in zip(dims, default)):
        return default
    return None


def padding_for(dims) -> int:
    """LENET_PAD for a 32x32 layout ([32, 32], [32, 32, 1], [1, 32, 32], [1024]), else 0."""
    side = 28 + 2 * LENET_PAD
    squeezed = tuple(d for d in dims if d != 1)
    return LENET_PAD if squeezed in ((side, side), (_PADDED_PIXELS,)) else 0


def _usable_output(tensor) -> bool:
    shape = static_shape(tensor)
    if shape is None:
        return False
    if tensor.dtype.is_floating and len(shape) == 2:
        return shape[1] in (None, NUM_CLASSES)
    return tensor.dtype.is_integer and len(shape) == 1


def choose_output(graph, graph_def, source: str, output: str | None, roles: dict[str, str] | None = None):
    """The tensor named by `output`, else the first usable one among the suggested outputs (best first),
    else the deepest op downstream of the input giving [N, 10] float scores or [N] integer class ids."""
    if output:
        tensor = find_tensor(graph, output, "output", source)
        # Named on purpose: an ArgMax over an unknown-rank input has no static shape, and its batch of class
        # ids (or scores) is checked when it comes out.
        if static_shape(tensor) is None and (tensor.dtype.is_integer or tensor.dtype.is_floating):
            return tensor
        if not _usable_output(tensor):
            raise BadGraphIO(f"Output {describe(tensor)} of '{source}' is neither [N, 10] scores (logits or "
                             "probabilities) nor [N] integer class ids.")
        return tensor
    index = graphscan.GraphIndex(graph_def.node)
    tried = []
    for candidate in outputs.suggest_outputs(index, limit=50):
        tensor = find_tensor(graph, candidate.name, "output", source)
        if _usable_output(tensor):
            return tensor
        tried.append(describe(tensor))  # e.g. a scalar accuracy frozen beside the logits
    found = _outputs_downstream(graph, index, roles or {})
    if found:
        return found[0]
    listed = "; ".join(tried[:5]) or "none"
    raise BadGraphIO(f"Cannot find the output of '{source}' automatically: no op downstream of the input gives "
                     f"[N, 10] scores or [N] class ids (suggested outputs tried: {listed}). "
                     "Name it with --output (the dashboard's 'Output tensor' option).")


def _outputs_downstream(graph, index, roles: dict[str, str]) -> list:
    """Usable tensors computed from the input placeholders and not from the labels, scores before class
    ids, deepest (last in the graph) first."""
    inputs = [name for name, role in roles.items() if role == "input"]
    labels = [name for name, role in roles.items() if role == "labels"]
    if not inputs:
        inputs = [name for name, node in index.nodes.items()
                  if node.op in graphscan.PLACEHOLDERS and name not in labels]
    reached = index.values_from(inputs) - index.descendants(labels) - set(inputs)
    ops = ops_by_name(graph)
    batch = {static_shape(ops[name].outputs[0])[0] for name in inputs
             if ops[name].outputs and static_shape(ops[name].outputs[0])}
    found = []
    for name in reached:
        node, op = index.nodes[name], ops.get(name)
        if op is None or not op.outputs or node.op in graphscan.NOT_OUTPUTS or graphscan.reduces_batch(index, node):
            continue
        tensor, shape = op.outputs[0], static_shape(op.outputs[0])
        if _usable_output(tensor) and (shape[0] is None or shape[0] in batch):
            found.append((tensor.dtype.is_integer, -index.order[name], tensor))
    return [t for *_, t in sorted(found, key=lambda f: f[:2])]


def choose_input(graph, source: str, output, given: str | None, roles: dict[str, str]):
    if given:
        tensor = find_tensor(graph, given, "input", source)
        if example_shape(tensor) is None:
            raise BadGraphIO(f"Input {describe(tensor)} of '{source}' cannot take 784 pixels per image "
                             "(nor 32x32 with MNIST padded by 2).")
        return tensor
    placeholders = [op.outputs[0] for op in ancestors([output]) if op.type in graphscan.PLACEHOLDERS]
    fits = [t for t in placeholders if t.dtype.is_floating and example_shape(t) is not None
            and roles.get(t.op.name) in ("input", "other")]
    if len(fits) > 1:  # an unknown-rank placeholder could be anything: prefer those with an image shape
        fits = [t for t in fits if roles.get(t.op.name) == "input"] or fits
    if len(fits) != 1:
        listed = ", ".join(describe(t) for t in sorted(placeholders, key=lambda t: t.name)) or "none"
        problem = "several could be the image input" if fits else "none takes 784 (or 32x32) float pixels per image"
        raise BadGraphIO(f"Cannot find the input of '{source}' automatically: {problem} (placeholders the output "
                         f"depends on: {listed}). Name it with --input (the dashboard's 'Input tensor' option).")
    return fits[0]


def make_plan(graph, graph_def, source: str, *, input_tensor=None, output_tensor=None, feeds=None, labels=None,
              metric=None) -> EvalPlan:
    """Resolve every tensor and feed before anything runs; errors name the tensor and how to fix it."""
    index = graphscan.GraphIndex(graph_def.node)
    roles = {p.name: p.role for p in graphscan.suggest_inputs(index)}
    out = choose_output(graph, graph_def, source, output_tensor, roles)
    inp = choose_input(graph, source, out, input_tensor, roles)
    fetches = [out]
    metric_tensor = find_tensor(graph, metric, "metric", source) if metric else None
    if metric_tensor is not None:
        fetches.append(metric_tensor)
    if inp.op not in ancestors([out]):
        raise BadGraphIO(f"Output {out.name} of '{source}' does not depend on input {inp.name}.")
    labels_tensor = find_tensor(graph, labels, "labels", source) if labels else None
    one_hot, labels_dtype = labels_layout(labels_tensor, source) if labels_tensor is not None else (False, None)
    label_op = labels_tensor.op.name if labels_tensor is not None else None
    planned = plan_feeds(graph, source, ancestors(fetches), inp, label_op, dict(feeds or {}), roles)
    shape = static_shape(inp)
    layout = example_shape(inp)
    return EvalPlan(
        input=inp.name, example_shape=layout, input_dtype=inp.dtype.as_numpy_dtype,
        fixed_batch=shape[0] if shape else None, output=out.name,
        output_is_ids=out.dtype.is_integer, feeds=planned,
        labels=labels_tensor.name if labels_tensor is not None else None, labels_one_hot=one_hot,
        labels_dtype=labels_dtype, metric=metric_tensor.name if metric_tensor is not None else None,
        padding=0 if math.prod(layout) == PIXELS else padding_for(layout),
    )
