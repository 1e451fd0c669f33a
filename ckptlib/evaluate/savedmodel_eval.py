"""Freeze one signature of a SavedModel in memory, from its saved_model.pb and ckptlib's reader of its variables.

    >>> frozen = freeze_signature("export/1", "serving_default")
    >>> frozen.input_tensor, frozen.output_tensor, frozen.num_variables
    ('serving_default_pixels:0', 'StatefulPartitionedCall_1:0', 4)

tf.saved_model.load is never called: it would run the SavedModel's own restore function, and a hostile
one could read another checkpoint or write files from there. Instead the serving meta graph is parsed,
the signature's outputs are cut out of its top-level graph (the placeholders, the variable handles the
signature function captures, the call), the allowlist is checked on that and on every function it calls,
and each captured handle becomes a constant holding the value ckptlib's own reader finds under the
checkpoint key the object graph gives it (constfreeze.py does the rewrite, as for a checkpoint). The
restore and save functions are not reached from a signature, so they are pruned, never vetted, never run.
"""

# Formats: tensorflow/core/protobuf/saved_model.proto, meta_graph.proto (SignatureDef, TensorInfo),
# saved_object_graph.proto (SavedConcreteFunction.bound_inputs: the object graph nodes a function captures,
# in the order of its last input arguments), trackable_object_graph.proto (the variables bundle's own graph).

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace

from ckptlib import _tf, errors, storage
from ckptlib.errors import BadGraphIO
from ckptlib.evaluate import constfreeze, opsafety, plan, varkeys
from ckptlib.formats import open_checkpoint
from ckptlib.formats.objectgraph import OBJECT_GRAPH_KEY, parse_object_graph
from ckptlib.formats.savedmodel_files import GRAPH_FILE, VARIABLES
from ckptlib.graph import functions, load, metagraph
from ckptlib.graph import scan as graphscan

DEFAULT_SIGNATURE = "serving_default"
_HANDLES = frozenset({"VarHandleOp", "VariableV2", "Variable"})
_FLOATS = frozenset({1, 2, 14, 19})  # DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF (types.proto)
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass(frozen=True)
class FrozenSignature:
    """A signature as a frozen GraphDef, and the tensors behind the signature keys chosen as input and output."""

    graph_def: object
    folder: str
    signature: str
    input_key: str
    input_tensor: str
    output_key: str
    output_tensor: str
    num_variables: int
    placeholders: tuple[tuple[str, str], ...] = ()  # (signature input key, its placeholder op)

    def feeds_by_op(self, feeds: dict) -> dict:
        """--feed values named by signature key (or already by placeholder) -> by placeholder op."""
        ops = dict(self.placeholders)
        return {ops.get(name, name): value for name, value in feeds.items()}

    def feeds_by_key(self, fed) -> tuple[tuple[str, object], ...]:
        """(placeholder op, value) pairs as reported -> (signature key, value), where a key names it."""
        keys = {op: key for key, op in self.placeholders}
        return tuple((keys.get(name, name), value) for name, value in fed)


def saved_model_folder(path: str) -> str | None:
    """The SavedModel folder `path` names (the folder or its saved_model.pb), else None."""
    path = storage.absolute(str(path))
    if path.rsplit("/", 1)[-1] == GRAPH_FILE and storage.isfile(path):
        return path.rsplit("/", 1)[0]
    return path if storage.isdir(path) and storage.isfile(storage.join(path, GRAPH_FILE)) else None


def require_folder(path: str) -> str:
    """saved_model_folder(path), or a one-line error for a folder that is no SavedModel."""
    folder = saved_model_folder(path)
    if folder is None:
        raise errors.NotFound(f"Cannot evaluate '{storage.absolute(str(path))}': a folder without "
                              f"{GRAPH_FILE} (eval takes a frozen .pb or a SavedModel folder).")
    return folder


def signature_keys(meta) -> list[str]:
    """The model's signatures, 'serving_default' first (the loader's own, '__saved_model_init_op', left out)."""
    return sorted((k for k in meta.signature_def if not k.startswith("__")), key=lambda k: (k != DEFAULT_SIGNATURE, k))


