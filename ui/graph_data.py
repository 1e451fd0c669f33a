"""Cached wrappers for the Graph page's picture and compare mode: load_graph, scope_picture, diff_graphs; and
which graphs a run folder holds, or why it holds none (a Keras run, a TF2 object-based run, a TF1 run saved
without .meta).

Keyed like ui/data.py: paths plus the files' sizes and mtimes (`signature`), so a rewritten graph is never
served stale; `function` (None: the top-level graph) names the library function whose body is meant. A LoadedGraph holds NodeDef protos and compares by identity, so it is kept by
st.cache_resource (one shared, read-only object; nothing here mutates it); what is computed from it (the
picture, the diff, the scope list, a node_def) is plain frozen data kept by st.cache_data, with the graph
passed as an unhashed `_graph` argument next to the keys that identify it.
"""

from __future__ import annotations

import streamlit as st

from ckptlib import storage
from ckptlib.compare.mapping import NameMapping
from ckptlib.errors import CkptError
from ckptlib.formats.savedmodel_files import GRAPH_FILE as SAVED_MODEL_FILE
from ckptlib.graph.picture_types import FunctionInfo, GraphDiff, GraphPicture, LoadedGraph
from ckptlib.graph.types import NodeDefInfo
from ckptlib.runs.types import CheckpointEntry, RunHistory
from ui import data
from ui.data import file_signature

MAX_BOXES = 300
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"  # the key every TF2 object-based checkpoint holds


def graph_signature(path: str) -> tuple:
    """Size and mtime of a graph file; for a SavedModel folder, of its saved_model.pb."""
    if storage.isdir(path):
        return ("dir", file_signature(storage.join(path, SAVED_MODEL_FILE)))
    return file_signature(path)


def graph_files(run_dir: str) -> dict[str, str]:
    """Label -> path of every graph in a run folder: its .meta files (oldest first), then frozen .pb files,
    then SavedModel folders (a sub-folder holding saved_model.pb). One listing of the folder (a bucket
    prefix too), one more per sub-folder."""
    try:
        entries = storage.scan(run_dir)
    except (OSError, CkptError):
        return {}
    files = [(name, mtime) for name, is_dir, _, mtime in entries if not is_dir]
    found: dict[str, str] = {}
    for name, _ in sorted((f for f in files if f[0].endswith(".meta")), key=lambda f: (f[1] or 0, f[0])):
        found[name] = storage.join(run_dir, name)
    for name, _ in files:
        if name.endswith(".pb") and name != SAVED_MODEL_FILE:
            found[name] = storage.join(run_dir, name)
    if any(name == SAVED_MODEL_FILE for name, _ in files):
        found["SavedModel (this folder)"] = run_dir
    for name, is_dir, _, _ in entries:
        folder = storage.join(run_dir, name)
        if is_dir and storage.isfile(storage.join(folder, SAVED_MODEL_FILE)):
            found[f"{name}/ (SavedModel)"] = folder
    return found


def run_kind(history: RunHistory) -> str | None:
    """What the run's newest readable checkpoint is: "saved-model", "keras" (a .keras / .h5 file), "object"
    (TF2 object-based: it holds _CHECKPOINTABLE_OBJECT_GRAPH), "name" (a TF1 Saver's); None when none could be read."""
    for entry in reversed(history.checkpoints):
        if entry.missing:
            continue
        try:
            fmt = data.format_name(entry.prefix)
            if fmt == "saved-model" or fmt.startswith("keras"):
                return "keras" if fmt.startswith("keras") else fmt
            return "object" if any(v.name == OBJECT_GRAPH for v in data.variables(entry.prefix)) else "name"
        except (CkptError, OSError):
            continue
    return None


