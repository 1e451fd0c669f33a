"""Evaluate a frozen GraphDef (or a checkpoint, or a whole run) on the MNIST test set.

    >>> result = evaluate("/tmp/model.pb", mnist="/data/mnist_data")
    >>> result.accuracy, result.device, result.feeds
    (0.9712, 'CPU', (('keep_prob', 1.0),))

Before anything runs, the graph is checked against an allowlist of pure compute ops (opsafety.py);
then input, output and every placeholder the output needs are resolved (evalplan.py); then the
images go through in batches (evalrun.py).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

import numpy as np
from google.protobuf import unknown_fields

from ckptlib import _tf, errors, storage
from ckptlib.errors import (BadGraphIO, DatasetError, DeviceUnavailable, ForbiddenOps, NodeNotFound,
                            NotFrozen, UnfedPlaceholder)  # fmt: skip
from ckptlib.evaluate import batches as evalrun
from ckptlib.evaluate import opsafety
from ckptlib.evaluate import plan as evalplan
from ckptlib.evaluate.feeds import NUM_CLASSES
from ckptlib.evaluate.freeze import check_destination, freeze, freeze_graph_def, output_names
from ckptlib.evaluate.mnist import load_mnist_test
from ckptlib.evaluate.types import EvalHistory, EvalMetric, EvalPoint, EvalResult, MnistTestSet
from ckptlib.graph import metagraph
from ckptlib.graph import scan as graphscan
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import resolve_prefix
from ckptlib.runs.types import RunHistory
from ckptlib.runs.types import SkippedCheckpoint

_VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "AutoReloadVariable"})
# Errors about the request itself (names, device, data set, a hostile graph) stop a history at once.
_REQUEST_ERRORS = (NodeNotFound, BadGraphIO, UnfedPlaceholder, ForbiddenOps, DeviceUnavailable, DatasetError)


MAX_MISCLASSIFIED = 200  # enough for a gallery; the confusion matrix counts them all


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
        _raise_if_meta(path)
        raise problem
    names = {n.name for n in graph_def.node}
    for node in graph_def.node:
        for ref in node.input:
            if graphscan.node_name(ref) not in names:
                raise errors.CorruptCheckpoint(f"Cannot read frozen graph '{path}': node '{node.name}' reads '{ref}', "
                                               "which is not in the graph (truncated or garbled).")
    return graph_def


def _raise_if_meta(path: str) -> None:
    try:
        metagraph.load_meta_graph_def(path)
    except errors.CkptError:
        return
    raise errors.NotACheckpoint(f"Cannot evaluate '{path}': it is a meta graph (.meta), not a frozen GraphDef; "
                                "freeze it with its checkpoint first (`freeze CKPT --outputs … --out model.pb`).")


def check_runnable(graph_def, source: str) -> None:
    """Frozen (no variables) and pure computation (opsafety's allowlist), or a CkptError saying why not."""
    variables = sorted(n.name for n in graph_def.node if n.op in _VARIABLE_OPS)
    if variables:
        raise NotFrozen(f"Cannot evaluate '{source}': it still holds variables ({', '.join(variables[:5])}); "
                        "freeze it first.")
    opsafety.check_graph(graph_def, source)


def evaluate(model: str, *, input_tensor: str | None = None, output_tensor: str | None = None,
             mnist: str | MnistTestSet | None = None, limit: int | None = None, device: str = "auto",
             feeds: dict | None = None, labels: str | None = None, metric: str | None = None,
             raw_pixels: bool = False, batch_size: int = 1000, allow_download: bool = False,
             progress: evalrun.Progress | None = None) -> EvalResult:
    """Accuracy of the frozen graph `model` (.pb) on the MNIST test set; see the module docstring."""
    path = storage.absolute(str(model))
    graph_def = load_graph_def(path)
    check_runnable(graph_def, path)  # a hostile graph is refused before anything else happens
    dataset = mnist if isinstance(mnist, MnistTestSet) else load_mnist_test(mnist, allow_download=allow_download)
    return evaluate_graph_def(graph_def, path, dataset, input_tensor=input_tensor, output_tensor=output_tensor,
                              limit=limit, device=device, feeds=feeds, labels=labels, metric=metric,
                              raw_pixels=raw_pixels, batch_size=batch_size, progress=progress)


def evaluate_graph_def(graph_def, source: str, dataset: MnistTestSet, *, input_tensor=None, output_tensor=None,
                       limit=None, device="auto", feeds=None, labels=None, metric=None, raw_pixels=False,
                       batch_size=1000, progress=None) -> EvalResult:
    """Like `evaluate`, for a GraphDef already in memory (`source` names it in messages and the result)."""
    check_runnable(graph_def, source)
    if batch_size < 1 or (limit is not None and limit < 1):
        raise errors.CkptError(f"Cannot evaluate '{source}': batch size and limit must be positive.")
    images, truth = dataset.images[:limit], dataset.labels[:limit]
    choice = evalrun.choose_device(device)
    tf = _tf.tf()
    local = type(graph_def)()
    local.CopyFrom(graph_def)  # device pins are cleared on a copy: the caller's proto is left as it was
    for node in local.node:
        node.device = ""
    graph = tf.Graph()
    try:
        with _tf.quiet_tf_logs(), _tf.map_tf_errors(source, "load frozen graph"), graph.as_default(), \
                tf.device(choice.scope):
            tf.compat.v1.import_graph_def(local, name="")
    except ValueError as exc:  # import_graph_def's complaint about inputs, dtypes or attrs
        raise errors.CorruptCheckpoint(f"Cannot load frozen graph '{source}': {exc}") from exc
    plan = evalplan.make_plan(graph, local, source, input_tensor=input_tensor, output_tensor=output_tensor,
                              feeds=feeds, labels=labels, metric=metric)
    with tf.compat.v1.Session(graph=graph, config=choice.config) as sess:
        scores = evalrun.run_batches(sess, plan, images, truth, batch_size=batch_size, raw_pixels=raw_pixels,
                                     device=choice, progress=progress, source=source)
    return _result(source, plan, scores, truth, dataset, batch_size, raw_pixels)


def _result(source, plan, scores, truth, dataset, batch_size, raw_pixels) -> EvalResult:
    matrix = evalrun.confusion_matrix(truth, scores.predictions)
    counts = np.bincount(truth.astype(np.int64), minlength=NUM_CLASSES)
    per_class = tuple(float(matrix[i, i] / counts[i]) if counts[i] else None for i in range(NUM_CLASSES))
    total = len(truth)
    return EvalResult(
        model=source, accuracy=float(np.trace(matrix) / total) if total else 0.0, num_examples=total,
        per_class_accuracy=per_class, confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        images_per_second=total / scores.seconds if scores.seconds > 0 else 0.0, device=scores.device,
        input=plan.input, output=plan.output, output_kind=scores.output_kind,
        feeds=tuple((f.tensor.split(":")[0], f.reported) for f in plan.feeds),
        metric=EvalMetric(plan.metric, scores.metric) if plan.metric else None,
        dataset_source=dataset.source, batch_size=plan.fixed_batch or batch_size, raw_pixels=raw_pixels,
        misclassified=_misclassified(truth, scores.predictions),
    )


def _misclassified(truth: np.ndarray, predictions: np.ndarray) -> tuple[tuple[int, int, int], ...]:
    """(index in the test set, true class, predicted class) of the first MAX_MISCLASSIFIED errors."""
    wrong = np.flatnonzero(np.asarray(predictions) != np.asarray(truth))[:MAX_MISCLASSIFIED]
    return tuple((int(i), int(truth[i]), int(predictions[i])) for i in wrong)


def evaluate_checkpoint(checkpoint: str, outputs, out_dir: str | None = None, *, output_tensor: str | None = None,
                        **options) -> EvalResult:
    """Freeze `checkpoint` into a temporary folder under `out_dir` (never the checkpoint's), evaluate, clean up.

    `output_tensor` defaults to the first of `outputs`; `options` are `evaluate`'s.
    """
    prefix = resolve_prefix(checkpoint)
    parent = os.path.abspath(os.path.expanduser(out_dir or tempfile.gettempdir()))
    check_destination(os.path.join(parent, "frozen.pb"), prefix)  # before the temporary folder exists
    with tempfile.TemporaryDirectory(prefix="ckptlib-freeze-", dir=parent) as folder:
        frozen = freeze(prefix, outputs, os.path.join(folder, "frozen.pb"))
        result = evaluate(frozen.output, output_tensor=output_tensor or frozen.outputs[0], **options)
    return replace(result, model=prefix)


def eval_history(history: RunHistory | str, outputs, *, output_tensor: str | None = None,
                 mnist: str | MnistTestSet | None = None, allow_download: bool = False,
                 progress: evalrun.Progress | None = None, **options) -> EvalHistory:
    """Accuracy of every complete checkpoint of a run, frozen in memory one after the other.

    A checkpoint without its own `.meta` uses the run's nearest one (same run, same graph).
    `options` are `evaluate`'s (input_tensor, limit, device, feeds, labels, metric, raw_pixels, batch_size).
    """
    if not isinstance(history, RunHistory):
        history = load_history(history)
    names = output_names(outputs)
    dataset = mnist if isinstance(mnist, MnistTestSet) else load_mnist_test(mnist, allow_download=allow_download)
    metas = [(i, e.prefix + ".meta") for i, e in enumerate(history.checkpoints) if e.has_meta]
    points, skipped, device = [], [], ""
    for number, entry in enumerate(history.checkpoints, 1):
        if progress:
            progress(number - 1, len(history.checkpoints), f"checkpoint {entry.name}")
        if not entry.complete:
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, entry.problem or "incomplete checkpoint"))
            continue
        meta = entry.prefix + ".meta" if entry.has_meta else _nearest(metas, number - 1)
        if meta is None:
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, "no .meta graph in the run to freeze with"))
            continue
        try:
            frozen = freeze_graph_def(entry.prefix, names, meta=meta)
            result = evaluate_graph_def(frozen.graph_def, entry.prefix, dataset,
                                        output_tensor=output_tensor or names[0],
                                        **options)
        except _REQUEST_ERRORS:
            raise
        except errors.CkptError as exc:
            skipped.append(SkippedCheckpoint(entry.prefix, entry.step, str(exc)))
            continue
        device = result.device
        points.append(EvalPoint(entry.step, entry.prefix, result.accuracy, result.num_examples, meta,
                                result.metric.value if result.metric else None))
    if progress:
        progress(len(history.checkpoints), len(history.checkpoints), "done")
    return EvalHistory(history.path, tuple(points), tuple(skipped), dataset.source, device)


def _nearest(metas: list[tuple[int, str]], position: int) -> str | None:
    """The .meta of the closest earlier checkpoint in step order, else of the first later one."""
    before = [m for i, m in metas if i < position]
    after = [m for i, m in metas if i > position]
    return before[-1] if before else after[0] if after else None