def freeze_signature(path: str, signature: str = DEFAULT_SIGNATURE, input_key: str | None = None,
                     output_key: str | None = None) -> FrozenSignature:
    """The frozen graph of `signature` and its chosen input and output (see the module docstring)."""
    folder = require_folder(path)
    meta = _serving_meta(folder)
    keys = signature_keys(meta)
    if signature not in meta.signature_def or signature.startswith("__"):
        raise errors.NotFound(f"Cannot evaluate SavedModel '{folder}': it has no signature '{signature}'; "
                              f"its signatures: {', '.join(keys) or 'none'}.")
    sig = meta.signature_def[signature]
    where = f"signature '{signature}' of SavedModel '{folder}'"
    in_key = _choose_input(sig, input_key, where)
    out_key = _choose_output(sig, output_key, where)
    index = graphscan.GraphIndex(meta.graph_def.node)
    outputs = (graphscan.node_name(sig.outputs[out_key].name),)
    for name in outputs:
        if name not in index.nodes:
            raise errors.CorruptCheckpoint(f"Cannot evaluate {where}: its output '{out_key}' names op '{name}', "
                                           "which the graph does not hold.")
    kept = index.ancestors(outputs)
    opsafety.check_graph(meta.graph_def, folder, opsafety.COMPUTE_OPS | opsafety.VARIABLE_OPS,
                         [index.nodes[n] for n in sorted(kept)], action="evaluate")
    handles = sorted(n for n in kept if index.nodes[n].op in _HANDLES)
    keys_of = _checkpoint_keys(folder, meta, index, kept, handles)
    values = constfreeze.read_values(storage.join(folder, VARIABLES), index, handles, keys_of) \
        if handles else {}
    frozen = constfreeze.to_constants(meta.graph_def, outputs, values, index)
    for node in frozen.node:
        node.device = ""
    placeholders = tuple((k, graphscan.node_name(sig.inputs[k].name)) for k in sorted(sig.inputs))
    return FrozenSignature(frozen, folder, signature, in_key, sig.inputs[in_key].name, out_key,
                           sig.outputs[out_key].name, len(handles), placeholders)


def _serving_meta(folder: str):
    found = storage.join(folder, GRAPH_FILE)
    saved = load.parse_saved_model(found, metagraph.read_bytes(found, "SavedModel"))
    if saved is None:
        raise errors.CorruptCheckpoint(f"Cannot read SavedModel '{found}': the file is empty, truncated or not a "
                                       "SavedModel proto.")
    return next((m for m in saved.meta_graphs if load.SERVE_TAG in m.meta_info_def.tags), saved.meta_graphs[0])


def _shape(info):
    return _tf.tf().TensorShape(info.tensor_shape)


def _describe(key: str, info) -> str:
    dims = _shape(info)
    shape = "?" if dims.rank is None else str([d if d is not None else None for d in dims.as_list()])
    return f"'{key}' ({_tf.tf().dtypes.as_dtype(info.dtype).name} {shape})"


def _takes_mnist(info) -> bool:
    return info.dtype in _FLOATS and plan.example_shape(SimpleNamespace(shape=_shape(info))) is not None


def _choose_input(sig, given: str | None, where: str) -> str:
    """--input's key, else the one input that takes 784 float pixels (or 28x28[x1]) per image."""
    listed = ", ".join(_describe(k, sig.inputs[k]) for k in sorted(sig.inputs)) or "none"
    if given:
        if given not in sig.inputs:
            raise errors.NodeNotFound(f"Cannot evaluate {where}: it has no input '{given}'; its inputs: {listed}.")
        if not _takes_mnist(sig.inputs[given]):
            raise BadGraphIO(f"Cannot evaluate {where}: input {_describe(given, sig.inputs[given])} cannot take "
                             "MNIST images (784 float pixels, or 28x28[x1], per image).")
        return given
    fits = [k for k in sorted(sig.inputs) if _takes_mnist(sig.inputs[k])]
    if len(fits) != 1:
        problem = "several inputs could take the images; name one with --input" if fits else \
            "no input takes MNIST images (784 float pixels, or 28x28[x1], per image)"
        raise BadGraphIO(f"Cannot evaluate {where}: {problem}; its inputs: {listed}.")
    return fits[0]


def _usable_output(info) -> tuple[int, ...] | None:
    """A sort key for an output fit to score (10 float scores first, then integer class ids), else None."""
    dims = _shape(info)
    if dims.rank is None:
        return None
    if info.dtype in _FLOATS and dims.rank == 2 and dims.as_list()[1] in (None, 10):
        return (0 if dims.as_list()[1] == 10 else 1,)
    integer = _tf.tf().dtypes.as_dtype(info.dtype).is_integer
    return (2,) if integer and dims.rank == 1 else None


