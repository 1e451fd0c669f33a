"""Which checkpoint key (and slice) holds each variable of a meta graph, read from the graph without running it.

    >>> keys = checkpoint_keys(meta_def, ["softmax_linear/weights", "part_w/part_1"])
    >>> keys["part_w/part_1"]
    VariableKey(key='part_w', begin=(262, 0), size=(261, 10))

The Saver's restore graph says it best: RestoreV2's `tensor_names` and `shape_and_slices` constants, and
the Assign/AssignVariableOp that takes each of its outputs to a variable (saver.py writes exactly that).
Only those constants are read: the file name RestoreV2 would open is ignored, since the values come from
the checkpoint the user named. Without a saver, the `variables` collections' VariableDefs (their
save_slice_info for partitions) say it; last, the variable's own name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from ckptlib import _tf, errors
from ckptlib.graph import scan as graphscan
from ckptlib.graph.collectiondefs import VARIABLE_COLLECTIONS, pb2

_ASSIGN = {"Assign": 0, "AssignVariableOp": 0}  # op -> index of the variable input (the value is input 1)
_RESTORE = frozenset({"RestoreV2", "RestoreSlice", "Restore"})
_PASS = frozenset({"Identity", "Snapshot"})
_SLICE = re.compile(r"^(-|\d+,\d+)(:(-|\d+,\d+))*$")


@dataclass(frozen=True)
class VariableKey:
    """Where a variable's value is stored: a key, and for a partition the box (begin, size) it holds."""

    key: str
    begin: tuple[int, ...] | None = None
    size: tuple[int, ...] | None = None  # -1: the whole dimension


def checkpoint_keys(meta_def, variables: list[str]) -> dict[str, VariableKey]:
    """variable op name -> VariableKey for each of `variables`, by the first source that knows it."""
    from_saver = _from_restore_graph(meta_def)
    from_collections = _from_collections(meta_def)
    return {v: from_saver.get(v) or from_collections.get(v) or VariableKey(v) for v in variables}


def _from_restore_graph(meta_def) -> dict[str, VariableKey]:
    nodes = graphscan.GraphIndex(meta_def.graph_def.node)
    restore = graphscan.node_name(meta_def.saver_def.restore_op_name) if meta_def.HasField("saver_def") else ""
    if restore not in nodes.nodes:
        return {}
    found = {}
    for name in nodes.ancestors([restore]):
        node = nodes.nodes[name]
        if node.op not in _ASSIGN or len(node.input) < 2:
            continue
        source = _through_identities(nodes, node.input[1])
        if source is None:
            continue
        restore_node, index = source
        entry = _restored_entry(nodes, restore_node, index)
        if entry is not None:
            found[graphscan.node_name(node.input[_ASSIGN[node.op]])] = entry
    return found


def _through_identities(nodes, ref: str, depth: int = 0) -> tuple[object, int] | None:
    """(restore node, output index) that `ref` copies, or None when it comes from anything else."""
    node = nodes.nodes.get(graphscan.node_name(ref))
    if node is None or depth > 16 or ref.startswith("^"):
        return None
    if node.op in _RESTORE:
        return node, int(ref.split(":")[1]) if ":" in ref else 0
    if node.op in _PASS and node.input:
        return _through_identities(nodes, node.input[0], depth + 1)
    return None


def _restored_entry(nodes, restore, index: int) -> VariableKey | None:
    """The key and slice output `index` of a restore op reads, from its constant inputs."""
    names = _strings(nodes, restore.input[1]) if len(restore.input) > 1 else None
    slices = _strings(nodes, restore.input[2]) if len(restore.input) > 2 else None
    if restore.op != "RestoreV2":
        index = 0  # Restore and RestoreSlice read one tensor each
    if not names or index >= len(names):
        return None
    spec = slices[index] if slices and index < len(slices) else ""
    return parse_slice(names[index], spec)


def _strings(nodes, ref: str) -> list[str] | None:
    node = nodes.nodes.get(graphscan.node_name(ref))
    while node is not None and node.op in _PASS and node.input:
        node = nodes.nodes.get(graphscan.node_name(node.input[0]))
    if node is None or node.op != "Const" or "value" not in node.attr:
        return None
    try:
        values = _tf.tf().make_ndarray(node.attr["value"].tensor)
    except (TypeError, ValueError):
        return None
    if values.dtype.kind not in "SOU":
        return None
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]


def parse_slice(key: str, spec: str) -> VariableKey:
    """A restore op's shape_and_slice ('784 10 0,262:0,10', or '' for the whole tensor) as a VariableKey."""
    parts = spec.split()
    if not parts:
        return VariableKey(key)
    if not _SLICE.match(parts[-1]) or not all(p.isdigit() for p in parts[:-1]):
        raise errors.CorruptCheckpoint(f"Variable '{key}': its saver's slice spec '{spec}' cannot be read.")
    begin, size = [], []
    for extent in parts[-1].split(":"):
        start, length = (0, -1) if extent == "-" else map(int, extent.split(","))
        begin.append(start)
        size.append(length)
    return VariableKey(key, tuple(begin), tuple(size))


def _from_collections(meta_def) -> dict[str, VariableKey]:
    found = {}
    variable_def = pb2("framework.variable_pb2").VariableDef
    for key in sorted(VARIABLE_COLLECTIONS & set(meta_def.collection_def)):
        for raw in meta_def.collection_def[key].bytes_list.value:
            proto = variable_def()
            try:
                proto.ParseFromString(raw)
            except DecodeError:  # a garbled item says nothing about any variable
                continue
            name = graphscan.node_name(proto.variable_name)
            info = proto.save_slice_info_def
            if name and info.full_name and len(info.var_offset) == len(info.var_shape):
                found.setdefault(name, VariableKey(info.full_name, tuple(info.var_offset), tuple(info.var_shape)))
            elif name:
                found.setdefault(name, VariableKey(name))
    return found
