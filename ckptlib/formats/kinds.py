"""Classify a checkpoint key as model weight, optimizer state, counter or metadata."""

from __future__ import annotations

import re

KINDS = ("model", "optimizer", "counter", "metadata")

# TF1 slot suffixes created by tf.compat.v1.train optimizers (Adam's m and v are "Adam" and "Adam_1").
_V1_SLOT = re.compile(
    r"/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|AdagradDA|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|"
    r"ExponentialMovingAverage|ProximalAdagrad|Nadam|Nadam_\d+|Adamax|Adamax_\d+)$"
)
_V1_OPTIMIZER_SCALARS = re.compile(r"(^|/)(beta1_power|beta2_power)(_\d+)?$")
_COUNTER_LEAVES = {"global_step", "save_counter", "iter", "iteration", "iterations", "step", "_iterations"}


def variable_kind(name: str, dtype: str, shape: tuple[int, ...]) -> str:
    """Return 'model', 'optimizer', 'counter' or 'metadata' for a raw checkpoint key."""
    if name == "_CHECKPOINTABLE_OBJECT_GRAPH" or name.startswith("_CHECKPOINTABLE"):
        return "metadata"
    path = name.split("/.ATTRIBUTES/")[0]
    leaf = path.rsplit("/", 1)[-1]
    is_int = dtype.startswith(("int", "uint"))
    if leaf in _COUNTER_LEAVES and is_int and len(shape) == 0:
        return "counter"
    if ".OPTIMIZER_SLOT" in name or path.split("/", 1)[0] == "optimizer":
        return "optimizer"
    if _V1_SLOT.search(path) or _V1_OPTIMIZER_SCALARS.search(path):
        return "optimizer"
    return "model"


def graph_kind(key_kind: str, name: str, dtype: str, shape: tuple[int, ...], reached_by: str) -> str:
    """The kind of a key the object graph resolved: counters and metadata by their name, the rest by the graph.

    A Keras 3 model's weights are stored under the optimizer's `_trainable_variables` keys, yet the model
    reaches them: `reached_by` ("model" or "optimizer") decides, whatever the key or the attribute name says.
    """
    if key_kind in ("counter", "metadata") or variable_kind(name, dtype, shape) == "counter":
        return key_kind if key_kind in ("counter", "metadata") else "counter"
    return "optimizer" if reached_by == "optimizer" else "model"
