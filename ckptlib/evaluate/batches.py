"""Run a planned frozen graph over MNIST in batches: device choice, feeding, scoring."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ckptlib import _tf, errors
from ckptlib.errors import BadGraphIO, DeviceUnavailable
from ckptlib.evaluate.feeds import NUM_CLASSES
from ckptlib.evaluate.plan import EvalPlan

DEVICES = ("auto", "cpu", "gpu")
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class DeviceChoice:
    """Where to place the graph, and the session config that enforces it."""

    scope: str  # tf.device() string for the imported ops
    label: str  # for people: 'CPU' or 'GPU:0 (name)'
    config: object  # tf.compat.v1.ConfigProto


@dataclass(frozen=True)
class Scores:
    """What the batch loop measured."""

    predictions: np.ndarray  # int64 [N]
    output_kind: str
    seconds: float
    metric: float | None
    device: str


def _gpus(tf) -> list:
    # The first device query logs a cuInit error straight to fd 2 on machines without a GPU.
    with _tf.silenced_stderr():
        return tf.config.list_physical_devices("GPU")


def choose_device(device: str) -> DeviceChoice:
    """'auto': the first GPU TensorFlow sees, else the CPU; 'gpu' without one is an error."""
    if device not in DEVICES:
        raise errors.CkptError(f"Unknown device '{device}': use one of {', '.join(DEVICES)}.")
    tf = _tf.tf()
    gpus = _gpus(tf)
    if device == "gpu" and not gpus:
        raise DeviceUnavailable("No GPU is visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty; "
                                "CUDA libraries missing or no device): use --device cpu or auto "
                                "(the dashboard's 'Device' option).")
    if device == "cpu" or not gpus:
        config = tf.compat.v1.ConfigProto(device_count={"GPU": 0}, allow_soft_placement=True)
        return DeviceChoice("/device:CPU:0", "CPU", _no_substitutions(config))
    details = tf.config.experimental.get_device_details(gpus[0])
    name = details.get("device_name")
    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True  # evaluation needs little memory; leave the rest to others
    return DeviceChoice("/device:GPU:0", f"GPU:0 ({name})" if name else "GPU:0", _no_substitutions(config))


def _no_substitutions(config):
    """Grappler's implementation selector swaps a function call for another library function that declares the
    same `api_implements`, and its function optimizer rewrites calls: run the functions opsafety vetted, as
    they are."""
    rewrite = config.graph_options.rewrite_options
    rewrite.implementation_selector = rewrite.OFF
    rewrite.function_optimization = rewrite.OFF
    return config


def _placed_on(run_metadata, op_name: str, device: DeviceChoice) -> str:
    """The device the session actually placed the output op on (soft placement may have moved it)."""
    for partition in run_metadata.partition_graphs:
        for node in partition.node:
            if node.name == op_name and node.device:
                kind = node.device.rsplit("device:", 1)[-1]  # 'CPU:0', 'GPU:0'
                if kind.startswith("GPU"):
                    return device.label if device.label.startswith(kind) else kind
                return "CPU"
    return device.label


def images_for(plan: EvalPlan, images: np.ndarray, raw_pixels: bool) -> np.ndarray:
    """MNIST uint8 images in the input's layout and dtype, scaled to [0, 1] for float inputs unless raw; zero
    padding around each digit first when the input wants 32x32 (LeNet)."""
    if plan.padding:
        pad = plan.padding
        images = np.pad(images.reshape(len(images), 28, 28), ((0, 0), (pad, pad), (pad, pad)))
    x = images.reshape((len(images),) + plan.example_shape)
    if np.issubdtype(plan.input_dtype, np.floating):
        x = x.astype(plan.input_dtype)
        return x if raw_pixels else x / plan.input_dtype(255.0)
    return x.astype(plan.input_dtype)


def labels_for(plan: EvalPlan, labels: np.ndarray) -> np.ndarray:
    if plan.labels_one_hot:
        return np.eye(NUM_CLASSES, dtype=plan.labels_dtype)[labels]
    return labels.astype(plan.labels_dtype)


def run_batches(sess, plan: EvalPlan, images: np.ndarray, labels: np.ndarray, *, batch_size: int,
                raw_pixels: bool, device: DeviceChoice, progress: Progress | None, source: str) -> Scores:
    """Predictions for every image; a graph with a fixed batch size gets its last batch padded."""
    tf = _tf.tf()
    batch = plan.fixed_batch or batch_size
    total = len(labels)
    predictions = np.empty(total, np.int64)
    fetches = [plan.output] + ([plan.metric] if plan.metric else [])
    metric_sum, seconds, probabilities, placed = 0.0, 0.0, True, device.label
    for start in range(0, total, batch):
        count = min(batch, total - start)
        feed = _batch_feed(plan, images[start:start + count], labels[start:start + count], batch, raw_pixels)
        options, metadata = None, None
        if start == 0:
            options = tf.compat.v1.RunOptions(output_partition_graphs=True)
            metadata = tf.compat.v1.RunMetadata()
        began = time.perf_counter()
        with _tf.map_tf_errors(source, f"evaluate {plan.output} of"):
            values = sess.run(fetches, feed, options=options, run_metadata=metadata)
        seconds += time.perf_counter() - began
        if metadata is not None:
            placed = _placed_on(metadata, plan.output.split(":")[0], device)
        scores = np.asarray(values[0])[:count]
        predictions[start:start + count] = _classes(plan, scores, count)
        if not plan.output_is_ids:
            sums = scores.sum(axis=1)
            probabilities = probabilities and bool(scores.min() >= 0 and np.allclose(sums, 1.0, atol=1e-3))
        if plan.metric:
            metric_sum += float(np.mean(values[1])) * count
        if progress:
            progress(start + count, total, "images")
    kind = "class_ids" if plan.output_is_ids else "probabilities" if probabilities else "logits"
    return Scores(predictions, kind, seconds, metric_sum / total if plan.metric and total else None, placed)


def _batch_feed(plan: EvalPlan, images, labels, batch: int, raw_pixels: bool) -> dict:
    if len(labels) < batch and plan.fixed_batch:  # pad by repeating real images; their outputs are dropped
        images, labels = np.resize(images, (batch,) + images.shape[1:]), np.resize(labels, batch)
    feed = {plan.input: images_for(plan, images, raw_pixels)}
    for item in plan.feeds:
        value = item.value
        feed[item.tensor] = np.broadcast_to(value, (len(labels),) + value.shape) if item.per_batch else value
    if plan.labels:
        feed[plan.labels] = labels_for(plan, labels)
    return feed


def _classes(plan: EvalPlan, scores: np.ndarray, count: int) -> np.ndarray:
    if plan.output_is_ids:
        if scores.shape != (count,):
            raise BadGraphIO(f"Output {plan.output} gave shape {list(scores.shape)} for {count} images, "
                             f"expected [{count}].")
        return scores.astype(np.int64)
    if scores.ndim != 2 or scores.shape != (count, NUM_CLASSES):
        raise BadGraphIO(f"Output {plan.output} gave shape {list(scores.shape)} for {count} images, "
                         f"expected [{count}, {NUM_CLASSES}].")
    return np.argmax(scores, axis=1)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """10x10 counts, rows the true class; predictions outside 0..9 count as wrong and appear nowhere."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    valid = (predictions >= 0) & (predictions < NUM_CLASSES)
    np.add.at(matrix, (labels[valid].astype(np.int64), predictions[valid]), 1)
    return matrix
