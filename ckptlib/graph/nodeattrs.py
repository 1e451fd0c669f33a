"""Turn a NodeDef's AttrValue protos into JSON-safe values a person can read."""

# AttrValue and friends: tensorflow/core/framework/attr_value.proto, tensor.proto, tensor_shape.proto,
# types.proto. Tensors are decoded with tf.make_ndarray (it knows every dtype and tensor_content).

from __future__ import annotations

import math

import numpy as np

from ckptlib.formats.bundle.protos import DTYPE_NAMES

MAX_TENSOR_VALUES = 32  # small constants are shown whole; larger ones by their first values
_FIRST_VALUES = 8
_DECODE_LIMIT = 1 << 20  # elements; above this a constant's values are not decoded at all


def dtype_name(enum: int) -> str:
    """DataType enum -> numpy-style name; reference types (enum + 100) get a '_ref' suffix."""
    if enum > 100:
        return dtype_name(enum - 100) + "_ref"
    return DTYPE_NAMES.get(enum, "invalid" if enum == 0 else f"dtype{enum}")


def shape_value(shape) -> list[int | None] | None:
    """TensorShapeProto -> [dims] with None for unknown dimensions; None for an unknown rank."""
    if shape.unknown_rank:
        return None
    return [d.size if d.size >= 0 else None for d in shape.dim]


def _scalar(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, complex):
        return [_scalar(value.real), _scalar(value.imag)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Infinity
    return value


def tensor_value(tf, tensor) -> dict:
    """TensorProto -> {'dtype', 'shape', and 'value' (small) or 'num_elements' + 'first_values'}."""
    shape = shape_value(tensor.tensor_shape) or []
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    doc: dict = {"dtype": dtype_name(tensor.dtype), "shape": shape}
    if count > _DECODE_LIMIT:
        doc["num_elements"] = count
        return doc
    try:
        array = tf.make_ndarray(tensor)
    except (TypeError, ValueError) as exc:  # a dtype numpy cannot hold (resource, variant, quantized)
        doc["num_elements"] = count
        doc["note"] = f"values not decoded: {exc}"
        return doc
    flat = [_scalar(v) for v in array.reshape(-1)[: max(MAX_TENSOR_VALUES, _FIRST_VALUES)]]
    if count <= MAX_TENSOR_VALUES:
        doc["value"] = _scalar(array.item()) if array.ndim == 0 else _nested(flat, shape)
    else:
        doc["num_elements"] = count
        doc["first_values"] = flat[:_FIRST_VALUES]
    return doc


def _nested(flat: list, shape: list) -> list:
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nested(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def func_value(tf, func) -> dict:
    return {"function": func.name, "attrs": {k: attr_value(tf, v) for k, v in sorted(func.attr.items())}}


def attr_value(tf, value):
    """One AttrValue -> a JSON-safe value (str, int, float, bool, list, dict or None)."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return _scalar(value.s)
    if kind in ("i", "b"):
        return getattr(value, kind)
    if kind == "f":
        return _scalar(float(value.f))
    if kind == "type":
        return dtype_name(value.type)
    if kind == "shape":
        return shape_value(value.shape)
    if kind == "tensor":
        return tensor_value(tf, value.tensor)
    if kind == "func":
        return func_value(tf, value.func)
    if kind == "placeholder":
        return f"${value.placeholder}"
    if kind == "list":
        return _list_value(tf, value.list)
    return None


def _list_value(tf, items) -> list:
    converters = {
        "s": _scalar, "i": int, "f": lambda v: _scalar(float(v)), "b": bool, "type": dtype_name,
        "shape": shape_value, "tensor": lambda t: tensor_value(tf, t), "func": lambda f: func_value(tf, f),
    }
    for field, convert in converters.items():
        values = getattr(items, field)
        if len(values):
            return [convert(v) for v in values]
    return []


def node_attrs(tf, node) -> tuple[tuple[str, object], ...]:
    """Every attribute of a NodeDef, sorted by key, as (key, readable value)."""
    return tuple((key, attr_value(tf, node.attr[key])) for key in sorted(node.attr))