def _choose_output(sig, given: str | None, where: str) -> str:
    """--output's key, else the only output, else the one with 10 values per image (then class ids)."""
    listed = ", ".join(_describe(k, sig.outputs[k]) for k in sorted(sig.outputs)) or "none"
    if given:
        if given not in sig.outputs:
            raise errors.NodeNotFound(f"Cannot evaluate {where}: it has no output '{given}'; its outputs: {listed}.")
        return given
    if len(sig.outputs) == 1:
        return next(iter(sig.outputs))
    ranked = sorted((rank, k) for k in sig.outputs if (rank := _usable_output(sig.outputs[k])) is not None)
    if not ranked or (len(ranked) > 1 and ranked[0][0] == ranked[1][0]):
        problem = "several outputs could be the scores; name one with --output" if ranked else \
            "no output gives 10 scores or class ids per image"
        raise BadGraphIO(f"Cannot evaluate {where}: {problem}; its outputs: {listed}.")
    return ranked[0][1]


def _checkpoint_keys(folder: str, meta, index, kept, handles: list[str]) -> dict[str, varkeys.VariableKey]:
    """variable handle op -> its key in the variables bundle: through the functions' bound inputs and the
    object graph for a TF2 SavedModel; through the saver's restore graph (never run) for a TF1 one."""
    if not handles:
        return {}
    if not meta.HasField("object_graph_def") or not meta.object_graph_def.nodes:
        return varkeys.checkpoint_keys(meta, handles)
    saved_nodes = meta.object_graph_def.nodes
    stored = _stored_graph(folder)
    stored_ids = _paths([[(c.node_id, c.local_name) for c in n.children] for n in saved_nodes], stored)
    captured = _captured(meta, index, kept)
    found = {}
    for name in handles:
        node_id = captured.get(name)
        key = None
        if node_id is not None and stored_ids.get(node_id) is not None:
            key = next((k for _, k in stored[stored_ids[node_id]].tensors if k.endswith(_VALUE_SUFFIX)), None)
        if key is None:
            raise errors.VariableNotFound(f"Cannot evaluate SavedModel '{folder}': variable '{name}' that the "
                                          "signature reads has no value in its object graph.")
        found[name] = varkeys.VariableKey(key)
    return found


def _stored_graph(folder: str):
    ckpt = open_checkpoint(storage.join(folder, VARIABLES))
    raw = ckpt.read(OBJECT_GRAPH_KEY)
    raw = raw.item() if hasattr(raw, "item") else raw
    return parse_object_graph(raw)


def _paths(saved_children: list, stored) -> dict[int, int]:
    """SavedObjectGraph node id -> node id in the bundle's object graph, matched by the path of edge names
    from the root (the two graphs list the same objects; the SavedModel's also has functions and signatures)."""
    def walk(children_of) -> dict[tuple[str, ...], int]:
        found, seen, todo = {(): 0}, {0}, deque([((), 0)])
        while todo:
            path, node = todo.popleft()
            for child, edge in children_of(node):
                if child not in seen:  # the first (shortest) path to each object
                    seen.add(child)
                    found[path + (edge,)] = child
                    todo.append((path + (edge,), child))
        return found

    saved = walk(lambda n: saved_children[n] if n < len(saved_children) else ())
    theirs = walk(lambda n: stored[n].children if n < len(stored) else ())
    return {node: theirs[path] for path, node in saved.items() if path in theirs}


def _captured(meta, index, kept) -> dict[str, int]:
    """Variable handle op -> object graph node, from each kept call: its last inputs are the function's captures."""
    concrete = meta.object_graph_def.concrete_functions
    library = functions.library(meta.graph_def)
    found: dict[str, int] = {}
    for name in kept:
        node = index.nodes[name]
        func = functions.callee(node, library)
        if func is None or func not in concrete:
            continue
        bound = list(concrete[func].bound_inputs)
        data = [ref for ref in node.input if not ref.startswith("^")]
        for ref, node_id in zip(data[len(data) - len(bound):], bound):
            found.setdefault(graphscan.node_name(ref), node_id)
    return found
