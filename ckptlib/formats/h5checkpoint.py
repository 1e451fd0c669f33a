"""The Checkpoint interface over datasets of HDF5 files (one or several shards), opened only while read."""

# Each listing or read opens the file and closes it again: no handle outlives a call, so a folder being
# written by training is never held open, and a file replaced between two reads is read afresh.

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from ckptlib import errors
from ckptlib.formats import h5io
from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint
from ckptlib.formats.types import VariableInfo

BACKENDS = ("native",)  # TensorFlow's checkpoint reader does not read HDF5: there is no cross-check backend


class H5Checkpoint(Checkpoint):
    """A checkpoint whose tensors are HDF5 datasets: a subclass lists them (`_list`) and says how to open a shard."""

    kind_of_file = "Keras file"  # begins every message: "Cannot read Keras weights 'x.weights.h5': ..."

    def __init__(self, path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        if backend == "tf":
            raise errors.UnsupportedFormat(
                f"Cannot read '{path}' with TensorFlow's reader: it reads TF checkpoints, not Keras HDF5 files "
                "(use the native reader).")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        super().__init__(path, chunk_elements)
        self.backend = backend

    @property
    def what(self) -> str:
        return f"Cannot read {self.kind_of_file} '{self.prefix}'"

    @abc.abstractmethod
    def _list(self) -> tuple[tuple[VariableInfo, ...], dict[str, int]]:
        """(every dataset as a VariableInfo, the shard each key lives in)."""

    @abc.abstractmethod
    def _open_source(self, source: int):
        """A context manager yielding the h5py.File of shard `source`."""

    @cached_property
    def _listing(self) -> tuple[tuple[VariableInfo, ...], dict[str, int]]:
        infos, sources = self._list()
        if not infos:
            raise errors.NotACheckpoint(f"{self.what}: it stores no weights.")
        return infos, sources

    @property
    def variables(self) -> tuple[VariableInfo, ...]:
        """Every stored dataset, sorted by key; display names from the Keras paths the file implies."""
        return self._listing[0]

    @contextlib.contextmanager
    def _dataset(self, info: VariableInfo):
        with self._open_source(self._listing[1].get(info.name, 0)) as handle:
            dataset = handle.get(info.name)
            if dataset is None or not hasattr(dataset, "shape"):
                raise errors.CorruptCheckpoint(f"{self.what}: dataset '{info.name}' is gone (the file changed).")
            yield dataset

    def read(self, name: str) -> np.ndarray:
        """The whole tensor (bfloat16 via ml_dtypes, strings as an object array of bytes)."""
        info = self.info(name)
        with self._dataset(info) as dataset, self._reading(info):
            return h5io.read_dataset(dataset, info.dtype)

    def iter_chunks(self, name: str, chunk_elements: int | None = None) -> Iterator[np.ndarray]:
        """The tensor flattened in C order as 1-D chunks, each one hyperslab read (bounded memory)."""
        info = self.info(name)  # here, not on the first chunk: an unknown name fails at the call
        return self._chunks(info, chunk_elements or self.chunk_elements)

    def _chunks(self, info: VariableInfo, step: int) -> Iterator[np.ndarray]:
        with self._dataset(info) as dataset, self._reading(info):
            yield from h5io.iter_dataset(dataset, info.dtype, step)

    @contextlib.contextmanager
    def _reading(self, info: VariableInfo):
        try:
            yield
        except OSError as exc:  # h5py raises OSError for a damaged chunk or a short read
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise errors.CorruptCheckpoint(f"{self.what}: dataset '{info.name}' cannot be read ({first}).") from None
