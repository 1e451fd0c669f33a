"""TensorFlow's V2 checkpoint bundle (`PREFIX.index` + `PREFIX.data-*`) behind the Checkpoint interface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from ckptlib import errors, storage
from ckptlib.formats import bundle, objectgraph
from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint, variable_info
from ckptlib.formats.bundle.table import FormatError
from ckptlib.formats.bundle.tensors import numpy_dtype_of
from ckptlib.formats.types import VariableInfo

BACKENDS = ("native", "tf")  # our own parser, or TensorFlow's reader as a cross-check
_SUFFIX = re.compile(r"(\.index|\.meta|\.data-\d{5}-of-\d{5})$")


def is_bundle(prefix: str) -> bool:
    """Whether PREFIX.index exists (the name alone: the bytes are checked when the index is parsed)."""
    return storage.exists(prefix + ".index")


class BundleCheckpoint(Checkpoint):
    """A V2 bundle read by ckptlib's own parser (`backend="native"`) or by TensorFlow's (`"tf"`).

    >>> ckpt = BundleCheckpoint("sample_checkpoints/linear/model.ckpt-500")
    >>> ckpt.read("linear/weights").shape
    (3, 1)
    """

    format_name = "tf-bundle-v2"

    def __init__(self, prefix: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        super().__init__(prefix, chunk_elements)
        self.backend = backend

    @cached_property
    def _index(self) -> bundle.BundleIndex:
        return bundle.read_index(self.prefix)

    @cached_property
    def _tf(self):
        from ckptlib.formats.tfreader import TFBundleReader  # local: only the cross-check pays for TensorFlow

        return TFBundleReader(self.prefix)

    @cached_property
    def variables(self) -> tuple[VariableInfo, ...]:
        """Every stored tensor sorted by name (partitioned variables once, with their full shape)."""
        if self.backend == "tf":
            infos = self._tf_variables()
        else:
            infos = tuple(variable_info(e.name, e.dtype, tuple(e.shape), e.size) for e in self._index.entries.values())
        return self._named(infos)

    def _named(self, infos: tuple[VariableInfo, ...]) -> tuple[VariableInfo, ...]:
        """Display names and kinds from the object graph, when the checkpoint is object-based."""
        graph = next((info for info in infos if info.name == objectgraph.OBJECT_GRAPH_KEY), None)
        if graph is None or graph.dtype != "string" or graph.shape != ():
            return infos
        what = f"Cannot read checkpoint '{self.prefix}': its object graph ({objectgraph.OBJECT_GRAPH_KEY})"
        if graph.nbytes > objectgraph.MAX_OBJECT_GRAPH_BYTES:
            raise errors.CorruptCheckpoint(f"{what} is {graph.nbytes} bytes, too large to be one.")
        raw = self._read_key(graph.name, graph.dtype).reshape(-1)[0]
        try:
            entries = self._index.entries if self.backend == "native" else {}
        except errors.CkptError:
            entries = {}
        checksums = {name: (None if e.is_partitioned else e.crc32c) for name, e in entries.items()}
        try:
            return objectgraph.with_graph_names(infos, bytes(raw), checksums)
        except FormatError as exc:
            raise errors.CorruptCheckpoint(f"{what} does not parse: {exc}.") from None

    def _tf_variables(self) -> tuple[VariableInfo, ...]:
        try:  # nbytes (the stored size) is in the index only; TensorFlow's reader does not tell it
            entries, native_error = self._index.entries, None
        except errors.CkptError as exc:  # the cross-check must not depend on the parser it checks
            entries, native_error = {}, exc
        try:
            listed = self._tf.shapes_and_dtypes()
        except errors.CkptError:
            if native_error is not None:  # both readers refuse the file: the native message is the precise one
                raise native_error from None
            raise
        infos = []
        for name, (shape, dtype) in sorted(listed.items()):
            nbytes = entries[name].size if name in entries else self._tf.stored_nbytes(name, dtype, shape)
            infos.append(variable_info(name, dtype, shape, nbytes))
        return tuple(infos)

    def iter_chunks(self, name: str, chunk_elements: int | None = None) -> Iterator[np.ndarray]:
        """The tensor flattened in C order as 1-D chunks (complex stays complex), for bounded memory.

        Chunks hold about `chunk_elements` elements (default: the checkpoint's `chunk_elements`); each
        is valid only until the next is requested. A tensor that fits in one chunk, and any string
        tensor, comes whole as a single chunk. With the native reader a damaged tensor raises
        CorruptCheckpoint after its last chunk (its crc32c is checked as the bytes stream past), so
        whatever was accumulated from the chunks must be discarded then: let the error propagate.
        The tf backend reads the whole tensor (TensorFlow has no ranged read) and slices it.

        >>> ckpt = BundleCheckpoint("sample_checkpoints/linear/model.ckpt-500")
        >>> [chunk.size for chunk in ckpt.iter_chunks("linear/weights", chunk_elements=2)]
        [2, 1]
        """
        info = self.info(name)
        if info.dtype == "string" or self.backend == "tf":
            return super().iter_chunks(name, chunk_elements)
        step = chunk_elements or self.chunk_elements
        dtype = numpy_dtype_of(info.dtype)
        return bundle.iter_chunks(self._index, info.name, chunk_bytes=step * (dtype.itemsize if dtype else 1))

    def read(self, name: str) -> np.ndarray:
        """The whole tensor (strings as an object array of bytes, bfloat16 via ml_dtypes)."""
        info = self.info(name)
        return self._read_key(info.name, info.dtype)

    def _read_key(self, key: str, dtype: str) -> np.ndarray:
        if self.backend == "tf":
            return self._tf.read(key, dtype)
        return bundle.read_tensor(self._index, key)

    def checksum(self, name: str) -> int | None:
        """The crc32c (unmasked) the index stores for the tensor; None for partitioned variables.

        None with the tf backend too: the cross-check must not lean on the native parser's index.
        """
        key = self.key_of(name)
        if self.backend == "tf":
            return None
        entry = self._index.entries.get(key)
        return None if entry is None or entry.is_partitioned else entry.crc32c


def sniff(path: str) -> str | None:
    """The bundle prefix `path` names (the prefix itself or one of its files), or None if it is not one."""
    prefix = strip_suffix(path)
    return prefix if is_bundle(prefix) else None


def strip_suffix(path: str) -> str:
    """'run/model.ckpt-5.index' -> 'run/model.ckpt-5' (a prefix is returned unchanged)."""
    return _SUFFIX.sub("", path)
