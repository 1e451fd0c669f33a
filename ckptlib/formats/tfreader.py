"""TensorFlow's own checkpoint reader, used as a cross-check of the native bundle parser (`--reader tf`)."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ckptlib.formats.bundle.tensors import numpy_dtype_of


class TFBundleReader:
    """`tf.train.load_checkpoint(prefix)` with every TensorFlow error mapped to a CkptError naming the file."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    @cached_property
    def _reader(self):
        from ckptlib._tf import map_tf_errors, tf

        with map_tf_errors(self.prefix):
            return tf().train.load_checkpoint(self.prefix)

    def shapes_and_dtypes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """{name: (shape, dtype name)} of every stored tensor, as TensorFlow lists them."""
        from ckptlib._tf import map_tf_errors

        with map_tf_errors(self.prefix):
            shapes = self._reader.get_variable_to_shape_map()
            dtypes = self._reader.get_variable_to_dtype_map()
        return {name: (tuple(int(d) for d in shapes[name]), dtypes[name].name) for name in shapes}

    def read(self, name: str, dtype: str) -> np.ndarray:
        from ckptlib._tf import map_tf_errors

        with map_tf_errors(self.prefix):
            value = self._reader.get_tensor(name)
        # get_tensor returns a scalar string as plain bytes: keep strings an object array of bytes.
        return np.asarray(value, dtype=object) if dtype == "string" else np.asarray(value)

    def stored_nbytes(self, name: str, dtype: str, shape: tuple[int, ...]) -> int:
        """The stored size without the index: itemsize x elements; strings as WriteStringTensor lays them out."""
        count = int(np.prod(shape, dtype=np.int64))
        if dtype != "string":
            np_dtype = numpy_dtype_of(dtype)
            return count * np_dtype.itemsize if np_dtype is not None else 0
        # tensor_bundle.cc WriteStringTensor: a varint64 length per element, a uint32 checksum, the bytes.
        values = self.read(name, dtype).reshape(-1)
        return 4 + sum(len(v) + _varint_size(len(v)) for v in values)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)
