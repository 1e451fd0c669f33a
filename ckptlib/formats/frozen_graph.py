"""A frozen GraphDef `.pb` as a checkpoint: the Const nodes that replaced its variables, by variable name."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ckptlib import _tf, errors, storage
from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint, variable_info
from ckptlib.formats.savedmodel_files import GRAPH_FILE as SAVED_MODEL_FILE
from ckptlib.formats.types import VariableInfo

MAX_GRAPH_BYTES = 2 << 30  # protobuf's message limit: a larger file is not one GraphDef
# convert_variables_to_constants (tensorflow/python/framework/convert_to_constants.py) keeps each
# variable's node name for its Const (TF1; the `/read` Identity is often optimised away), while a TF2
# function's captured variables become Consts named `unknown`, `unknown_0`, …. Literals the graph itself
# wrote are shapes and axes (integers) or scalars (dropout's 1.0): floating point arrays are the weights.
_NUMBER_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "complex64", "complex128"})


class FrozenGraphCheckpoint(Checkpoint):
    """The weights folded into a frozen GraphDef, named as the variables they replaced.

    Lets `diff model.pb run/model.ckpt-4000` say whether the export holds that step's weights.
    """

    format_name = "frozen-graph"

    def __init__(self, path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        super().__init__(path, chunk_elements)

    @cached_property
    def _constants(self) -> dict[str, object]:
        """variable name -> its Const node's TensorProto."""
        try:
            data = storage.read_bytes(self.prefix, MAX_GRAPH_BYTES)
        except ValueError:
            raise errors.UnsupportedFormat(f"Cannot read graph '{self.prefix}': larger than protobuf's 2 GB limit.") from None
        except OSError as exc:
            raise errors.NotFound(f"Cannot read graph '{self.prefix}': {exc.strerror or exc}.") from None
        tf = _tf.tf()
        graph_def = tf.compat.v1.GraphDef()
        try:
            with _tf.map_tf_errors(self.prefix, "read graph"):
                graph_def.ParseFromString(data)
        except errors.CkptError:
            graph_def = None
        if graph_def is None or not graph_def.node or not all(n.name and n.op for n in graph_def.node):
            raise errors.NotACheckpoint(
                f"Cannot open '{self.prefix}' as a frozen graph: not a binary GraphDef (pass a frozen .pb; a "
                "SavedModel is opened by its folder, a text graph must be converted with text_format first).")
        found = {}
        for node in graph_def.node:
            if node.op != "Const":
                continue
            tensor = node.attr["value"].tensor
            if tf.dtypes.as_dtype(tensor.dtype).name in _NUMBER_DTYPES and tensor.tensor_shape.dim:
                found[node.name] = tensor
        return found

    @cached_property
    def variables(self) -> tuple[VariableInfo, ...]:
        tf = _tf.tf()
        infos = []
        for name, tensor in sorted(self._constants.items()):
            dtype = tf.dtypes.as_dtype(tensor.dtype)
            shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
            if any(d < 0 for d in shape):
                raise errors.CorruptCheckpoint(f"Cannot read graph '{self.prefix}': constant '{name}' has shape {shape}.")
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            infos.append(variable_info(name, dtype.name, shape, count * dtype.size, kind="model"))
        return tuple(infos)

    def read(self, name: str) -> np.ndarray:
        info = self.info(name)
        with _tf.map_tf_errors(self.prefix, f"read constant '{info.name}' of"):
            array = _tf.tf().make_ndarray(self._constants[info.name])
        if array.shape != info.shape:
            raise errors.CorruptCheckpoint(f"Cannot read graph '{self.prefix}': constant '{info.name}' holds "
                                           f"{array.size} values for shape {list(info.shape)}.")
        return array


def sniff(path: str) -> str | None:
    """A `.pb` file that is not a SavedModel's saved_model.pb (the bytes are checked when it is opened)."""
    if not path.endswith(".pb") or path.rsplit("/", 1)[-1] == SAVED_MODEL_FILE:
        return None
    return path if storage.isfile(path) else None
