"""Open a checkpoint, list its variables, read one tensor: the only path to tensor bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from ckptlib import errors, storage
from ckptlib.kinds import variable_kind
from ckptlib.types import VariableInfo

BACKENDS = ("native", "tf")
CHUNK_ELEMENTS = 1 << 20  # elements per streamed chunk (4 MB of float32); see Checkpoint.iter_chunks
_SUFFIX = re.compile(r"(\.index|\.meta|\.data-\d{5}-of-\d{5})$")


def strip_suffix(path: str) -> str:
    """'run/model.ckpt-5.index' -> 'run/model.ckpt-5' (a prefix is returned unchanged)."""
    return _SUFFIX.sub("", path)


def resolve_prefix(path: str) -> str:
    """Turn what a user typed (prefix, one of its files, or a run folder) into a checkpoint prefix."""
    path = storage.absolute(path)
    if storage.isdir(path):
        from ckptlib.history import load_history  # local: history imports reader

        latest = load_history(path).latest
        if latest is None:
            raise errors.NotFound(f"Cannot open run '{path}': it holds no complete checkpoint.")
        return latest.prefix
    prefix = strip_suffix(path)
    if not storage.exists(prefix + ".index"):
        base = prefix.rsplit("/", 1)[-1]
        if storage.exists(path) and prefix == path:
            raise errors.NotACheckpoint(f"Cannot open '{path}': not a checkpoint prefix (no '{base}.index' beside it).")
        raise errors.NotFound(f"Cannot open checkpoint '{prefix}': {base}.index does not exist.")
    return prefix


class Checkpoint:
    """An opened checkpoint. `variables` lists it, `read` returns one tensor as a numpy array.

    >>> ckpt = open_checkpoint("sample_checkpoints/linear")
    >>> [v.name for v in ckpt.variables][:2]
    ['global_step', 'linear/bias']
    """

    def __init__(self, prefix: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1, not {chunk_elements}")
        self.prefix = prefix
        self.backend = backend
        self.chunk_elements = chunk_elements

    @cached_property
    def _index(self):
        from ckptlib import bundle

        return bundle.read_index(self.prefix)

    @cached_property
    def _tf_reader(self):
        from ckptlib._tf import map_tf_errors, tf

        with map_tf_errors(self.prefix):
            return tf().train.load_checkpoint(self.prefix)

    @cached_property
    def variables(self) -> tuple[VariableInfo, ...]:
        """Every stored tensor sorted by name (partitioned variables once, with their full shape)."""
        if self.backend == "tf":
            return self._tf_variables()
        return tuple(_info(e.name, e.dtype, tuple(e.shape), e.size) for e in self._index.entries.values())

    def _tf_variables(self) -> tuple[VariableInfo, ...]:
        from ckptlib._tf import map_tf_errors

        try:  # nbytes (the stored size) is in the index only; TensorFlow's reader does not tell it
            entries, native_error = self._index.entries, None
        except errors.CkptError as exc:  # the cross-check must not depend on the parser it checks
            entries, native_error = {}, exc
        try:
            with map_tf_errors(self.prefix):
                shapes = self._tf_reader.get_variable_to_shape_map()
                dtypes = self._tf_reader.get_variable_to_dtype_map()
        except errors.CkptError:
            if native_error is not None:  # both readers refuse the file: the native message is the precise one
                raise native_error from None
            raise
        infos = []
        for name in sorted(shapes):
            dtype, shape = dtypes[name].name, tuple(int(d) for d in shapes[name])
            nbytes = entries[name].size if name in entries else self._tf_nbytes(name, dtype, shape)
            infos.append(_info(name, dtype, shape, nbytes))
        return tuple(infos)

    def _tf_nbytes(self, name: str, dtype: str, shape: tuple[int, ...]) -> int:
        """The stored size without the index: itemsize x elements; strings as WriteStringTensor lays them out."""
        count = int(np.prod(shape, dtype=np.int64))
        if dtype != "string":
            from ckptlib.bundle.tensors import numpy_dtype_of

            np_dtype = numpy_dtype_of(dtype)
            return count * np_dtype.itemsize if np_dtype is not None else 0
        # tensor_bundle.cc WriteStringTensor: a varint64 length per element, a uint32 checksum, the bytes.
        from ckptlib._tf import map_tf_errors

        with map_tf_errors(self.prefix):
            values = np.asarray(self._tf_reader.get_tensor(name), dtype=object).reshape(-1)
        return 4 + sum(len(v) + _varint_size(len(v)) for v in values)

    @cached_property
    def _by_name(self) -> dict[str, VariableInfo]:
        return {var.name: var for var in self.variables}

    def info(self, name: str) -> VariableInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise errors.VariableNotFound(f"Checkpoint '{self.prefix}' has no variable '{name}'.") from None

    def iter_chunks(self, name: str, chunk_elements: int | None = None) -> Iterator[np.ndarray]:
        """The tensor flattened in C order as 1-D chunks (complex stays complex), for bounded memory.

        Chunks hold about `chunk_elements` elements (default: the checkpoint's `chunk_elements`); each
        is valid only until the next is requested. A tensor that fits in one chunk, and any string
        tensor, comes whole as a single chunk. With the native reader a damaged tensor raises
        CorruptCheckpoint after its last chunk (its crc32c is checked as the bytes stream past), so
        whatever was accumulated from the chunks must be discarded then: let the error propagate.
        The tf backend reads the whole tensor (TensorFlow has no ranged read) and slices it.

        >>> ckpt = open_checkpoint("sample_checkpoints/linear")
        >>> [chunk.size for chunk in ckpt.iter_chunks("linear/weights", chunk_elements=2)]
        [2, 1]
        """
        info = self.info(name)
        step = chunk_elements or self.chunk_elements
        if info.dtype == "string":
            return iter((self.read(name).reshape(-1),))
        if self.backend == "tf":
            flat = self.read(name).reshape(-1)
            return (flat[start : start + step] for start in range(0, max(flat.size, 1), step))
        from ckptlib import bundle
        from ckptlib.bundle.tensors import numpy_dtype_of

        dtype = numpy_dtype_of(info.dtype)
        return bundle.iter_chunks(self._index, name, chunk_bytes=step * (dtype.itemsize if dtype else 1))

    def read(self, name: str) -> np.ndarray:
        """The whole tensor (strings as an object array of bytes, bfloat16 via ml_dtypes)."""
        info = self.info(name)
        if self.backend == "tf":
            from ckptlib._tf import map_tf_errors

            with map_tf_errors(self.prefix):
                value = self._tf_reader.get_tensor(name)
            # get_tensor returns a scalar string as plain bytes: keep strings an object array of bytes.
            return np.asarray(value, dtype=object) if info.dtype == "string" else np.asarray(value)
        from ckptlib import bundle

        return bundle.read_tensor(self._index, name)


def open_checkpoint(path: str, backend: str = "native") -> Checkpoint:
    """Open a checkpoint by prefix, by one of its files, or by run folder (its latest checkpoint)."""
    ckpt = Checkpoint(resolve_prefix(path), backend)
    ckpt.variables  # noqa: B018 - parse the index now so a bad file fails here, not later
    return ckpt


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _info(name: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> VariableInfo:
    return VariableInfo(
        name=name,
        shape=shape,
        dtype=dtype,
        num_elements=int(np.prod(shape, dtype=np.int64)) if shape else 1,
        nbytes=int(nbytes),
        kind=variable_kind(name, dtype, shape),
    )
