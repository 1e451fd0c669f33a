"""Real names and kinds of an object-based checkpoint's tensors, from its own `_CHECKPOINTABLE_OBJECT_GRAPH`."""

# The tensor holds a serialized TrackableObjectGraph, decoded here without TensorFlow's pb2 modules.
# Field numbers from tensorflow/core/protobuf/trackable_object_graph.proto:
#   TrackableObjectGraph    { repeated TrackableObject nodes = 1; }
#   TrackableObject         { repeated ObjectReference children = 1; repeated SerializedTensor attributes = 2;
#                             repeated SlotVariableReference slot_variables = 3; }
#   ObjectReference         { int32 node_id = 1; string local_name = 2; }
#   SerializedTensor        { string name = 1; string full_name = 2; string checkpoint_key = 3; }
#   SlotVariableReference   { int32 original_variable_node_id = 1; string slot_name = 2;
#                             int32 slot_variable_node_id = 3; }
# Node 0 is the root object (the tf.train.Checkpoint, or a SavedModel's root).

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from ckptlib.formats.bundle.protos import _BYTES, _VARINT, _decode
from ckptlib.formats.bundle.table import FormatError
from ckptlib.formats.kinds import graph_kind
from ckptlib.formats.types import VariableInfo

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_OBJECT_GRAPH_BYTES = 64 << 20  # a large Keras model's graph is a few MB; more is not an object graph

# An object is an optimizer when the edge to it says so, when it owns slot variables, or when its children
# are an optimizer's (Keras 3: _iterations, _trainable_variables; Keras 2 OptimizerV2: iter, beta_1, decay).
_OPTIMIZER_EDGES = {"optimizer", "opt", "_optimizer", "inner_optimizer"}
_OPTIMIZER_CHILDREN = {"_iterations", "iter", "_trainable_variables", "_momentums", "_velocities"}
_HYPER_CHILDREN = {"learning_rate", "_learning_rate", "beta_1", "beta_2", "decay", "momentum", "rho", "epsilon"}


@dataclass(frozen=True)
class _Node:
    children: tuple[tuple[int, str], ...]  # (node id, edge name)
    tensors: tuple[tuple[str, str], ...]  # (full_name, checkpoint_key)
    slots: tuple[tuple[int, str, int], ...]  # (original variable node, slot name, slot variable node)


@dataclass(frozen=True)
class GraphName:
    """What the object graph says about one checkpoint key."""

    full_name: str  # '' when the graph gives none
    node: int  # the node that owns the key (an order for telling copies apart)
    reached_by: str  # "model" when reachable without passing through an optimizer, else "optimizer"
    slot_of: str | None  # the checkpoint key of the variable this is a slot of, where the graph says so
    slot_name: str | None


def parse_object_graph(buf: bytes) -> tuple[_Node, ...]:
    """The nodes of a serialized TrackableObjectGraph; FormatError when the bytes are not one."""
    nodes = []
    for raw in _decode(buf, {1: _BYTES}).get(1, ()):
        found = _decode(raw, {1: _BYTES, 2: _BYTES, 3: _BYTES})
        children = tuple(_reference(child) for child in found.get(1, ()))
        tensors = []
        for attr in found.get(2, ()):
            fields = _decode(attr, {1: _BYTES, 2: _BYTES, 3: _BYTES})
            key = _text(fields, 3)
            if key:
                tensors.append((_text(fields, 2), key))
        slots = []
        for slot in found.get(3, ()):
            fields = _decode(slot, {1: _VARINT, 2: _BYTES, 3: _VARINT})
            slots.append((fields.get(1, [0])[-1], _text(fields, 2), fields.get(3, [0])[-1]))
        nodes.append(_Node(children, tuple(tensors), tuple(slots)))
    count = len(nodes)
    for node in nodes:
        for target in [c for c, _ in node.children] + [s[0] for s in node.slots] + [s[2] for s in node.slots]:
            if not 0 <= target < count:
                raise FormatError(f"object graph refers to node {target} of {count}")
    if not count:
        raise FormatError("object graph has no nodes")
    return tuple(nodes)


def _reference(buf: bytes) -> tuple[int, str]:
    fields = _decode(buf, {1: _VARINT, 2: _BYTES})
    return fields.get(1, [0])[-1], _text(fields, 2)


def _text(fields: dict[int, list], number: int) -> str:
    values = fields.get(number)
    if not values:
        return ""
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"object graph field {number} is not UTF-8 text") from None


def graph_names(buf: bytes) -> dict[str, GraphName]:
    """checkpoint key -> GraphName for every tensor the object graph lists."""
    nodes = parse_object_graph(buf)
    optimizers = _optimizer_nodes(nodes)
    model_side = _reachable(nodes, skip=optimizers)
    slot_of: dict[int, tuple[int, str]] = {}
    for node in nodes:
        for original, slot_name, slot_node in node.slots:
            slot_of[slot_node] = (original, slot_name)
    names = {}
    for node_id, node in enumerate(nodes):
        for full_name, key in node.tensors:
            original, slot_name = slot_of.get(node_id, (None, None))
            original_key = nodes[original].tensors[0][1] if original is not None and nodes[original].tensors else None
            side = "model" if node_id in model_side and original is None else "optimizer"
            names.setdefault(key, GraphName(full_name, node_id, side, original_key, slot_name))
    return names


