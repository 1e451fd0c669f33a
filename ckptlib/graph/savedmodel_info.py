"""`graph` on a SavedModel: its meta graphs (tag sets), signatures, functions, ops and collections."""

from __future__ import annotations

from dataclasses import replace

from ckptlib import errors, storage
from ckptlib.formats.savedmodel_files import GRAPH_FILE as SAVED_MODEL_FILE
from ckptlib.graph import load, metagraph
from ckptlib.graph.types import MetaGraphInfo, NodeDefInfo


def saved_model_file(path: str) -> str | None:
    """The saved_model.pb that `path` (a SavedModel folder or the file itself) names, else None."""
    path = storage.absolute(str(path))
    if storage.isdir(path):
        candidate = storage.join(path, SAVED_MODEL_FILE)
        return candidate if storage.isfile(candidate) else None
    return path if path.endswith("/" + SAVED_MODEL_FILE) else None


def read_saved_model_info(path: str, clear_devices: bool = False) -> MetaGraphInfo:
    """The serving meta graph's report (tags 'serve', else the first), with every meta graph's tag set."""
    found, ordered = _meta_graphs(path)
    info = metagraph.meta_graph_info(found, ordered[0], clear_devices)
    return replace(info, meta_graphs=tuple(tuple(m.meta_info_def.tags) for m in ordered))


def describe_saved_model_node(path: str, name: str, clear_devices: bool = False) -> NodeDefInfo:
    """One node_def of the serving meta graph's graph (function bodies are not searched)."""
    found, ordered = _meta_graphs(path)
    return metagraph.node_of(found, ordered[0], name, clear_devices)


def _meta_graphs(path: str) -> tuple[str, list]:
    """(saved_model.pb path, its meta graphs with the serving one first)."""
    found = saved_model_file(path)
    if found is None:
        raise errors.NotFound(f"Cannot read SavedModel '{path}': no {SAVED_MODEL_FILE} in it.")
    data = metagraph.read_bytes(found, "SavedModel")
    saved = load.parse_saved_model(found, data)
    if saved is None:
        raise errors.CorruptCheckpoint(f"Cannot read SavedModel '{found}': the file is empty, truncated or not a "
                                       "SavedModel proto.")
    metas = list(saved.meta_graphs)
    serving = next((m for m in metas if load.SERVE_TAG in m.meta_info_def.tags), metas[0])
    return found, [serving] + [m for m in metas if m is not serving]


def read_graph_info(path: str, clear_devices: bool = False) -> MetaGraphInfo:
    """`graph PATH`: a SavedModel (folder or saved_model.pb), else a .meta (or a checkpoint's or run's)."""
    if saved_model_file(path) is not None:
        return read_saved_model_info(path, clear_devices)
    return metagraph.read_meta_graph(path, clear_devices)


def describe_graph_node(path: str, name: str, clear_devices: bool = False) -> NodeDefInfo:
    """`graph PATH --node NAME` for a SavedModel or a .meta."""
    if saved_model_file(path) is not None:
        return describe_saved_model_node(path, name, clear_devices)
    return metagraph.describe_node(path, name, clear_devices)
