"""Decode a MetaGraphDef's CollectionDefs: node names, numbers, and the protos some collections hold.

Formats: tensorflow/core/protobuf/meta_graph.proto (CollectionDef), tensorflow/core/framework/variable.proto
(VariableDef, the items of the *_variables collections), tensorflow/core/protobuf/control_flow.proto
(CondContextDef, WhileContextDef), saver.proto (SaverDef), queue_runner.proto (QueueRunnerDef).
"""

from __future__ import annotations

import importlib
import re

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from ckptlib import _tf
from ckptlib.graph.types import CollectionInfo

# Collections TensorFlow serializes as VariableDef protos (tf.compat.v1.GraphKeys + register_proto_function).
VARIABLE_COLLECTIONS = frozenset({
    "variables", "trainable_variables", "local_variables", "model_variables", "moving_average_variables",
    "metric_variables", "global_step",
})
_CONTEXT_COLLECTIONS = {"cond_context": "CondContextDef", "while_context": "WhileContextDef"}
_VARIABLE_NAME = re.compile(r"^[^:]+:\d+$")


def pb2(module: str):
    """A TensorFlow proto module ('framework.variable_pb2'); importing one runs tensorflow/__init__,
    so TensorFlow is imported through ckptlib._tf first (banners silenced)."""
    _tf.tf()
    return importlib.import_module(f"tensorflow.core.{module}")


def decode_collection(key: str, coll) -> CollectionInfo:
    """A CollectionDef's items as readable strings (VariableDef and context protos decoded to names)."""
    kind = coll.WhichOneof("kind") or "empty"
    if kind == "node_list":
        items = tuple(coll.node_list.value)
    elif kind == "bytes_list":
        items = tuple(_bytes_item(key, raw) for raw in coll.bytes_list.value)
    elif kind in ("int64_list", "float_list"):
        items = tuple(str(v) for v in getattr(coll, kind).value)
    elif kind == "any_list":
        items = tuple(a.type_url for a in coll.any_list.value)
    else:
        items = ()
    return CollectionInfo(key, kind, items)


def _bytes_item(key: str, raw: bytes) -> str:
    if key in VARIABLE_COLLECTIONS:
        proto = pb2("framework.variable_pb2").VariableDef()
    elif key in _CONTEXT_COLLECTIONS:
        proto = getattr(pb2("protobuf.control_flow_pb2"), _CONTEXT_COLLECTIONS[key])()
    elif key == "savers":
        proto = pb2("protobuf.saver_pb2").SaverDef()
    elif key == "queue_runners":
        proto = pb2("protobuf.queue_runner_pb2").QueueRunnerDef()
    else:
        return _text_or_variable(raw)
    try:
        proto.ParseFromString(raw)
    except DecodeError:
        return f"<{len(raw)} bytes that do not parse as {type(proto).__name__}>"
    return _proto_label(proto)


def _proto_label(proto) -> str:
    kind = type(proto).__name__
    if kind == "VariableDef":
        return proto.variable_name
    if kind == "SaverDef":
        return f"saver (restore op {proto.restore_op_name}, filename tensor {proto.filename_tensor_name})"
    if kind == "QueueRunnerDef":
        return proto.queue_name
    return proto.context_name


def _text_or_variable(raw: bytes) -> str:
    """A custom collection's bytes: text when they are text, a VariableDef's name when they are one."""
    try:
        text = raw.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    proto = pb2("framework.variable_pb2").VariableDef()
    try:
        proto.ParseFromString(raw)
    except DecodeError:
        return f"<{len(raw)} bytes>"
    if _VARIABLE_NAME.match(proto.variable_name) and not len(unknown_fields.UnknownFieldSet(proto)):
        return proto.variable_name
    return f"<{len(raw)} bytes>"