def no_graph_message(run_name: str, history: RunHistory) -> str:
    """Why a run folder shows no graph, in the words that fit the run: only a TF1 run gets the Saver's advice."""
    kind = run_kind(history)
    if kind == "keras":
        return (f"Run {run_name} holds Keras files (.keras / .h5): they store weights and a model config, not a "
                "TensorFlow graph. Export a SavedModel (model.export) or a frozen .pb into the run folder to see "
                "its graph here.")
    if kind == "object":
        return (f"Run {run_name} holds TF2 object-based checkpoints (tf.train.Checkpoint): they store variables "
                "and how objects connect, not a graph of ops. Export a SavedModel (tf.saved_model.save) or a frozen "
                ".pb into the run folder to see its graph here.")
    if kind == "name":
        return (f"Run {run_name}'s checkpoints were saved without a .meta (Saver.save(..., write_meta_graph=False)), "
                "and the folder holds no frozen .pb or SavedModel. Save once with write_meta_graph=True, or put a "
                "frozen .pb or SavedModel in the folder, to see the graph here.")
    if kind == "saved-model":  # graph_files found no saved_model.pb beside it: unreadable or moved
        return f"Run {run_name} is a SavedModel whose saved_model.pb could not be found or read."
    return (f"Run {run_name} has no .meta, frozen .pb or SavedModel, and no checkpoint that could be read to tell "
            "which kind of run it is.")


def meta_note(history: RunHistory, checkpoint: CheckpointEntry | None, chosen: str) -> str | None:
    """When the sidebar's checkpoint has no .meta: why, and which graph is shown instead (None otherwise)."""
    if checkpoint is None or checkpoint.has_meta:
        return None
    with_meta = sum(1 for e in history.checkpoints if e.has_meta)
    if with_meta:
        return (f"Checkpoint {checkpoint.name} (chosen in the sidebar) was saved without a .meta; {with_meta} of "
                f"{len(history.checkpoints)} checkpoints of this run have one. Showing {chosen}.")
    kind = run_kind(history)
    if kind == "object":
        return (f"Checkpoint {checkpoint.name} is TF2 object-based: it carries no graph. Showing {chosen}, found "
                "in the run folder.")
    if kind == "keras":
        return (f"Checkpoint {checkpoint.name} is a Keras file: weights and a model config, no TensorFlow graph. "
                f"Showing {chosen}, found in the run folder.")
    return f"No checkpoint of this run was saved with a .meta. Showing {chosen}, found in the run folder."


def loaded(path: str, clear_devices: bool = False, function: str | None = None) -> LoadedGraph:
    """The graph at `path` (a .meta, a frozen .pb or a SavedModel folder), read once per file version; with
    `function`, that library function's body (built from the graph read once)."""
    top = _loaded(path, clear_devices, graph_signature(path))
    return _body(path, clear_devices, graph_signature(path), function, top) if function else top


@st.cache_resource(show_spinner="Reading the graph…", max_entries=16)
def _loaded(path: str, clear_devices: bool, signature: tuple) -> LoadedGraph:
    from ckptlib.graph.load import load_graph  # imports TensorFlow's protos: only when a graph is asked for

    return load_graph(path, clear_devices=clear_devices)


@st.cache_resource(show_spinner="Reading the function…", max_entries=32)
def _body(path: str, clear_devices: bool, signature: tuple, function: str, _top: LoadedGraph) -> LoadedGraph:
    from ckptlib.graph.load import function_body

    return function_body(_top, function, clear_devices)


def functions(path: str, clear_devices: bool) -> tuple[FunctionInfo, ...]:
    """The graph's library functions, those behind signatures first: the Function chooser's options."""
    graph = loaded(path, clear_devices)
    return _functions(path, clear_devices, graph_signature(path), graph)


@st.cache_data(show_spinner=False, max_entries=64)
def _functions(path: str, clear_devices: bool, signature: tuple, _graph: LoadedGraph) -> tuple[FunctionInfo, ...]:
    from ckptlib.graph.functions import functions_of

    return tuple(functions_of(_graph))


def signature_functions(path: str, clear_devices: bool) -> dict[str, str]:
    """Signature key -> the function behind it ('serving_default' first)."""
    return dict(loaded(path, clear_devices).signature_functions)


def scopes(path: str, clear_devices: bool, show_side_ops: bool,
           function: str | None = None) -> tuple[tuple[str, int], ...]:
    """(scope, ops at or under it) of every name scope of the graph, sorted by name: the scope chooser."""
    graph = loaded(path, clear_devices, function)
    return _scopes(path, clear_devices, graph_signature(path), show_side_ops, function, graph)


@st.cache_data(show_spinner=False, max_entries=64)
def _scopes(path: str, clear_devices: bool, signature: tuple, show_side_ops: bool, function: str | None,
            _graph: LoadedGraph) -> tuple[tuple[str, int], ...]:
    from ckptlib.graph.scopetree import scope_tree

    tree = scope_tree(_graph, show_side_ops)
    return tuple(sorted((s, tree.count[s]) for s in tree.child_scopes if s))


