"""TensorFlow's own checkpoint reader, used as a cross-check of the native bundle parser (`--reader tf`)."""

# TensorFlow's reader trusts the index: a negative or 2^63 dimension, 255+ dimensions, an element count
# that overflows, an unknown dtype, a slice listed twice (CHECK failures in tensor_shape.cc, tensor.cc and
# checkpoint_reader.cc) abort the process when the file is opened, and crafted string lengths crash it
# when a tensor is read (measured with TF 2.21: SIGABRT and SIGSEGV). So the native parser vets every
# file first: TensorFlow only ever sees an index that parses, and only reads a tensor whose stored bytes
# fit its shape. What it then reads and lists is its own: the values still cross-check the native reader's.

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from ckptlib import errors
from ckptlib.formats import bundle
from ckptlib.formats.bundle.index import bundle_error, one_line
from ckptlib.formats.bundle.protos import num_elements
from ckptlib.formats.bundle.tensors import numpy_dtype_of, vet_tensor


@contextlib.contextmanager
def tf_errors(path: str, action: str = "read checkpoint") -> Iterator[None]:
    """map_tf_errors, plus the plain Python errors TensorFlow's reader raises on odd files.

    ValueError: a tensor of more than 64 dimensions ("Cannot convert tensor with 66 dimensions to NumPy
    array"), partitioned strings ("Dtype string not supported"), missing slices; UnicodeDecodeError: a key
    that is not UTF-8; NotImplementedError: sliced V1 checkpoints; MemoryError and OverflowError for sizes.
    """
    from ckptlib._tf import map_tf_errors

    try:
        with map_tf_errors(path, action):
            yield
    except errors.CkptError:
        raise
    except (ValueError, UnicodeError, NotImplementedError, TypeError, RuntimeError) as exc:
        raise errors.UnsupportedFormat(one_line(f"Cannot {action} '{path}': TensorFlow's reader failed: "
                                                f"{type(exc).__name__}: {str(exc).strip()}")) from None  # fmt: skip
    except (MemoryError, OverflowError) as exc:
        raise errors.CkptError(one_line(f"Cannot {action} '{path}': TensorFlow's reader ran out of room "
                                        f"({type(exc).__name__})")) from None  # fmt: skip


class TFBundleReader:
    """`tf.train.load_checkpoint(prefix)` with every TensorFlow error mapped to a CkptError naming the file."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    @cached_property
    def _vetted(self) -> bundle.BundleIndex:
        index = bundle.read_index(self.prefix)  # a file the native parser refuses never reaches TensorFlow
        unknown = next((e for e in index.entries.values() if e.dtype.startswith("unknown")), None)
        if unknown is not None:  # TensorFlow's reader aborts on listing it
            raise bundle_error(errors.UnsupportedFormat, self.prefix, f"variable '{unknown.name}' has dtype "
                               f"{unknown.dtype}, which TensorFlow's reader cannot list")  # fmt: skip
        for name, parts in index.parts.items():  # a slice listed twice: a CHECK in checkpoint_reader.cc aborts
            if len({part.bounds for part in parts}) < len(parts):
                raise bundle_error(errors.CorruptCheckpoint, self.prefix, index.entries[name].problem or
                                   f"partitioned variable '{name}' lists a slice twice")  # fmt: skip
        return index

    @cached_property
    def _reader(self):
        from ckptlib._tf import tf

        self._vetted  # noqa: B018 - raises for a file TensorFlow must not see
        with tf_errors(self.prefix):
            return tf().train.load_checkpoint(self.prefix)

    def shapes_and_dtypes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """{name: (shape, dtype name)} of every stored tensor, as TensorFlow lists them."""
        with tf_errors(self.prefix):
            shapes = self._reader.get_variable_to_shape_map()
            dtypes = self._reader.get_variable_to_dtype_map()
        return {name: (tuple(int(d) for d in shapes[name]), dtypes[name].name) for name in shapes}

    def read(self, name: str, dtype: str) -> np.ndarray:
        vet_tensor(self._vetted, name)  # its bytes fit its shape (TensorFlow allocates first, then reads)
        with tf_errors(self.prefix):
            value = self._reader.get_tensor(name)
        # get_tensor returns a scalar string as plain bytes: keep strings an object array of bytes.
        return np.asarray(value, dtype=object) if dtype == "string" else np.asarray(value)

    def stored_nbytes(self, name: str, dtype: str, shape: tuple[int, ...]) -> int:
        """The stored size without the index: itemsize x elements; strings as WriteStringTensor lays them out."""
        count = num_elements(shape)
        if dtype != "string":
            np_dtype = numpy_dtype_of(dtype)
            return count * np_dtype.itemsize if np_dtype is not None else 0
        # tensor_bundle.cc WriteStringTensor: a varint64 length per element, a uint32 checksum, the bytes.
        values = self.read(name, dtype).reshape(-1)
        return 4 + sum(len(v) + _varint_size(len(v)) for v in values)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)
