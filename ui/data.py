"""Cached wrappers around ckptlib: the only st.cache_* calls, keyed by file sizes and mtimes."""

# st.cache_data hashes every argument whose name does not start with "_": the `signature`
# arguments (sizes and mtimes of the files) make a rewritten checkpoint a cache miss.

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import replace

import streamlit as st

from ckptlib import storage
from ckptlib.cache.results import cached_diff, cached_trends
from ckptlib.cache.store import ResultCache
from ckptlib.compare.mapping import NameMapping
from ckptlib.compare.parity import export_side
from ckptlib.compare.parity import parity as export_parity
from ckptlib.compare.types import CheckpointDiff, RunTrends
from ckptlib.engine.choose import cluster_for
from ckptlib.errors import CkptError
from ckptlib.evaluate.types import EvalHistory, EvalResult, FreezeResult, MnistTestSet
from ckptlib.formats import detect
from ckptlib.formats import open_checkpoint as open_format
from ckptlib.formats.savedmodel_files import GRAPH_FILE
from ckptlib.formats.types import VariableInfo
from ckptlib.graph.types import MetaGraphInfo, NodeDefInfo
from ckptlib.runs import savedmodel_run
from ckptlib.runs.history import find_runs, load_history
from ckptlib.runs.resolve import open_checkpoint
from ckptlib.runs.types import RunHistory, RunSummary
from ckptlib.tensors.stats import summarize_variable
from ckptlib.tensors.types import TensorSummary


def folder_signature(folder: str) -> tuple:
    """(name, size, mtime_ns) of every entry: changes whenever a checkpoint is written or removed."""
    if storage.is_url(folder):  # one listing per rerun (sizes and times come with it)
        try:
            return tuple((name, size, int((mtime or 0) * 1e9)) for name, _, size, mtime in storage.scan(folder))
        except (OSError, CkptError):
            return ()
    try:
        with os.scandir(folder) as listing:
            return tuple(sorted((e.name, *_stat(e)) for e in listing))
    except OSError:
        return ()


def _stat(entry: os.DirEntry) -> tuple[int, int]:
    try:
        info = entry.stat()
        return info.st_size, info.st_mtime_ns
    except OSError:
        return -1, -1


def prefix_signature(prefix: str) -> tuple:
    """Sizes and mtimes of one checkpoint's files, so a rewritten checkpoint is never served stale."""
    folder, base = os.path.split(prefix)
    return tuple(item for item in folder_signature(folder) if item[0].startswith(base + "."))


@st.cache_data(ttl=60, show_spinner="Looking for runs…")
def runs(root: str) -> tuple[RunSummary, ...]:
    # A folder walk has no cheap signature; a minute-long TTL and the Refresh button keep it fresh.
    return find_runs(root)


def history(run_dir: str) -> RunHistory:
    return _history(run_dir, folder_signature(run_dir))


@st.cache_data(show_spinner=False, max_entries=256)
def _history(run_dir: str, signature: tuple) -> RunHistory:
    return load_history(run_dir)


def variables(prefix: str) -> tuple[VariableInfo, ...]:
    return _variables(prefix, prefix_signature(prefix))


@st.cache_data(show_spinner=False, max_entries=256)
def _variables(prefix: str, signature: tuple) -> tuple[VariableInfo, ...]:
    return open_checkpoint(prefix).variables


def parity(prefix_a: str, prefix_b: str, result: CheckpointDiff):
    """The export verdict for a diff where one side is an export (None otherwise), weights matched by content too."""
    side = export_side(format_name(prefix_a), format_name(prefix_b))
    if side is None:
        return None
    export, other = (prefix_a, prefix_b) if side == "a" else (prefix_b, prefix_a)
    return export_parity(result, side, open_format(export), open_format(other))


def format_name(prefix: str) -> str:
    """The checkpoint's format ("tf-bundle-v2", "saved-model", "keras", …) from its names, without reading it."""
    found = detect(prefix)
    return found[0].name if found else "unknown"


def tensor_summary(prefix: str, name: str) -> TensorSummary:
    return _tensor_summary(prefix, name, prefix_signature(prefix))


@st.cache_data(show_spinner="Reading the tensor…", max_entries=128)
def _tensor_summary(prefix: str, name: str, signature: tuple) -> TensorSummary:
    return summarize_variable(open_format(prefix), name)  # streamed: memory stays flat for huge tensors


MAX_PLOTTED_BYTES = 64 << 20  # whole reads for plots (heatmaps, scatter) stop here; statistics stream


def tensor(prefix: str, name: str):
    """The whole tensor, for plots; None when it is too large to hold for a picture."""
    sizes = {v.name: v.nbytes for v in variables(prefix)}  # the cached listing: no index re-read
    if sizes.get(name, 0) > MAX_PLOTTED_BYTES:
        return None
    return _tensor(prefix, name, prefix_signature(prefix))


