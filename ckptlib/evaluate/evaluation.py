"""Evaluate a frozen GraphDef (or a SavedModel's signature, a checkpoint, a whole run) on MNIST, in a bounded child.

    >>> result = evaluate("/tmp/model.pb", mnist="/data/mnist_data")
    >>> result.accuracy, result.device, result.feeds
    (0.9712, 'CPU', (('keep_prob', 1.0),))

Each verb runs its graph in a child process (sandbox.py) bounded by `time_limit` seconds (default 120,
counted per graph) and `memory_limit` MB (default 4096): a TensorFlow abort, a segfault, an endless
loop or an allocation bomb is a one-line CkptError and the caller carries on. In the child, the graph
is vetted before anything runs (allowlist, declared sizes) and then evaluated (running.py).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

from ckptlib import storage
from ckptlib.engine.local import LocalEngine
from ckptlib.evaluate import batches as evalrun
from ckptlib.evaluate import sandbox
from ckptlib.evaluate.freeze import check_destination, output_names
from ckptlib.evaluate.graphfile import check_runnable, load_graph_def  # noqa: F401 - re-exported, static checks
from ckptlib.evaluate.limits import make_limits
from ckptlib.evaluate.savedmodel_eval import DEFAULT_SIGNATURE, require_folder, saved_model_folder
from ckptlib.evaluate.types import EvalHistory, EvalResult, MnistTestSet
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import resolve_prefix
from ckptlib.runs.types import RunHistory


def _dataset(mnist) -> MnistTestSet | str | None:
    """What the child loads the test set from: the set itself, or where to find it (the child looks)."""
    if mnist is None or isinstance(mnist, MnistTestSet):
        return mnist
    return os.path.abspath(os.path.expanduser(str(mnist))) if str(mnist) else None


def evaluate(model: str, *, input_tensor: str | None = None, output_tensor: str | None = None,
             mnist: str | MnistTestSet | None = None, limit: int | None = None, device: str = "auto",
             feeds: dict | None = None, labels: str | None = None, metric: str | None = None,
             raw_pixels: bool = False, batch_size: int = 1000, allow_download: bool = False,
             progress: evalrun.Progress | None = None, time_limit: float | None = None,
             memory_limit: int | None = None, signature: str | None = None) -> EvalResult:
    """Accuracy of the frozen graph `model` (.pb) on the MNIST test set; see the module docstring. A SavedModel
    folder is evaluated through `signature` (default 'serving_default'; see evaluate_saved_model)."""
    path = storage.absolute(str(model))
    options = {"limit": limit, "device": device, "feeds": dict(feeds or {}), "labels": labels, "metric": metric,
               "raw_pixels": raw_pixels, "batch_size": batch_size}
    if signature is not None or saved_model_folder(path) is not None or storage.isdir(path):
        return evaluate_saved_model(path, signature or DEFAULT_SIGNATURE, input_key=input_tensor,
                                    output_key=output_tensor, mnist=mnist, allow_download=allow_download,
                                    progress=progress, time_limit=time_limit, memory_limit=memory_limit, **options)
    options.update(input_tensor=input_tensor, output_tensor=output_tensor)
    return sandbox.run_job("evaluate_file", {"model": path, "mnist": _dataset(mnist), "allow_download": allow_download,
                                             "options": options},
                           limits=make_limits(time_limit, memory_limit), source=path, action="evaluate",
                           progress=progress)


def evaluate_saved_model(folder: str, signature: str = DEFAULT_SIGNATURE, *, input_key: str | None = None,
                         output_key: str | None = None, mnist=None, allow_download: bool = False, progress=None,
                         time_limit: float | None = None, memory_limit: int | None = None, **options) -> EvalResult:
    """Accuracy of a SavedModel's `signature` on MNIST: its input and output are the signature's (`input_key`,
    `output_key` choose among several). The child freezes the signature from saved_model.pb and the variables
    bundle without tf.saved_model.load, so none of the model's restore or save code runs (savedmodel_eval.py).

        >>> evaluate_saved_model("export/1", limit=1000).accuracy
        0.912
    """
    path = require_folder(folder)
    options.setdefault("feeds", {})
    return sandbox.run_job("evaluate_saved_model",
                           {"folder": path, "signature": signature, "input_key": input_key, "output_key": output_key,
                            "mnist": _dataset(mnist), "allow_download": allow_download, "options": options},
                           limits=make_limits(time_limit, memory_limit), source=path, action="evaluate",
                           progress=progress)


def evaluate_graph_def(graph_def, source: str, dataset: MnistTestSet, *, time_limit: float | None = None,
                       memory_limit: int | None = None, progress=None, **options) -> EvalResult:
    """Like `evaluate`, for a GraphDef already in memory (`source` names it in messages and the result)."""
    options.setdefault("feeds", {})
    return sandbox.run_job("evaluate_graph", {"graph_bytes": graph_def.SerializeToString(), "source": source,
                                              "mnist": dataset, "allow_download": False, "options": options},
                           limits=make_limits(time_limit, memory_limit), source=source, action="evaluate",
                           progress=progress)


def evaluate_checkpoint(checkpoint: str, outputs, out_dir: str | None = None, *, output_tensor: str | None = None,
                        mnist=None, allow_download: bool = False, progress=None, time_limit: float | None = None,
                        memory_limit: int | None = None, **options) -> EvalResult:
    """Freeze `checkpoint` in memory and evaluate it, in one child process.

    `out_dir` is where a frozen copy could have gone: it is still refused when it is a checkpoint folder,
    but nothing is written (the graph never leaves memory). `output_tensor` defaults to the first of
    `outputs`; `options` are `evaluate`'s.
    """
    prefix = resolve_prefix(checkpoint)
    parent = os.path.abspath(os.path.expanduser(out_dir or tempfile.gettempdir()))
    check_destination(os.path.join(parent, "frozen.pb"), prefix)
    options.setdefault("feeds", {})
    result = sandbox.run_job("evaluate_checkpoint",
                             {"prefix": prefix, "outputs": output_names(outputs), "output_tensor": output_tensor,
                              "mnist": _dataset(mnist), "allow_download": allow_download, "options": options},
                             limits=make_limits(time_limit, memory_limit), source=prefix, action="evaluate",
                             progress=progress)
    return replace(result, model=prefix)


def eval_history(history: RunHistory | str, outputs, *, output_tensor: str | None = None,
                 mnist: str | MnistTestSet | None = None, allow_download: bool = False,
                 progress: evalrun.Progress | None = None, time_limit: float | None = None,
                 memory_limit: int | None = None, engine=None, **options) -> EvalHistory:
    """Accuracy of every complete checkpoint of a run, frozen in memory one after the other in one child
    process; the time limit counts for each checkpoint. A checkpoint without its own `.meta` uses the run's
    nearest one (same run, same graph). `options` are `evaluate`'s (input_tensor, limit, device, feeds,
    labels, metric, raw_pixels, batch_size).

    `engine` (a ckptlib.engine DaskEngine) makes each checkpoint a task of its cluster instead (history_tasks.py),
    with the same answer. On this machine one child evaluates them all: TensorFlow already spreads one
    evaluation over every core, and a child per checkpoint would import TensorFlow again each time (~3 s).
    """
    if not isinstance(history, RunHistory):
        history = load_history(history)
    options.setdefault("feeds", {})
    if engine is not None and not isinstance(engine, LocalEngine):
        from ckptlib.evaluate.history_tasks import eval_history_on

        return eval_history_on(engine, history, output_names(outputs), output_tensor=output_tensor,
                               mnist=_dataset(mnist), allow_download=allow_download,
                               limits=make_limits(time_limit, memory_limit), options=options, progress=progress)
    return sandbox.run_job("eval_history",
                           {"history": history, "outputs": output_names(outputs), "output_tensor": output_tensor,
                            "mnist": _dataset(mnist), "allow_download": allow_download, "options": options},
                           limits=make_limits(time_limit, memory_limit), source=history.path, action="evaluate",
                           progress=progress)