def picture(path: str, clear_devices: bool, expanded: tuple[str, ...], show_side_ops: bool,
            against: tuple | None = None, function: str | None = None) -> GraphPicture:
    """The scope picture of the graph at `path` (or of its `function`'s body); with `against` = (path A,
    path B, clear_devices, rules, strip prefix, side, function A, function B) its boxes are coloured by that
    diff's statuses (`path` being side 'a' or 'b')."""
    graph = loaded(path, clear_devices, function)
    statuses = None
    if against is not None:
        statuses = status_map(*against)
    return _picture(path, clear_devices, graph_signature(path), tuple(sorted(expanded)), show_side_ops,
                    _against_key(against), function, graph, statuses)


def _against_key(against: tuple | None) -> tuple | None:
    if against is None:
        return None
    path_a, path_b, clear, rules, strip, side, function_a, function_b = against
    return (path_a, graph_signature(path_a), path_b, graph_signature(path_b), clear, rules, strip, side,
            function_a, function_b)


@st.cache_data(show_spinner="Drawing the graph…", max_entries=64)
def _picture(path: str, clear_devices: bool, signature: tuple, expanded: tuple[str, ...], show_side_ops: bool,
             against_key: tuple | None, function: str | None, _graph: LoadedGraph,
             _statuses: dict[str, str] | None) -> GraphPicture:
    from ckptlib.graph.scopetree import scope_picture

    return scope_picture(_graph, expanded=frozenset(expanded), show_side_ops=show_side_ops, max_boxes=MAX_BOXES,
                         statuses=_statuses)


def graph_diff(path_a: str, path_b: str, clear_devices: bool, rules: tuple[tuple[str, str], ...],
               strip_prefix: str, function_a: str | None = None, function_b: str | None = None) -> GraphDiff:
    """Two graphs (or two functions' bodies) compared op by op, A's names mapped by `rules` and
    `strip_prefix` (cached by both files)."""
    graph_a, graph_b = loaded(path_a, clear_devices, function_a), loaded(path_b, clear_devices, function_b)
    return _graph_diff(path_a, graph_signature(path_a), path_b, graph_signature(path_b), clear_devices, rules,
                       strip_prefix, function_a, function_b, graph_a, graph_b)


@st.cache_data(show_spinner="Comparing the graphs…", max_entries=32)
def _graph_diff(path_a: str, signature_a: tuple, path_b: str, signature_b: tuple, clear_devices: bool,
                rules: tuple[tuple[str, str], ...], strip_prefix: str, function_a: str | None,
                function_b: str | None, _graph_a: LoadedGraph, _graph_b: LoadedGraph) -> GraphDiff:
    from ckptlib.graph.graphdiff import diff_graphs

    return diff_graphs(_graph_a, _graph_b, mapping=NameMapping(rules=rules, strip_prefix_a=strip_prefix))


def status_map(path_a: str, path_b: str, clear_devices: bool, rules: tuple[tuple[str, str], ...],
               strip_prefix: str, side: str, function_a: str | None = None,
               function_b: str | None = None) -> dict[str, str]:
    """Op name -> diff status for a picture of A (side 'a') or of B (side 'b')."""
    result = graph_diff(path_a, path_b, clear_devices, rules, strip_prefix, function_a, function_b)
    return result.statuses_a() if side == "a" else result.statuses_b()


def node(path: str, clear_devices: bool, name: str, function: str | None = None) -> NodeDefInfo:
    """One node_def of any graph kind (or of a function's body), its attributes made readable."""
    graph = loaded(path, clear_devices, function)
    return _node(path, clear_devices, graph_signature(path), name, function, graph)


@st.cache_data(show_spinner=False, max_entries=256)
def _node(path: str, clear_devices: bool, signature: tuple, name: str, function: str | None,
          _graph: LoadedGraph) -> NodeDefInfo:
    from ckptlib import _tf
    from ckptlib.errors import NodeNotFound
    from ckptlib.graph import nodeattrs

    index = _graph.index
    node_def = index.nodes.get(name)
    if node_def is None:
        where = f" (function '{function}')" if function else ""
        raise NodeNotFound(f"Graph '{path}'{where} has no op named '{name}'.")
    return NodeDefInfo(node_def.name, node_def.op, node_def.device, tuple(node_def.input),
                       tuple(index.consumers[name]), nodeattrs.node_attrs(_tf.tf(), node_def))