@st.cache_data(show_spinner=False, max_entries=16)
def _tensor(prefix: str, name: str, signature: tuple):
    return open_format(prefix).read(name)


# --- long computations: shown with a progress bar, memoised across sessions ----------------------
# st.cache_data cannot drive a progress bar that lives outside it, so these keep their results in a
# small LRU held by st.cache_resource, keyed like the caches above (paths + sizes + mtimes).

_MEMO_SIZE = 32


@st.cache_resource
def result_cache() -> ResultCache:
    """The on-disk cache shared with the CLI and other dashboard processes ($CKPTLIB_CACHE moves it)."""
    return ResultCache()


@st.cache_resource
def _memo() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()  # shared by every session: guard it


def _memoised(key: tuple, compute, label: str):
    memo, lock = _memo()
    with lock:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
    bar = st.progress(0.0, text=label)

    def progress(done: int, total: int, name: str) -> None:
        bar.progress(done / total if total else 1.0, text=f"{label} {done}/{total} {name}")

    try:
        result = compute(progress)
    finally:
        bar.empty()
    with lock:
        memo[key] = result
        while len(memo) > _MEMO_SIZE:
            memo.popitem(last=False)
    return result


def diff(prefix_a: str, prefix_b: str, rules: tuple[tuple[str, str], ...], strip_prefix: str,
         atol: float) -> CheckpointDiff:
    """Two checkpoints compared (cached by both checkpoints' files and the options)."""
    key = ("diff", prefix_a, prefix_signature(prefix_a), prefix_b, prefix_signature(prefix_b), rules,
           strip_prefix, atol)
    mapping = NameMapping(rules=rules, strip_prefix_a=strip_prefix)
    return _memoised(key, lambda progress: cached_diff(
        result_cache(), open_format(prefix_a), open_format(prefix_b), mapping, atol, progress), "Comparing")


def verified_history(run_dir: str) -> RunHistory:
    """The run's history with every complete checkpoint's tensors read and their crc32c checked."""
    from ckptlib.runs.verify import verify_history

    key = ("verify", run_dir, folder_signature(run_dir))
    return _memoised(key, lambda progress: verify_history(load_history(run_dir), progress), "Checking checksums")


def on_record(history: RunHistory) -> RunHistory:
    """The run without its orphans: checkpoints the state file does not list are often another run's (an older
    run in the same folder): drawn among this run's steps they would read as a jump. Trends page says so."""
    kept = tuple(e for e in history.checkpoints if e.status != "orphan")
    return history if len(kept) == len(history.checkpoints) else replace(history, checkpoints=kept)


def trends(run_dir: str, include_optimizer: bool) -> RunTrends:
    """Statistics of every numeric variable at every complete checkpoint of a run."""
    key = ("trends", run_dir, folder_signature(run_dir), include_optimizer)
    kinds = ("model", "optimizer") if include_optimizer else ("model",)

    def compute(progress):
        return cached_trends(result_cache(), on_record(load_history(run_dir)), progress=progress, kinds=kinds,
                             engine=cluster_for())

    return _memoised(key, compute, "Reading checkpoints")


# --- graph, freeze, evaluate ----------------------------------------------------------------------


def file_signature(path: str) -> tuple[int, int]:
    if storage.is_url(path):  # from the folder's listing: no request of its own within a rerun
        try:
            return storage.getsize(path), int((storage.getmtime(path) or 0) * 1e9)
        except (OSError, CkptError):
            return -1, -1
    try:
        info = os.stat(path)
        return info.st_size, info.st_mtime_ns
    except OSError:
        return -1, -1


def meta_graph(path: str, clear_devices: bool) -> MetaGraphInfo:
    """What a .meta (or a SavedModel folder's serving meta graph) holds: ops, collections, saver, signatures."""
    graph_file = storage.join(path, GRAPH_FILE) if storage.isdir(path) else path
    return _meta_graph(path, clear_devices, file_signature(graph_file))


@st.cache_data(show_spinner="Reading the meta graph…", max_entries=32)
def _meta_graph(path: str, clear_devices: bool, signature: tuple) -> MetaGraphInfo:
    from ckptlib.graph.savedmodel_info import read_graph_info  # imports TensorFlow: only when a graph is asked for

    return read_graph_info(path, clear_devices=clear_devices)


