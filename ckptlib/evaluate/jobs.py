"""The jobs the evaluation child runs (worker.py): set TensorFlow up, bound the memory, then freeze or evaluate."""

from __future__ import annotations

import importlib
from dataclasses import replace

from ckptlib import _tf, errors
from ckptlib.evaluate import batches, graphfile, running, savedmodel_eval
from ckptlib.evaluate.freeze import freeze_graph_def, output_names, write_frozen
from ckptlib.evaluate.limits import apply_memory_limit
from ckptlib.evaluate.types import Limits


def setup(channel, limits: Limits, device: str | None) -> None:
    """Import TensorFlow and start the device (a GPU's context, the thread pools) before the memory limit:
    that footprint is TensorFlow's, not the graph's. Then the parent's clock starts."""
    tf = _tf.tf()
    if device is not None:
        choice = batches.choose_device(device)
        with _tf.quiet_tf_logs(), tf.compat.v1.Session(graph=tf.Graph(), config=choice.config):
            pass
    apply_memory_limit(limits.memory_mb)
    channel.ready()


def evaluate_file(channel, limits: Limits, model: str, mnist, allow_download: bool, options: dict):
    setup(channel, limits, options.get("device", "auto"))
    graph_def = graphfile.load_graph_def(model)
    running.vetted(graph_def, model, limits)  # a hostile graph is refused before the data set is even read
    dataset = running.dataset_of(mnist, allow_download)
    return running.evaluate_graph_def(graph_def, model, dataset, limits=limits, progress=channel.progress, **options)


def evaluate_graph(channel, limits: Limits, graph_bytes: bytes, source: str, mnist, allow_download: bool,
                   options: dict):
    setup(channel, limits, options.get("device", "auto"))
    graph_def = _tf.tf().compat.v1.GraphDef()
    with _tf.map_tf_errors(source, "read frozen graph"):
        graph_def.ParseFromString(graph_bytes)
    running.vetted(graph_def, source, limits)
    dataset = running.dataset_of(mnist, allow_download)
    return running.evaluate_graph_def(graph_def, source, dataset, limits=limits, progress=channel.progress,
                                      **options)


def evaluate_saved_model(channel, limits: Limits, folder: str, signature: str, input_key, output_key, mnist,
                         allow_download: bool, options: dict):
    """One signature, frozen here from saved_model.pb and the variables bundle (tf.saved_model.load would run
    the model's own restore function); the result names the signature's input and output keys."""
    setup(channel, limits, options.get("device", "auto"))
    frozen = savedmodel_eval.freeze_signature(folder, signature, input_key, output_key)
    running.vetted(frozen.graph_def, folder, limits)
    dataset = running.dataset_of(mnist, allow_download)
    options = {**options, "feeds": frozen.feeds_by_op(options.get("feeds") or {})}  # --feed names signature keys
    result = running.evaluate_graph_def(frozen.graph_def, folder, dataset, limits=limits, progress=channel.progress,
                                        input_tensor=frozen.input_tensor, output_tensor=frozen.output_tensor,
                                        **options)
    return replace(result, input=frozen.input_key, output=frozen.output_key, feeds=frozen.feeds_by_key(result.feeds))


def freeze(channel, limits: Limits, prefix: str, outputs, out: str, meta: str | None):
    setup(channel, limits, None)
    return write_frozen(prefix, outputs, out, meta)


def evaluate_checkpoint(channel, limits: Limits, prefix: str, outputs, output_tensor, mnist, allow_download: bool,
                        options: dict):
    setup(channel, limits, options.get("device", "auto"))
    frozen = freeze_graph_def(prefix, outputs)
    dataset = running.dataset_of(mnist, allow_download)
    return running.evaluate_graph_def(frozen.graph_def, prefix, dataset, limits=limits, progress=channel.progress,
                                      output_tensor=output_tensor or frozen.outputs[0], **options)


def eval_history(channel, limits: Limits, history, outputs, output_tensor, mnist, allow_download: bool,
                 options: dict):
    setup(channel, limits, options.get("device", "auto"))
    names = output_names(outputs)
    dataset = running.dataset_of(mnist, allow_download)
    return running.eval_history(history, names, dataset, limits=limits, output_tensor=output_tensor,
                                progress=channel.progress, on_checkpoint=channel.step, **options)


def evaluate_planned(channel, limits: Limits, item, outputs, output_tensor, mnist, allow_download: bool,
                     options: dict):
    """One checkpoint of eval-history as its own job (a task of a Dask run): (EvalPoint, device, dataset source)."""
    setup(channel, limits, options.get("device", "auto"))
    dataset = running.dataset_of(mnist, allow_download)
    point, result = running.evaluate_planned(item, output_names(outputs), dataset, limits, output_tensor, options)
    return point, result.device, dataset.source


JOBS = {"evaluate_file": evaluate_file, "evaluate_graph": evaluate_graph, "freeze": freeze,
        "evaluate_checkpoint": evaluate_checkpoint, "eval_history": eval_history,
        "evaluate_saved_model": evaluate_saved_model, "evaluate_planned": evaluate_planned}


def find(name: str):
    """A job by name, or 'module:function' of the caller's own (called as function(channel, limits, **kwargs))."""
    if name in JOBS:
        return JOBS[name]
    module, sep, function = name.partition(":")
    if not sep:
        raise errors.CkptError(f"The evaluation process has no job '{name}'.")
    return getattr(importlib.import_module(module), function)
