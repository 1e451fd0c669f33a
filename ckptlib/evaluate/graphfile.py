"""Read a frozen `.pb` for evaluation, say precisely what it is when it is not one, and vet it before it runs."""

from __future__ import annotations

import os
import re

from google.protobuf import text_format, unknown_fields

from ckptlib import _tf, errors, storage
from ckptlib.errors import NotFrozen
from ckptlib.evaluate import opsafety, queues
from ckptlib.graph import metagraph
from ckptlib.graph import scan as graphscan
from ckptlib.graph.collectiondefs import pb2

_VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "AutoReloadVariable"})
_PLACEHOLDERS = frozenset({"Placeholder", "PlaceholderV2"})
# A text-format GraphDef opens with one of its fields (comments aside): tensorflow/core/framework/graph.proto.
_TEXT_GRAPH = re.compile(rb"\A(\s*#[^\n]*\n)*\s*(node|library|versions|version)\s*\{")


def load_graph_def(path: str):
    """Parse a frozen `.pb` into a GraphDef, or raise a CkptError naming the file and the problem."""
    path = storage.absolute(str(path))
    data = metagraph.read_bytes(path, "frozen graph")
    if not data:
        raise errors.NotACheckpoint(f"Cannot read frozen graph '{path}': the file is empty.")
    tf = _tf.tf()
    graph_def = tf.compat.v1.GraphDef()
    problem = None
    try:
        with _tf.map_tf_errors(path, "read frozen graph"):
            graph_def.ParseFromString(data)
    except errors.CorruptCheckpoint as exc:
        problem = exc
    if problem is None and (len(unknown_fields.UnknownFieldSet(graph_def)) or not graph_def.node
                            or not all(n.name and n.op for n in graph_def.node)):
        problem = errors.NotACheckpoint(f"Cannot read frozen graph '{path}': not a GraphDef (no nodes, or fields "
                                        "a GraphDef never has).")
    if problem is not None:
        _raise_if_text(path, data)
        _raise_if_saved_model(path, data)
        _raise_if_meta(path)
        raise problem
    names = {n.name for n in graph_def.node}
    for node in graph_def.node:
        for ref in node.input:
            if graphscan.node_name(ref) not in names:
                raise errors.CorruptCheckpoint(f"Cannot read frozen graph '{path}': node '{node.name}' reads '{ref}', "
                                               "which is not in the graph (truncated or garbled).")
    return graph_def


def _raise_if_text(path: str, data: bytes) -> None:
    if not _TEXT_GRAPH.match(data[:4096]):
        return
    tf = _tf.tf()
    try:
        text_format.Parse(data.decode("utf-8"), tf.compat.v1.GraphDef())
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise errors.NotACheckpoint(f"Cannot read frozen graph '{path}': a text-format GraphDef that does not parse "
                                    f"({str(exc).splitlines()[0]}).") from None
    raise errors.UnsupportedFormat(
        f"Cannot read frozen graph '{path}': a text-format GraphDef: ckptlib evaluates binary GraphDefs; write it "
        "with tf.io.write_graph(graph_def, folder, 'model.pb', as_text=False).")


def _raise_if_saved_model(path: str, data: bytes) -> None:
    saved = pb2("protobuf.saved_model_pb2").SavedModel()
    try:
        with _tf.map_tf_errors(path, "read SavedModel"):
            saved.ParseFromString(data)
    except errors.CkptError:
        return
    if saved.meta_graphs and not len(unknown_fields.UnknownFieldSet(saved)) and saved.meta_graphs[0].graph_def.node:
        raise errors.UnsupportedFormat(
            f"Cannot evaluate '{path}': a SavedModel's saved_model.pb: pass its folder ('{os.path.dirname(path)}'), "
            "not the file inside it; its variables live beside it and a lone saved_model.pb is not a frozen graph.")


def _raise_if_meta(path: str) -> None:
    try:
        metagraph.load_meta_graph_def(path)
    except errors.CkptError:
        return
    raise errors.NotACheckpoint(f"Cannot evaluate '{path}': it is a meta graph (.meta), not a frozen GraphDef; "
                                "freeze it with its checkpoint first (`freeze CKPT --outputs … --out model.pb`).")


def prepare(graph_def):
    """(a copy fit to run, {'dequeue:i': placeholder}): input queues cut off (queues.py) and placeholders
    whose shape lives only in `_output_shapes` (TF 1.0 graphs) given that shape. The caller's proto is kept."""
    local, cut = queues.cut_queues(graph_def)
    if local is graph_def:
        local = type(graph_def)()
        local.CopyFrom(graph_def)
    for node in local.node:
        node.device = ""  # pins to devices this machine may lack; the evaluation picks the device
        if node.op in _PLACEHOLDERS:
            _shape_from_output_shapes(node)
    return local, cut


def _shape_from_output_shapes(node) -> None:
    # TF 1.0 wrote an empty `shape` (or none) for placeholders and kept the real one in `_output_shapes`;
    # TF 2.21 reads an empty shape as a scalar, which aborted on the first batch of images.
    declared = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else []
    if not declared or declared[0].unknown_rank or not declared[0].dim:
        return
    shape = node.attr["shape"].shape if "shape" in node.attr else None
    if shape is None or shape.unknown_rank or not shape.dim:
        node.attr["shape"].shape.CopyFrom(declared[0])


def check_runnable(graph_def, source: str) -> None:
    """Frozen (no variables) and pure computation (opsafety's allowlist), or a CkptError saying why not."""
    variables = sorted(n.name for n in graph_def.node if n.op in _VARIABLE_OPS)
    if variables:
        raise NotFrozen(f"Cannot evaluate '{source}': it still holds variables ({', '.join(variables[:5])}); "
                        "freeze it first.")
    opsafety.check_graph(graph_def, source)