def node(path: str, name: str, clear_devices: bool) -> NodeDefInfo:
    return _node(path, name, clear_devices, file_signature(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _node(path: str, name: str, clear_devices: bool, signature: tuple) -> NodeDefInfo:
    from ckptlib.graph.metagraph import describe_node

    return describe_node(path, name, clear_devices=clear_devices)


@st.cache_data(show_spinner="Loading the MNIST test set…", max_entries=4)
def mnist(source: str | None) -> MnistTestSet:
    from ckptlib.evaluate.mnist import load_mnist_test

    return load_mnist_test(source or None)


def evaluation(model: str, options: tuple, dataset_source: str | None) -> EvalResult:
    """Accuracy of a frozen .pb (cached by the file and the options) with a progress bar."""
    from ckptlib.cache.evaluations import cached_evaluate

    signature = (file_signature(storage.join(model, GRAPH_FILE)) if storage.isdir(model)
                 else file_signature(model))
    key = ("eval", model, signature, options, dataset_source)
    dataset = mnist(dataset_source)
    kwargs = dict(options)  # hashable in the key; feeds travel as sorted (name, value) pairs
    kwargs["feeds"] = dict(kwargs.get("feeds") or ())
    return _memoised(key, lambda progress: cached_evaluate(result_cache(), model, mnist=dataset, progress=progress,
                                                           **kwargs), "Evaluating")


def accuracy_history(run_dir: str, outputs: tuple[str, ...], options: tuple, dataset_source: str | None) -> EvalHistory:
    """Freeze and evaluate every complete checkpoint of a run, cached per (run files, options)."""
    from ckptlib.cache.evaluations import cached_eval_history

    key = ("eval_history", run_dir, folder_signature(run_dir), outputs, options, dataset_source)
    engine = cluster_for()  # $CKPTLIB_DASK_SCHEDULER, else this machine
    dataset = dataset_source if engine and dataset_source else mnist(dataset_source)  # a cluster reads it itself
    return _memoised(key, lambda progress: cached_eval_history(
        result_cache(), on_record(load_history(run_dir)), outputs, mnist=dataset, progress=progress, engine=engine,
        **dict(options)),
        "Freezing and evaluating")


def _scratch(kind: str) -> str:
    """A folder of ours under the system temp dir: frozen graphs and uploads never go near a run."""
    folder = os.path.join(tempfile.gettempdir(), f"ckptlib-{kind}")
    os.makedirs(folder, exist_ok=True)
    return folder


def freeze(prefix: str, outputs: tuple[str, ...]) -> FreezeResult:
    """Freeze a checkpoint into the scratch folder (cached by its files and the outputs)."""
    from ckptlib.evaluate.freeze import freeze as freeze_checkpoint

    key = ("freeze", prefix, prefix_signature(prefix), outputs)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    out = os.path.join(_scratch("frozen"), f"{os.path.basename(prefix)}-{digest}.pb")
    return _memoised(key, lambda progress: freeze_checkpoint(prefix, list(outputs), out), "Freezing")


def store_upload(name: str, content: bytes) -> str:
    """Save an uploaded .pb under the scratch folder (a folder per content hash, the file keeps its
    name so that errors name what the user uploaded); returns the path."""
    folder = os.path.join(_scratch("uploads"), hashlib.sha256(content).hexdigest()[:32])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, os.path.basename(name) or "uploaded.pb")
    if not os.path.exists(path):
        with open(path, "wb") as handle:
            handle.write(content)
    return path


def stored_upload(digest: str, name: str) -> str | None:
    """A graph uploaded earlier through store_upload (folder `digest`, file `name`), or None."""
    path = os.path.join(_scratch("uploads"), os.path.basename(digest), os.path.basename(name))
    return path if os.path.isfile(path) else None


def frozen_candidates(run_dir: str, frozen: FreezeResult | None) -> dict[str, str]:
    """Label -> path: the graph frozen on this page, then the .pb files found in the run folder."""
    found = {}
    if frozen is not None and os.path.exists(frozen.output):
        found[f"just frozen: {os.path.basename(frozen.checkpoint)} ({', '.join(frozen.outputs)})"] = frozen.output
    if savedmodel_run.is_export(run_dir):  # the run is a SavedModel export: evaluate it by a signature
        found[f"this SavedModel: {os.path.basename(run_dir.rstrip('/'))}"] = run_dir
    for number, path in savedmodel_run.numbered_exports(run_dir):
        found[f"SavedModel export {number}"] = path
    for name, is_dir in storage.listdir(run_dir):  # a local folder or a bucket prefix
        if name.endswith(".pb") and not is_dir:
            found[f"in the run folder: {name}"] = storage.join(run_dir, name)
    return found


@st.cache_data(show_spinner=False, max_entries=32)
def _signatures(folder: str, signature: tuple) -> tuple[str, ...]:
    from ckptlib.graph.savedmodel_info import read_saved_model_info

    info = read_saved_model_info(folder)
    keys = [s.key for s in info.signatures if not s.key.startswith("__")]
    return tuple(sorted(keys, key=lambda k: (k != "serving_default", k)))


def signatures(folder: str) -> tuple[str, ...]:
    """A SavedModel's signature keys, serving_default first (its loader's own '__…' ones left out)."""
    return _signatures(folder, file_signature(storage.join(folder, GRAPH_FILE)))
