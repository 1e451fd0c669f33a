"""The bodies of a graph's library functions as graphs of their own: what a TF2 SavedModel really computes.

A TF2 SavedModel's top-level GraphDef mostly calls functions (StatefulPartitionedCall nodes): the model's ops
live in the FunctionDefs of the graph's library. In a body, a node input is `node:out_arg:index` (the
index-th tensor of the op's output argument `out_arg`), `arg` (one of the function's input arguments) or
`^node`; here they become GraphDef form (`node:port`, `node`, `^node`), each input argument an `_Arg` node
named after it and each return value a `_Retval` node, as TensorFlow does when it instantiates a function.
The picture, its layout and the graph diff then read a body like any graph.
"""

# Formats: tensorflow/core/framework/function.proto (FunctionDef: signature, node_def, ret, arg_attr),
# op_def.proto (the output arguments whose sizes give a tensor's flat port).

from __future__ import annotations

import difflib
import importlib
from dataclasses import replace

from ckptlib import _tf, errors
from ckptlib.graph.collectiondefs import pb2
from ckptlib.graph.picture_types import FunctionInfo, LoadedGraph
from ckptlib.graph.scan import node_name

CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_PASS_OPS = frozenset({"Identity", "IdentityN", "NoOp"})  # what a signature wrapper holds besides its call
DT_RESOURCE = 20  # a variable's handle: an argument that is a weight, not an input
CLOSE_SHOWN = 3


def library(graph_def) -> dict:
    """Function name -> FunctionDef of a GraphDef's library."""
    return {f.signature.name: f for f in graph_def.library.function}


def callee(node, functions: dict) -> str | None:
    """The library function a node calls: a (Stateful)PartitionedCall's `f`, or the function as the op."""
    if node.op in functions:
        return node.op
    if "f" in node.attr and node.attr["f"].func.name in functions:
        return node.attr["f"].func.name
    return None


def through_wrappers(name: str, functions: dict) -> str:
    """The function a chain of thin wrappers ends in: a body holding one call and only Identity and NoOp
    besides it (tf.saved_model.save's signature wrappers) stands for the function it calls."""
    seen = set()
    while name not in seen:
        seen.add(name)
        work = [n for n in functions[name].node_def if n.op not in _PASS_OPS]
        inner = callee(work[0], functions) if len(work) == 1 else None
        if inner is None:
            break
        name = inner
    return name


def signature_functions(meta, functions: dict) -> tuple[tuple[str, str], ...]:
    """(signature key, the function behind it) for each signature of a meta graph whose outputs a function
    call computes, 'serving_default' first; the loader's own signatures ('__saved_model_init_op') left out."""
    nodes = {n.name: n for n in meta.graph_def.node}
    keys = sorted((k for k in meta.signature_def if not k.startswith("__")), key=lambda k: (k != "serving_default", k))
    found = []
    for key in keys:
        outputs = meta.signature_def[key].outputs
        for out in sorted(outputs):
            node = nodes.get(node_name(outputs[out].name))
            name = callee(node, functions) if node is not None else None
            if name is not None:
                found.append((key, through_wrappers(name, functions)))
                break
    return tuple(found)


def functions_of(graph: LoadedGraph) -> list[FunctionInfo]:
    """The graph's library functions: those behind signatures first (labelled with the signatures' keys,
    'serving_default → __inference___call___112'), then the others by name ('name (2 in → 1 out)')."""
    defs = {f.signature.name: f for f in graph.functions}
    keys: dict[str, list[str]] = {}
    for key, name in graph.signature_functions:
        keys.setdefault(name, []).append(key)
    found = [FunctionInfo(name, len(defs[name].node_def), f"{', '.join(sigs)} → {name}")
             for name, sigs in keys.items() if name in defs]
    for name in sorted(set(defs) - set(keys)):
        sig = defs[name].signature
        found.append(FunctionInfo(name, len(defs[name].node_def),
                                  f"{name} ({len(sig.input_arg)} in → {len(sig.output_arg)} out)"))
    return found


def find_function(graph: LoadedGraph, name: str):
    """The FunctionDef called `name`, or behind the signature `name` ('serving_default'); else a one-line
    NotFound naming the file and a few close names."""
    defs = {f.signature.name: f for f in graph.functions}
    if name in defs:
        return defs[name]
    by_key = dict(graph.signature_functions)
    if by_key.get(name) in defs:
        return defs[by_key[name]]
    if not defs:
        raise errors.NotFound(f"Cannot read function '{name}' of graph '{graph.path}': the graph has no function "
                              "library.")
    known = [f.name for f in functions_of(graph)]
    close = difflib.get_close_matches(name, list(by_key) + known, n=CLOSE_SHOWN, cutoff=0.5)
    hint = "close names: " if close else f"it has {len(known)}, e.g. "
    shown = close or list(by_key)[:1] + known[:CLOSE_SHOWN]
    raise errors.NotFound(f"Cannot read function '{name}' of graph '{graph.path}': no such function or "
                          f"signature; {hint}{', '.join(dict.fromkeys(shown))}.")


