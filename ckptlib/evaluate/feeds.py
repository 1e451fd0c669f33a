"""Values for the extra placeholders of a frozen graph: --feed overrides, defaults, or a clear error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckptlib.errors import BadGraphIO, CkptError, NodeNotFound, UnfedPlaceholder
from ckptlib.evaluate.tfgraph import describe, ops_by_name, static_shape
from ckptlib.graph import scan as graphscan

# Dropout must be off and training flags false for inference; any other placeholder has no safe default.
DEFAULTS = {"keep_prob": 1.0, "dropout_rate": 0.0, "training_flag": False}
NUM_CLASSES = 10


@dataclass(frozen=True)
class Feed:
    """A value fed to a placeholder on every batch (`per_batch`: repeated along a batch dimension)."""

    tensor: str
    value: np.ndarray
    per_batch: bool
    reported: object  # what `feeds` reports: the scalar as given or defaulted


def parse_feeds(items) -> dict[str, str]:
    """['keep_prob=1.0', 'is_training=false'] -> {'keep_prob': '1.0', ...}; a bad item is a clear error."""
    feeds = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CkptError(f"A feed is written NAME=VALUE, not '{item}'.")
        feeds[name.strip()] = value.strip()
    return feeds


def parse_value(text):
    """A --feed value: 'true'/'false', an int or a float (a non-string value is returned unchanged)."""
    if not isinstance(text, str):
        return text
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(lowered)
    except ValueError:
        pass
    try:
        return float(lowered)
    except ValueError:
        raise BadGraphIO(f"Feed value '{text}' is not a number or true/false.") from None


def make_feed(tensor, value, source: str) -> Feed:
    """A constant feed shaped for `tensor`: scalars broadcast, a batch dimension filled per batch."""
    value = parse_value(value)
    array = np.asarray(value, dtype=tensor.dtype.as_numpy_dtype)
    shape = static_shape(tensor)
    if shape is None or array.shape == shape or (array.ndim == 0 and shape == ()):
        return Feed(tensor.name, array, False, _reported(value))
    if array.ndim == 0 and all(d is not None for d in shape):
        return Feed(tensor.name, np.full(shape, array), False, _reported(value))
    if array.ndim == 0 and shape[0] is None and all(d is not None for d in shape[1:]):
        return Feed(tensor.name, np.full(shape[1:], array), True, _reported(value))
    raise BadGraphIO(f"Cannot feed {value!r} to {describe(tensor)} of '{source}': give a scalar for a "
                     "placeholder whose dimensions (other than the batch) are known.")


def _reported(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def plan_feeds(graph, source: str, needed: set, input_tensor, labels, overrides: dict, roles: dict[str, str]):
    """Feeds for every placeholder the fetches depend on, other than the input and the labels."""
    ops = ops_by_name(graph)
    feeds = []
    for name, value in sorted(overrides.items()):
        op_name = name.split(":")[0]
        if op_name not in ops or ops[op_name].type not in graphscan.PLACEHOLDERS:
            raise NodeNotFound(f"Graph '{source}' has no placeholder '{name}' to feed."
                               + graphscan.close_matches(op_name, [n for n, o in ops.items()
                                                                    if o.type in graphscan.PLACEHOLDERS]))
        if op_name in (input_tensor.op.name, labels):
            raise BadGraphIO(f"'{name}' is the {'input' if op_name == input_tensor.op.name else 'labels'} "
                             "placeholder; ckptlib feeds it from MNIST.")
        feeds.append(make_feed(ops[op_name].outputs[0], value, source))
    given = {f.tensor.split(":")[0] for f in feeds} | {input_tensor.op.name, labels}
    unfed = []
    for op in sorted(needed, key=lambda o: o.name):
        if op.type not in graphscan.PLACEHOLDERS or op.name in given or op.type == "PlaceholderWithDefault":
            continue
        role = roles.get(op.name, "other")
        if role in DEFAULTS:
            feeds.append(make_feed(op.outputs[0], DEFAULTS[role], source))
        else:
            hint = f"--labels {op.name}" if role == "labels" else f"--feed {op.name}=VALUE"
            unfed.append(f"{describe(op.outputs[0])} (give {hint})")
    if unfed:
        raise UnfedPlaceholder(f"Cannot evaluate '{source}': the output depends on placeholders ckptlib cannot "
                               f"fill: {'; '.join(unfed)}.")
    return tuple(feeds)


def labels_layout(tensor, source: str) -> tuple[bool, np.dtype]:
    """(one_hot, dtype) for a labels placeholder: [N] class ids or [N, 10] one-hot rows."""
    shape = static_shape(tensor)
    if shape is None:
        return tensor.dtype.is_floating, tensor.dtype.as_numpy_dtype
    if len(shape) == 1:
        return False, tensor.dtype.as_numpy_dtype
    if len(shape) == 2 and shape[1] in (None, NUM_CLASSES):
        return True, tensor.dtype.as_numpy_dtype
    raise BadGraphIO(f"Labels placeholder {describe(tensor)} of '{source}' is neither [N] ids nor [N, 10] one-hot.")
