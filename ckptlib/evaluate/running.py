"""Evaluation inside the current process, as the evaluation child runs it: vet, plan, run the batches, score.

Before anything runs, the graph is cut off its input queues and checked against an allowlist of pure
compute ops (opsafety.py) and the memory limit (limits.py); then input, output and every placeholder the
output needs are resolved (plan.py); then the images go through in batches (batches.py). Callers go
through evaluation.py, which does all this in a child process.
"""

from __future__ import annotations

import re

import numpy as np

from ckptlib import _tf, errors
from ckptlib.errors import BadGraphIO, DatasetError, DeviceUnavailable, ForbiddenOps, NodeNotFound, UnfedPlaceholder
from ckptlib.evaluate import batches as evalrun
from ckptlib.evaluate import graphfile, limits as limitcheck
from ckptlib.evaluate import plan as evalplan
from ckptlib.evaluate.feeds import NUM_CLASSES
from ckptlib.evaluate.freeze import freeze_graph_def, output_names
from ckptlib.evaluate.history_plan import PlannedCheckpoint, plan_history
from ckptlib.evaluate.mnist import load_mnist_test
from ckptlib.evaluate.types import EvalHistory, EvalMetric, EvalPoint, EvalResult, Limits, MnistTestSet
from ckptlib.runs.types import RunHistory, SkippedCheckpoint

# Errors about the request itself (names, device, data set, a hostile graph, a limit) stop a history at once.
REQUEST_ERRORS = (NodeNotFound, BadGraphIO, UnfedPlaceholder, ForbiddenOps, DeviceUnavailable, DatasetError,
                  errors.LimitExceeded)
_NODE = re.compile(r"Node: '([^']+)'")
MAX_MISCLASSIFIED = 200  # enough for a gallery; the confusion matrix counts them all


def dataset_of(mnist, allow_download: bool = False) -> MnistTestSet:
    return mnist if isinstance(mnist, MnistTestSet) else load_mnist_test(mnist, allow_download=allow_download)


def vetted(graph_def, source: str, limits: Limits):
    """(the graph fit to run, {'dequeue:i': placeholder}) once it passed every check; nothing has run yet."""
    local, cut = graphfile.prepare(graph_def)
    graphfile.check_runnable(local, source)
    limitcheck.check_allocations(local, source, limits)
    return local, cut


def evaluate_graph_def(graph_def, source: str, dataset: MnistTestSet, *, limits: Limits = Limits(),
                       input_tensor=None, output_tensor=None, limit=None, device="auto", feeds=None, labels=None,
                       metric=None, raw_pixels=False, batch_size=1000, progress=None) -> EvalResult:
    """Accuracy of `graph_def` on `dataset`, here and now (`source` names it in messages and the result)."""
    local, _ = vetted(graph_def, source, limits)
    if batch_size < 1 or (limit is not None and limit < 1):
        raise errors.CkptError(f"Cannot evaluate '{source}': batch size and limit must be positive.")
    images, truth = dataset.images[:limit], dataset.labels[:limit]
    choice = evalrun.choose_device(device)
    tf = _tf.tf()
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
        try:
            scores = evalrun.run_batches(sess, plan, images, truth, batch_size=batch_size, raw_pixels=raw_pixels,
                                         device=choice, progress=progress, source=source)
        except errors.CkptError as exc:
            if _out_of_memory(tf, exc.__cause__):
                node = _NODE.search(str(exc.__cause__))
                raise limitcheck.memory_error("evaluate", source, limits,
                                              f"at node '{node.group(1)}'" if node else "") from exc
            raise
    return _result(source, plan, scores, truth, dataset, batch_size, raw_pixels)


def _out_of_memory(tf, cause) -> bool:
    """Whether TensorFlow failed for want of memory: under RLIMIT_AS an allocation fails with ResourceExhausted
    ('OOM when allocating'), and a constant Grappler folded from a huge Fill cannot be materialised."""
    text = str(cause or "")
    return isinstance(cause, tf.errors.ResourceExhaustedError) or "OOM when allocating" in text or (
        "Cannot parse tensor from proto" in text)


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
        misclassified=_misclassified(truth, scores.predictions), padding=plan.padding,
    )


def _misclassified(truth: np.ndarray, predictions: np.ndarray) -> tuple[tuple[int, int, int], ...]:
    """(index in the test set, true class, predicted class) of the first MAX_MISCLASSIFIED errors."""
    wrong = np.flatnonzero(np.asarray(predictions) != np.asarray(truth))[:MAX_MISCLASSIFIED]
    return tuple((int(i), int(truth[i]), int(predictions[i])) for i in wrong)


def eval_history(history: RunHistory, outputs, dataset: MnistTestSet, *, limits: Limits = Limits(),
                 output_tensor: str | None = None, progress=None, on_checkpoint=None, **options) -> EvalHistory:
    """Accuracy of every complete checkpoint of a run, frozen in memory one after the other; `on_checkpoint`
    is told when each one starts (the parent restarts its clock there). A checkpoint without its own `.meta`
    uses the run's nearest one (history_plan.py)."""
    names = output_names(outputs)
    points, skipped, device = [], [], ""
    planned = plan_history(history)
    for number, item in enumerate(planned):
        if on_checkpoint:
            on_checkpoint(item.entry.prefix)
        if progress:
            progress(number, len(planned), f"checkpoint {item.entry.name}")
        if item.skipped is not None:
            skipped.append(item.skipped)
            continue
        try:
            point, result = evaluate_planned(item, names, dataset, limits, output_tensor, options)
        except REQUEST_ERRORS:
            raise
        except errors.CkptError as exc:
            skipped.append(SkippedCheckpoint(item.entry.prefix, item.entry.step, str(exc)))
            continue
        device = result.device
        points.append(point)
    if progress:
        progress(len(planned), len(planned), "done")
    return EvalHistory(history.path, tuple(points), tuple(skipped), dataset.source, device)


def evaluate_planned(item: PlannedCheckpoint, names, dataset: MnistTestSet, limits: Limits,
                     output_tensor: str | None, options: dict) -> tuple[EvalPoint, EvalResult]:
    """(its EvalPoint, the full result) for one checkpoint the plan evaluates (item.skipped is None)."""
    entry = item.entry
    frozen = freeze_graph_def(entry.prefix, names, meta=item.meta)
    result = evaluate_graph_def(frozen.graph_def, entry.prefix, dataset, limits=limits,
                                output_tensor=output_tensor or names[0], **options)
    return EvalPoint(entry.step, entry.prefix, result.accuracy, result.num_examples, item.meta,
                     result.metric.value if result.metric else None), result