def function_graph(graph: LoadedGraph, name: str) -> LoadedGraph:
    """The body of library function `name` (or of the function behind signature `name`) as a LoadedGraph:
    its arguments are `_Arg` nodes (the suggested inputs: those that are not variable handles), its return
    values `_Retval` nodes (the suggested outputs), its inputs in GraphDef form."""
    fdef = find_function(graph, name)
    defs = {f.signature.name: f for f in graph.functions}
    nodes, rets = body_nodes(fdef, defs)
    args = fdef.signature.input_arg
    inputs = tuple(a.name for a in args if a.type != DT_RESOURCE) or tuple(a.name for a in args)
    return replace(graph, nodes=nodes, function=fdef.signature.name, suggested_inputs=inputs, suggested_outputs=rets)


def body_nodes(fdef, functions: dict) -> tuple[tuple, tuple[str, ...]]:
    """A FunctionDef's body as GraphDef NodeDefs (fresh copies: the library's protos stay as read): `_Arg`
    nodes, its node_defs with their inputs rewritten, `_Retval` nodes; and the `_Retval` nodes' names."""
    node_class = pb2("framework.node_def_pb2").NodeDef
    sig = fdef.signature
    ports = _Ports(fdef, functions)
    nodes = []
    for index, arg in enumerate(sig.input_arg):
        node = node_class(name=arg.name, op="_Arg")
        if index in fdef.arg_attr:  # '_user_specified_name', '_output_shapes'
            for key, value in fdef.arg_attr[index].attr.items():
                node.attr[key].CopyFrom(value)
        _typed(node, arg.type, index)
        if arg.handle_data:  # a variable's handle: what it holds, as TensorFlow writes it on an _Arg
            node.attr["_handle_dtypes"].list.type.extend(h.dtype for h in arg.handle_data)
            node.attr["_handle_shapes"].list.shape.extend(h.shape for h in arg.handle_data)
        nodes.append(node)
    for body in fdef.node_def:
        node = node_class()
        node.CopyFrom(body)
        del node.input[:]
        node.input.extend(ports.graph_ref(ref) for ref in body.input)
        nodes.append(node)
    taken = {n.name for n in nodes}
    rets = []
    for index, out in enumerate(sig.output_arg):
        name = out.name
        while name in taken:  # a return value named like a node of the body
            name += "_RetVal"
        taken.add(name)
        node = node_class(name=name, op="_Retval")
        if out.name in fdef.ret:
            node.input.append(ports.graph_ref(fdef.ret[out.name]))
        _typed(node, out.type, index)
        nodes.append(node)
        rets.append(name)
    return tuple(nodes), tuple(rets)


def _typed(node, dtype: int, index: int) -> None:
    if dtype:
        node.attr["T"].type = dtype
    node.attr["index"].i = index


class _Ports:
    """`node:out_arg:index` -> `node:port`: the port is the output argument's offset among the op's outputs
    (from its OpDef, sizes from the node's attrs) plus the index."""

    def __init__(self, fdef, functions: dict):
        self.nodes = {n.name: n for n in fdef.node_def}
        self.functions = functions
        self.offsets: dict[str, dict[str, int]] = {}
        self.refs = [r for n in fdef.node_def for r in n.input] + list(fdef.ret.values())

    def graph_ref(self, ref: str) -> str:
        if ref.startswith("^"):
            return ref
        parts = ref.split(":")
        if len(parts) != 3:  # an argument ('x'), or an item of a list argument ('xs:1')
            return ref
        name, out_arg, index = parts
        if name not in self.nodes:
            return ref  # not a node of the body: left for the reference check to report
        offsets = self.offsets.get(name)
        if offsets is None:
            offsets = self.offsets[name] = self._offsets(self.nodes[name])
        port = offsets.get(out_arg, 0) + int(index)
        return name if port == 0 else f"{name}:{port}"

    def _offsets(self, node) -> dict[str, int]:
        op_def = self.functions[node.op].signature if node.op in self.functions else _registered(node.op)
        if op_def is None:
            return self._seen_offsets(node.name)
        found, start = {}, 0
        for arg in op_def.output_arg:
            found[arg.name] = start
            start += _arg_size(node, op_def, arg)
        return found

    def _seen_offsets(self, name: str) -> dict[str, int]:
        """An op TensorFlow does not know (a custom op): its output arguments in the order the body reads
        them, each as wide as the highest index read."""
        widths: dict[str, int] = {}
        for ref in self.refs:
            parts = ref.split(":")
            if len(parts) == 3 and parts[0] == name and parts[2].isdigit():
                widths[parts[1]] = max(widths.get(parts[1], 0), int(parts[2]) + 1)
        found, start = {}, 0
        for out_arg, width in widths.items():
            found[out_arg] = start
            start += width
        return found


def _arg_size(node, op_def, arg) -> int:
    """How many tensors an output argument holds: `number_attr` of them, one per `type_list_attr` type, or 1."""
    attr = arg.number_attr or arg.type_list_attr
    if not attr:
        return 1
    value = node.attr[attr] if attr in node.attr else next(
        (a.default_value for a in op_def.attr if a.name == attr), None)
    if value is None:
        return 1
    return value.i if arg.number_attr else len(value.list.type)


def _registered(op: str):
    """TensorFlow's OpDef of a registered op, or None (a custom op, or a TensorFlow without the registry)."""
    _tf.tf()  # its banners silenced; the registry module is part of what it imports
    try:
        registry = importlib.import_module("tensorflow.python.framework.op_def_registry")
        return registry.get(op)
    except (ImportError, AttributeError):
        return None
