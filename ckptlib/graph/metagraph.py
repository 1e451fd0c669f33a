"""Read a `.meta` MetaGraphDef: collections, ops, node_defs, devices, saver and signatures.

    >>> info = read_meta_graph("run/model.ckpt-1000.meta")   # or the prefix, or the run folder
    >>> [o.name for o in info.suggested_outputs][:2], info.num_ops
    (['logits/logits', 'prediction/probabilities'], 412)
    >>> dict(describe_node("run/model.ckpt-1000.meta", "input").attrs)["shape"]
    [None, 784]

Formats: tensorflow/core/protobuf/meta_graph.proto (MetaGraphDef, SignatureDef, TensorInfo), saver.proto
(SaverDef); collections are decoded by metacollections.py.
"""

from __future__ import annotations

import collections

from google.protobuf import unknown_fields

from ckptlib import _tf, errors, storage
from ckptlib.errors import NodeNotFound
from ckptlib.formats.v2bundle import strip_suffix
from ckptlib.graph import nodeattrs, outputs
from ckptlib.graph import scan as graphscan
from ckptlib.graph.collectiondefs import decode_collection, pb2
from ckptlib.graph.types import GraphOp, MetaGraphInfo, NodeDefInfo, SaverInfo, SignatureInfo, SignatureTensor
from ckptlib.runs.resolve import resolve_prefix

# Tags of MetaGraphDef fields 1-7 (all length-delimited): a serialized .meta starts with one of them.
_META_FIRST_BYTES = frozenset({0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A})


def load_meta_graph_def(path: str):
    """Parse a `.meta` file into a MetaGraphDef proto, or raise a CkptError naming the file."""
    path = storage.absolute(str(path))
    data = read_bytes(path, "meta graph")
    if not data:
        raise errors.NotACheckpoint(f"Cannot read meta graph '{path}': the file is empty.")
    tf = _tf.tf()
    meta = tf.compat.v1.MetaGraphDef()
    try:
        with _tf.map_tf_errors(path, "read meta graph"):
            meta.ParseFromString(data)
    except errors.CorruptCheckpoint as exc:
        _raise_if_graph_def(tf, path, data)
        if data[0] not in _META_FIRST_BYTES:
            raise errors.NotACheckpoint(
                f"Cannot read meta graph '{path}': not a MetaGraphDef (it starts with byte 0x{data[0]:02x}, a .meta "
                "starts with its meta_info_def or graph_def field).") from None
        raise errors.CorruptCheckpoint(f"Cannot read meta graph '{path}': the file is truncated or garbled "
                                       f"({exc.__cause__}).") from exc
    if len(unknown_fields.UnknownFieldSet(meta)) or not meta.graph_def.node:
        _raise_if_graph_def(tf, path, data)
        raise errors.NotACheckpoint(
            f"Cannot read meta graph '{path}': not a MetaGraphDef (no graph, or fields a .meta never has).")
    _check_nodes(path, meta.graph_def.node)
    return meta


_MAX_GRAPH_BYTES = 2 << 30  # protobuf's message limit


def read_bytes(path: str, what: str) -> bytes:
    """A whole graph file, local or at a URL (one request), or a CkptError naming it."""
    try:  # regular files only (not a FIFO, nor a link to /dev/zero), never more than protobuf's limit
        if storage.isdir(path):
            raise IsADirectoryError(21, "Is a directory", path)
        return storage.read_bytes(path, _MAX_GRAPH_BYTES)
    except FileNotFoundError:
        raise errors.NotFound(f"Cannot read {what} '{path}': no such file.") from None
    except IsADirectoryError:
        raise errors.NotACheckpoint(f"Cannot read {what} '{path}': it is a folder, not a file.") from None
    except ValueError:
        raise errors.UnsupportedFormat(f"Cannot read {what} '{path}': larger than protobuf's 2 GB limit.") from None
    except OSError as exc:
        raise errors.CkptError(f"Cannot read {what} '{path}': {exc.strerror or exc}.") from exc


def _raise_if_graph_def(tf, path: str, data: bytes) -> None:
    """A frozen .pb given where a .meta is expected deserves its own message."""
    graph = tf.compat.v1.GraphDef()
    try:
        with _tf.map_tf_errors(path, "read graph"):
            graph.ParseFromString(data)
    except errors.CkptError:
        return
    if graph.node and all(n.name and n.op for n in graph.node) and not len(unknown_fields.UnknownFieldSet(graph)):
        raise errors.NotACheckpoint(
            f"Cannot read meta graph '{path}': it is a GraphDef (e.g. a frozen .pb), not a MetaGraphDef (.meta).")