def _optimizer_nodes(nodes: tuple[_Node, ...]) -> set[int]:
    found = set()
    for node_id, node in enumerate(nodes):
        edges = {name for _, name in node.children}
        if node.slots or edges & _OPTIMIZER_CHILDREN or len(edges & _HYPER_CHILDREN) >= 2:
            found.add(node_id)
        found.update(child for child, name in node.children if name in _OPTIMIZER_EDGES)
    found.discard(0)  # the root holds everything; it is never the optimizer itself
    return found


def _reachable(nodes: tuple[_Node, ...], skip: set[int]) -> set[int]:
    """Nodes reachable from the root without entering a node of `skip` (breadth first, cycles allowed)."""
    seen, queue = {0}, deque([0])
    while queue:
        for child, _ in nodes[queue.popleft()].children:
            if child not in seen and child not in skip:
                seen.add(child)
                queue.append(child)
    return seen


def unique_names(names: dict[str, GraphName], fingerprint: dict[str, tuple]) -> tuple[dict[str, str], dict[str, str]]:
    """(key -> display name, key -> key of the first copy) from the graph's full names.

    A full name is a display name only when it names one tensor. Keys that share a full name and hold the
    same bytes (`fingerprint`: dtype, shape, checksum) are copies — a SavedModel stores each variable under
    `variables/N` and `_all_variables/M` — and the later ones (by node) point at the first. Keys that share a
    full name but differ (two Keras 3 layers both naming their weight `w`) get no display name: the raw key
    is the only unambiguous one.
    """
    groups: dict[str, list[str]] = {}
    for key, name in names.items():
        # A plain tf.Variable's full name is only its own name ('w', or 'Variable' when unnamed) and the key's
        # object path says more; Keras 3 names the whole path (`sequential/hidden/kernel`), which is kept.
        if "/" in name.full_name and key in fingerprint:
            groups.setdefault(name.full_name, []).append(key)
    display, copies = {}, {}
    for full_name, keys in groups.items():
        keys.sort(key=lambda k: (names[k].node, k))
        if len(keys) > 1 and len({fingerprint[k] for k in keys}) > 1:
            continue
        display[keys[0]] = full_name
        for key in keys[1:]:
            display[key] = full_name
            copies[key] = keys[0]
    return display, copies


def with_graph_names(infos: tuple[VariableInfo, ...], graph_bytes: bytes,
                     checksums: dict[str, int | None]) -> tuple[VariableInfo, ...]:
    """`infos` with display names, kinds, slots and copies from the object graph (FormatError if it is bad)."""
    names = graph_names(graph_bytes)
    by_key = {info.name: info for info in infos}
    fingerprint = {key: (info.dtype, info.shape, checksums.get(key) if checksums.get(key) is not None else key)
                   for key, info in by_key.items()}
    display, copies = unique_names(names, fingerprint)
    keras_slots = _keras_slots(display, names)
    named = []
    for info in infos:
        graph = names.get(info.name)
        if graph is None:
            named.append(info)
            continue
        slot = graph.slot_of and (display.get(graph.slot_of) or graph.slot_of.split("/.ATTRIBUTES/")[0])
        slot = slot or keras_slots.get(info.name)
        named.append(replace(
            info, full_name=display.get(info.name), slot_of=slot, copy_of=copies.get(info.name),
            kind=graph_kind(info.kind, display.get(info.name, info.name), info.dtype, info.shape, graph.reached_by)))
    return tuple(named)


def _keras_slots(display: dict[str, str], names: dict[str, GraphName]) -> dict[str, str]:
    """Keras 3 optimizer variables -> the weight they track, from Keras' naming rule.

    Keras 3 keeps no TF slot references: Adam's moment of `sequential/hidden/kernel` is the optimizer variable
    `adam/sequential_hidden_kernel_momentum` (keras/src/optimizers/base_optimizer.py add_variable_from_reference:
    the reference's path with '/' replaced by '_', then the slot's name). Only exact, unambiguous matches count.
    """
    flat: dict[str, str | None] = {}
    for key, name in display.items():
        if names[key].reached_by == "model":
            token = name.replace("/", "_")
            flat[token] = None if token in flat else name
    found = {}
    for key, name in display.items():
        if names[key].reached_by != "optimizer" or "/" not in name:
            continue
        stem = name.split("/", 1)[1]
        for cut in range(len(stem) - 1, 0, -1):
            if stem[cut] == "_" and flat.get(stem[:cut]):
                found[key] = flat[stem[:cut]]
                break
    return found
