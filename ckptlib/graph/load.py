"""Load a `.meta`, a frozen GraphDef `.pb` or a SavedModel's graph into one LoadedGraph."""

# Formats: tensorflow/core/framework/graph.proto (GraphDef), tensorflow/core/protobuf/meta_graph.proto
# (MetaGraphDef), tensorflow/core/protobuf/saved_model.proto (SavedModel: schema version, meta graphs).

from __future__ import annotations

from dataclasses import replace

from google.protobuf import unknown_fields

from ckptlib import _tf, errors, storage
from ckptlib.formats.savedmodel_files import GRAPH_FILE as SAVED_MODEL_FILE
from ckptlib.graph import functions, metagraph, outputs
from ckptlib.graph import scan as graphscan
from ckptlib.graph.collectiondefs import pb2
from ckptlib.graph.picture_types import LoadedGraph

SERVE_TAG = "serve"
_GRAPH_SUFFIXES = (".pb", ".graphdef", ".frozen")


def load_graph(path: str, clear_devices: bool = False, function: str | None = None) -> LoadedGraph:
    """The graph at `path`: a `.meta` (or a checkpoint prefix, or a run folder: its latest `.meta`), a
    frozen GraphDef `.pb`, or a SavedModel (its folder or its saved_model.pb). Raises a CkptError naming
    the file when it is missing, damaged or something else; `clear_devices` drops every device pin.
    `function` (a name of `function_names`, or a signature key such as 'serving_default': the function
    behind it) gives that library function's body instead of the top-level graph (see function_body).

        >>> g = load_graph("export/1")            # a SavedModel folder: its 'serve' meta graph
        >>> g.kind, g.num_ops, g.suggested_outputs[:1]
        ('saved_model', 11, ('StatefulPartitionedCall',))
        >>> body = load_graph("export/1", function="serving_default")
        >>> body.function, body.suggested_inputs, sorted({n.op for n in body.nodes})[:3]
        ('__inference___call___112', ('x',), ['BiasAdd', 'Identity', 'MatMul'])
    """
    path = storage.absolute(str(path))  # a local path or a bucket URL
    if storage.isdir(path):
        if storage.isfile(storage.join(path, SAVED_MODEL_FILE)):
            graph = _saved_model(storage.join(path, SAVED_MODEL_FILE))
        elif storage.isfile(storage.join(path, "saved_model.pbtxt")):
            raise errors.UnsupportedFormat(f"Cannot read graph '{path}': a text SavedModel (saved_model.pbtxt) "
                                           "is not supported; save it in binary form.")
        else:
            graph = _meta(_run_meta(path))
    elif path.rsplit("/", 1)[-1] == SAVED_MODEL_FILE:
        graph = _saved_model(path)
    elif path.endswith(".meta"):
        graph = _meta(path)
    elif path.endswith(_GRAPH_SUFFIXES) or not storage.isfile(path + ".meta"):
        graph = _graph_file(path)
    else:
        graph = _meta(path + ".meta")  # a checkpoint prefix
    if function:
        return function_body(graph, function, clear_devices)
    return _without_devices(graph) if clear_devices else graph


def function_body(graph: LoadedGraph, function: str, clear_devices: bool = False) -> LoadedGraph:
    """The body of `graph`'s library function `function` (or of the function behind the signature of that
    key) as a graph: `_Arg` nodes for its arguments, its node_defs with inputs in GraphDef form, `_Retval`
    nodes for its return values; the suggested inputs are its arguments (variable handles left out), the
    suggested outputs its return values. An unknown name: a one-line NotFound listing close names."""
    body = functions.function_graph(graph, function)
    _check_inputs(graph.path, body.nodes, f" (function '{body.function}')")
    if clear_devices:
        for node in body.nodes:  # fresh copies of the library's node_defs: clearing in place is safe
            node.ClearField("device")
    return body


def _run_meta(folder: str) -> str:
    """A run folder's latest checkpoint's .meta, or an error saying what the folder lacks."""
    try:
        return metagraph.meta_path(folder)
    except errors.NotFound:
        metas = [n for n, is_dir in storage.listdir(folder) if n.endswith(".meta") and not is_dir]
        hint = f" It holds {', '.join(metas[:3])}{', …' if len(metas) > 3 else ''}: name one." if metas else ""
        raise errors.NotFound(f"Cannot read graph '{folder}': a folder with neither saved_model.pb (a SavedModel) "
                              f"nor a complete checkpoint.{hint}") from None


def _meta(path: str) -> LoadedGraph:
    meta = metagraph.load_meta_graph_def(path)
    return _loaded(path, "meta", meta, meta.graph_def)


