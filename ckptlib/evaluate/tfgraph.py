"""Small queries on an imported tf.Graph: tensors by name, dependencies, static shapes."""

from __future__ import annotations

from ckptlib.errors import NodeNotFound
from ckptlib.evaluate.queues import component_name
from ckptlib.graph import scan as graphscan


def ops_by_name(graph) -> dict:
    """op name -> tf.Operation."""
    return {op.name: op for op in graph.get_operations()}


def find_tensor(graph, name: str, what: str, source: str):
    """A tensor by 'op' or 'op:N' name, or NodeNotFound listing close matches."""
    ops = ops_by_name(graph)
    op_name, _, index = name.partition(":")
    op = ops.get(op_name)
    if op is None and component_name(op_name, int(index or 0)) in ops:  # a dequeue output, now a placeholder
        op, index = ops[component_name(op_name, int(index or 0))], "0"
    if op is None or not op.outputs or int(index or 0) >= len(op.outputs):
        raise NodeNotFound(f"Graph '{source}' has no {what} tensor '{name}'." + graphscan.close_matches(op_name, ops))
    return op.outputs[int(index or 0)]


def ancestors(tensors) -> set:
    """The ops `tensors` depend on (data and control inputs), their own ops included."""
    seen, todo = set(), [t.op for t in tensors]
    while todo:
        op = todo.pop()
        if op not in seen:
            seen.add(op)
            todo.extend(t.op for t in op.inputs)
            todo.extend(op.control_inputs)
    return seen


def static_shape(tensor) -> tuple | None:
    """The static shape as a tuple (None for unknown dimensions), or None for an unknown rank."""
    return None if tensor.shape.rank is None else tuple(tensor.shape.as_list())


def describe(tensor) -> str:
    """'name:0 (float32 [None, 784])' for messages."""
    shape = static_shape(tensor)
    return f"{tensor.name} ({tensor.dtype.name} {'?' if shape is None else list(shape)})"
