"""Put constants in place of a graph's variables: values read by ckptlib's reader, the rewrite done by TF's converter.

    >>> values = read_values("run/model.ckpt-300", index, ["w"], {"w": VariableKey("w")})
    >>> frozen = to_constants(meta_def.graph_def, ("logits",), values, index)

The rewrite is TensorFlow's own (convert_to_constants.py, what convert_variables_to_constants uses since
TF 2.4: VariableV2 and VarHandleOp become Const, ReadVariableOp becomes Identity, function signatures
and control-flow dtypes follow resource variables into If/While/PartitionedCall bodies). Only where the
values come from differs: TensorFlow reads them in a session that has run the meta graph's restore op;
here they are read from the checkpoint the user named, and nothing of the graph runs.
"""

from __future__ import annotations

import numpy as np

from ckptlib import _tf, errors
from ckptlib.evaluate.opsafety import attr_functions
from ckptlib.evaluate.varkeys import VariableKey
from ckptlib.formats import open_checkpoint
from ckptlib.graph import scan as graphscan


def read_values(prefix: str, index: graphscan.GraphIndex, variables: list[str],
                keys: dict[str, VariableKey]) -> dict[str, np.ndarray]:
    """variable op name -> its value in checkpoint `prefix`, checked against the dtype and shape the graph
    declares (a partition gets its slice of the stored tensor)."""
    ckpt = open_checkpoint(prefix)
    stored = {v.name for v in ckpt.variables}
    values = {}
    for name in variables:
        key = keys[name]
        if key.key not in stored:
            raise errors.VariableNotFound(
                f"Cannot freeze checkpoint '{prefix}': graph variable '{name}' is saved as '{key.key}', which the "
                "checkpoint does not hold." + graphscan.close_matches(key.key, stored))
        value = ckpt.read(key.key)
        if key.begin is not None:
            value = _slice(prefix, name, key, value)
        values[name] = _checked(prefix, name, index.nodes[name], value)
    return values


def _slice(prefix: str, name: str, key: VariableKey, value: np.ndarray) -> np.ndarray:
    if len(key.begin) != value.ndim:
        raise errors.CorruptCheckpoint(f"Cannot freeze checkpoint '{prefix}': variable '{name}' is a slice of "
                                       f"{len(key.begin)} dimensions of '{key.key}', which has {value.ndim}.")
    box = tuple(slice(b, None if s < 0 else b + s) for b, s in zip(key.begin, key.size))
    return np.ascontiguousarray(value[box])


def _checked(prefix: str, name: str, node, value: np.ndarray) -> np.ndarray:
    tf = _tf.tf()
    dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).base_dtype
    shape = node.attr["shape"].shape if "shape" in node.attr else None
    declared = None if shape is None or shape.unknown_rank else tuple(d.size for d in shape.dim)
    known = declared is not None and all(d >= 0 for d in declared)
    if np.dtype(dtype.as_numpy_dtype) != value.dtype or (known and declared != value.shape):
        want = f"{dtype.name} {list(declared) if declared is not None else '?'}"
        raise errors.CorruptCheckpoint(
            f"Cannot freeze checkpoint '{prefix}': graph variable '{name}' is {want}, but the checkpoint holds "
            f"{value.dtype} {list(value.shape)} for it (another model's checkpoint?).")
    return value


def to_constants(graph_def, names: tuple[str, ...], values: dict[str, np.ndarray], index: graphscan.GraphIndex):
    """What the outputs `names` need of `graph_def`, with every variable in `values` a constant holding its
    value and the function library cut down to what those nodes call."""
    tf = _tf.tf()
    convert = _tf.constants_converter()
    sub = tf.compat.v1.graph_util.extract_sub_graph(graph_def, list(names))
    for node in sub.node:
        if node.op == "Variable":  # the pre-1.0 ref variable: VariableV2's attrs, a name the converter knows
            node.op = "VariableV2"
    data = convert._ConverterData(sub)
    for name, value in values.items():
        data.tensor_data[name] = convert._TensorData(numpy=value, dtype=index.nodes[name].attr["dtype"].type,
                                                     index=None)
    converted, _ = convert._replace_variables_by_constants(converter_data=data)
    frozen = tf.compat.v1.graph_util.extract_sub_graph(converted, list(names))
    _prune_library(frozen)
    return frozen


def _prune_library(graph_def) -> None:
    """Keep only the functions the nodes call (directly, through other functions or nested attributes):
    a training graph's gradient functions and unconverted copies do not belong in an inference graph."""
    library = {f.signature.name: f for f in graph_def.library.function}
    keep: set[str] = set()
    todo = [n.op for n in graph_def.node if n.op in library]
    todo += [f for n in graph_def.node for f in attr_functions(n.attr)]
    while todo:
        name = todo.pop()
        if name in keep or name not in library:
            continue
        keep.add(name)
        function = library[name]
        todo += attr_functions(function.attr)
        todo += [n.op for n in function.node_def if n.op in library]
        todo += [f for n in function.node_def for f in attr_functions(n.attr)]
    kept = [f for f in graph_def.library.function if f.signature.name in keep]
    gradients = [g for g in graph_def.library.gradient if g.function_name in keep and g.gradient_func in keep]
    del graph_def.library.function[:]
    graph_def.library.function.extend(kept)
    del graph_def.library.gradient[:]
    graph_def.library.gradient.extend(gradients)
