"""Cached evaluations: accuracy of a frozen graph, and over a run, keyed by the graph's bytes and the data set.

A key also holds the op allowlist's policy (a graph refused today is never served from a looser past)
and the memory limit, which decides whether a graph is refused for its declared sizes; the time limit
is left out: a result that was computed is the same result however long one would have waited for it.
"""

from __future__ import annotations

import hashlib
import os

from ckptlib import storage
from ckptlib.cache.results import run_parts
from ckptlib.cache.store import ResultCache
from ckptlib.evaluate.limits import make_limits
from ckptlib.evaluate.opsafety import policy
from ckptlib.evaluate.types import EvalHistory, EvalResult, MnistTestSet
from ckptlib.formats.savedmodel_files import GRAPH_FILE, VARIABLES_DIR
from ckptlib.runs.types import RunHistory

_BLOCK = 1 << 20


def file_digest(path: str) -> list:
    """[size, mtime_ns, sha256] of a file, hashed in 1 MB blocks (a large graph costs time, not memory)."""
    if storage.is_url(path):  # read whole in one request; the evaluation then reads it from the operation
        data = storage.read_bytes(path, 2 << 30)
        return [len(data), int((storage.getmtime(path) or 0) * 1e9), hashlib.sha256(data).hexdigest()]
    info = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return [info.st_size, info.st_mtime_ns, digest.hexdigest()]


def model_digest(path: str) -> list:
    """file_digest of a graph file; of a SavedModel folder, of its saved_model.pb and every variables file."""
    if not storage.isdir(path):
        return file_digest(path)
    variables = storage.join(path, VARIABLES_DIR)
    names = [n for n, is_dir in storage.listdir(variables) if not is_dir] if storage.isdir(variables) else []
    return [file_digest(storage.join(path, GRAPH_FILE))] + [file_digest(storage.join(variables, n))
                                                                  for n in sorted(names)]


def dataset_digest(dataset: MnistTestSet) -> str:
    """What the images and labels are, not where they came from (two copies of MNIST share entries)."""
    digest = hashlib.sha256()
    for array in (dataset.images, dataset.labels):
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _options(options: dict) -> list:
    return sorted([key, sorted(value.items()) if isinstance(value, dict) else value] for key, value in options.items())


def _dataset(mnist, allow_download: bool) -> MnistTestSet:
    from ckptlib.evaluate.mnist import load_mnist_test

    return mnist if isinstance(mnist, MnistTestSet) else load_mnist_test(mnist, allow_download=allow_download)


def cached_evaluate(cache: ResultCache | None, model: str, *, mnist=None, allow_download: bool = False,
                    output_tensor: str | None = None, progress=None, time_limit: float | None = None,
                    memory_limit: int | None = None, **options) -> EvalResult:
    """evaluate(model, …) through `cache` (a frozen .pb, or a SavedModel folder with `signature=` among the
    options); a graph that is refused (allowlist, limits) is never stored, so it is refused again on every call."""
    from ckptlib.evaluate.evaluation import evaluate

    path = storage.absolute(str(model))
    limits = make_limits(time_limit, memory_limit)
    run = {"output_tensor": output_tensor, "progress": progress, "time_limit": limits.time_s,
           "memory_limit": limits.memory_mb, **options}
    if cache is None:
        return evaluate(path, mnist=mnist, allow_download=allow_download, **run)
    dataset = _dataset(mnist, allow_download)
    parts = ["eval", path, model_digest(path), dataset_digest(dataset), output_tensor, _options(options),
             policy(), limits.memory_mb]
    return cache.get_or_compute(parts, lambda: evaluate(path, mnist=dataset, **run))


def cached_eval_history(cache: ResultCache | None, history: RunHistory, outputs, *, mnist=None,
                        allow_download: bool = False, output_tensor: str | None = None, progress=None,
                        time_limit: float | None = None, memory_limit: int | None = None, engine=None,
                        **options) -> EvalHistory:
    """eval_history(history, outputs, …) through `cache`, keyed by every checkpoint's files (.meta included);
    `engine` (a Dask cluster) runs the work and does not change the answer, so it is not in the key."""
    from ckptlib.evaluate.evaluation import eval_history

    limits = make_limits(time_limit, memory_limit)
    run = {"output_tensor": output_tensor, "progress": progress, "time_limit": limits.time_s,
           "memory_limit": limits.memory_mb, "engine": engine, **options}
    if cache is None:
        return eval_history(history, outputs, mnist=mnist, allow_download=allow_download, **run)
    dataset = _dataset(mnist, allow_download)
    parts = ["eval_history", run_parts(history), list(outputs) if not isinstance(outputs, str) else outputs,
             dataset_digest(dataset), output_tensor, _options(options), policy(), limits.memory_mb]
    # A cluster's workers read a named test set themselves rather than receive its arrays with every task.
    source = mnist if engine is not None and isinstance(mnist, str) and mnist else dataset
    # A lost task (a worker, a storage hiccup) may work next time: such an answer is not kept.
    return cache.get_or_compute(parts, lambda: eval_history(history, outputs, mnist=source, **run),
                                keep=lambda result: not any(s.error for s in result.skipped))