def _graph_file(path: str) -> LoadedGraph:
    """A GraphDef `.pb`; a MetaGraphDef or a SavedModel under another name is read as what it is."""
    data = metagraph.read_bytes(path, "graph")
    if not data:
        raise errors.NotACheckpoint(f"Cannot read graph '{path}': the file is empty.")
    tf = _tf.tf()
    graph_def = tf.compat.v1.GraphDef()
    try:
        with _tf.map_tf_errors(path, "read graph"):
            graph_def.ParseFromString(data)
        problem = None if _clean(graph_def) and graph_def.node else "no nodes, or fields a GraphDef never has"
    except errors.CorruptCheckpoint:
        problem = "its bytes do not parse: truncated or garbled"
    if problem is None:
        _check_inputs(path, graph_def.node)
        return _loaded(path, "frozen", None, graph_def)
    saved = parse_saved_model(path, data)
    if saved is not None:
        return _from_saved_model(path, saved)
    try:
        return _meta(path)
    except errors.CkptError:
        pass  # not a .meta either: report it as the GraphDef it was named as
    raise errors.NotACheckpoint(f"Cannot read graph '{path}': not a GraphDef, MetaGraphDef or SavedModel "
                                f"({problem}).")


def _saved_model(path: str) -> LoadedGraph:
    data = metagraph.read_bytes(path, "SavedModel")
    saved = parse_saved_model(path, data)
    if saved is None:
        raise errors.CorruptCheckpoint(f"Cannot read SavedModel '{path}': the file is empty, truncated or not a "
                                       "SavedModel proto.")
    return _from_saved_model(path, saved)


def parse_saved_model(path: str, data: bytes):
    """A SavedModel proto, or None when `data` is not one (empty, garbled, or another message)."""
    if not data:
        return None
    saved = pb2("protobuf.saved_model_pb2").SavedModel()
    try:
        with _tf.map_tf_errors(path, "read SavedModel"):
            saved.ParseFromString(data)
    except errors.CkptError:
        return None
    if not saved.meta_graphs or not _clean(saved) or not all(_clean(m) for m in saved.meta_graphs):
        return None
    return saved


def _from_saved_model(path: str, saved) -> LoadedGraph:
    """The meta graph tagged 'serve' (what TF Serving loads), else the first."""
    meta = next((m for m in saved.meta_graphs if SERVE_TAG in m.meta_info_def.tags), saved.meta_graphs[0])
    if not meta.graph_def.node:
        raise errors.CorruptCheckpoint(f"Cannot read SavedModel '{path}': its meta graph has no nodes.")
    _check_inputs(path, meta.graph_def.node)
    return _loaded(path, "saved_model", meta, meta.graph_def)


def _clean(message) -> bool:
    """No fields the proto does not define: random bytes often parse, but rarely without unknown fields."""
    return not len(unknown_fields.UnknownFieldSet(message))


def _check_inputs(path: str, nodes, where: str = "") -> None:
    names = {n.name for n in nodes}
    for node in nodes:
        if not node.name or not node.op:
            raise errors.CorruptCheckpoint(f"Cannot read graph '{path}'{where}: a node has no name or no op "
                                           "(garbled).")
        for ref in node.input:
            if graphscan.node_name(ref) not in names:
                raise errors.CorruptCheckpoint(f"Cannot read graph '{path}'{where}: node '{node.name}' reads "
                                               f"'{ref}', which is not in the graph (truncated or garbled).")


def _loaded(path: str, kind: str, meta, graph_def) -> LoadedGraph:
    nodes = tuple(graph_def.node)
    index = graphscan.GraphIndex(nodes)
    sig_in, sig_out = _signature_names(meta, index) if meta is not None else ((), ())
    if sig_in or sig_out:
        inputs, found = sig_in, sig_out
    else:
        collections = {key: tuple(meta.collection_def[key].node_list.value) for key in meta.collection_def
                       if meta.collection_def[key].WhichOneof("kind") == "node_list"} if meta is not None else {}
        inputs = tuple(p.name for p in graphscan.suggest_inputs(index))
        found = tuple(o.name for o in outputs.suggest_outputs(index, collections))
    library = functions.library(graph_def)
    graph = LoadedGraph(path=path, kind=kind, nodes=nodes, function_names=tuple(library),
                        suggested_inputs=inputs, suggested_outputs=found,
                        tags=tuple(meta.meta_info_def.tags) if meta is not None else (),
                        functions=tuple(library.values()),
                        signature_functions=functions.signature_functions(meta, library) if meta is not None else ())
    graph.__dict__["index"] = index  # already built: fill the cached property rather than build it twice
    return graph


def _signature_names(meta, index) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Op names of the signatures' inputs and outputs, 'serving_default' first."""
    # '__saved_model_init_op' and the like are the loader's own signatures, not the model's.
    keys = sorted((k for k in meta.signature_def if not k.startswith("__")), key=lambda k: (k != "serving_default", k))
    found_in: dict[str, None] = {}
    found_out: dict[str, None] = {}
    for key in keys:
        sig = meta.signature_def[key]
        for mapping, found in ((sig.inputs, found_in), (sig.outputs, found_out)):
            for name in sorted(mapping):
                op = graphscan.node_name(mapping[name].name)
                if op in index.nodes:
                    found[op] = None
    return tuple(found_in), tuple(found_out)


def _without_devices(graph: LoadedGraph) -> LoadedGraph:
    nodes = []
    for node in graph.nodes:
        if node.device:
            node = type(node).FromString(node.SerializeToString())  # a copy: the caller's protos stay as read
            node.ClearField("device")
        nodes.append(node)
    return replace(graph, nodes=tuple(nodes))