def _check_nodes(path: str, nodes) -> None:
    names = {n.name for n in nodes}
    for node in nodes:
        if not node.name or not node.op:
            raise errors.CorruptCheckpoint(f"Cannot read meta graph '{path}': a node has no name or no op (garbled).")
        for ref in node.input:
            if graphscan.node_name(ref) not in names:
                raise errors.CorruptCheckpoint(
                    f"Cannot read meta graph '{path}': node '{node.name}' reads '{ref}', which is not in the graph "
                    "(the file is truncated or garbled).")


def meta_path(path: str) -> str:
    """The `.meta` file meant by `path`: itself, a checkpoint prefix's or file's `.meta`, or the `.meta` of a
    run folder's latest checkpoint."""
    path = storage.absolute(str(path))
    if storage.isdir(path):
        return resolve_prefix(path) + ".meta"
    if path.endswith(".meta") or (storage.isfile(path) and strip_suffix(path) == path):
        return path  # a .meta, or another file named on purpose: read as given
    return strip_suffix(path) + ".meta"


def read_meta_graph(path: str, clear_devices: bool = False) -> MetaGraphInfo:
    """Everything `graph` reports about a `.meta` file (or a checkpoint's, or a run's latest); `clear_devices`
    drops device pins from the ops reported."""
    path = meta_path(path)
    return meta_graph_info(path, load_meta_graph_def(path), clear_devices)


def meta_graph_info(path: str, meta, clear_devices: bool = False) -> MetaGraphInfo:
    """What `graph` reports about one MetaGraphDef proto (of a .meta file or a SavedModel)."""
    nodes = meta.graph_def.node
    pins = tuple(sorted({n.device for n in nodes if n.device}))
    ops = tuple(GraphOp(n.name, n.op, "" if clear_devices else n.device, tuple(n.input)) for n in nodes)
    colls = tuple(decode_collection(key, meta.collection_def[key]) for key in sorted(meta.collection_def))
    by_key = {c.key: c.items for c in colls if c.kind == "node_list"}
    index = graphscan.GraphIndex(nodes)
    counts = collections.Counter(n.op for n in nodes)
    return MetaGraphInfo(
        path=path,
        tensorflow_version=meta.meta_info_def.tensorflow_version,
        tags=tuple(meta.meta_info_def.tags),
        ops=ops,
        collections=colls,
        op_type_counts=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        devices=() if clear_devices else pins,
        cleared_devices=pins if clear_devices else (),
        saver=_saver(meta),
        signatures=tuple(_signature(key, meta.signature_def[key]) for key in sorted(meta.signature_def)),
        suggested_inputs=graphscan.suggest_inputs(index),
        suggested_outputs=outputs.suggest_outputs(index, by_key),
        num_functions=len(meta.graph_def.library.function),
        functions=tuple(sorted(f.signature.name for f in meta.graph_def.library.function)),
    )


def describe_node(path: str, name: str, clear_devices: bool = False) -> NodeDefInfo:
    """One node_def of a `.meta` file by op name (a tensor name 'op:0' is accepted too)."""
    path = meta_path(path)
    return node_of(path, load_meta_graph_def(path), name, clear_devices)


def node_of(path: str, meta, name: str, clear_devices: bool = False) -> NodeDefInfo:
    """One node_def of a MetaGraphDef proto read from `path` (named in the error when it has no such op)."""
    index = graphscan.GraphIndex(meta.graph_def.node)
    wanted = graphscan.node_name(name)
    node = index.nodes.get(wanted)
    if node is None:
        raise NodeNotFound(f"Meta graph '{path}' has no op named '{wanted}'."
                           + graphscan.close_matches(wanted, index.nodes))
    return NodeDefInfo(node.name, node.op, "" if clear_devices else node.device, tuple(node.input),
                       tuple(index.consumers[node.name]), nodeattrs.node_attrs(_tf.tf(), node))


def _saver(meta) -> SaverInfo | None:
    if not meta.HasField("saver_def"):
        return None
    s = meta.saver_def
    version = pb2("protobuf.saver_pb2").SaverDef.CheckpointFormatVersion.Name(s.version)
    return SaverInfo(s.filename_tensor_name, s.save_tensor_name, s.restore_op_name, s.max_to_keep,
                     float(s.keep_checkpoint_every_n_hours), s.sharded, version)


def _signature(key: str, sig) -> SignatureInfo:
    def tensors(mapping):
        return tuple(
            SignatureTensor(k, mapping[k].name or mapping[k].WhichOneof("encoding") or "",
                            nodeattrs.dtype_name(mapping[k].dtype), _shape(mapping[k].tensor_shape))
            for k in sorted(mapping))

    return SignatureInfo(key, sig.method_name, tensors(sig.inputs), tensors(sig.outputs))


def _shape(shape) -> tuple[int | None, ...] | None:
    value = nodeattrs.shape_value(shape)
    return None if value is None else tuple(value)
