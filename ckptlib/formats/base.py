"""The one interface every checkpoint format implements: list variables, read a tensor, stream its chunks."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from ckptlib import errors
from ckptlib.formats.kinds import variable_kind
from ckptlib.formats.types import VariableInfo

CHUNK_ELEMENTS = 1 << 20  # elements per streamed chunk (4 MB of float32); see Checkpoint.iter_chunks


class Checkpoint(abc.ABC):
    """An opened checkpoint of any format. `variables` lists it, `read` returns one tensor as numpy.

    A format subclasses this and implements `variables` and `read`; it overrides `iter_chunks` when it
    can stream without holding the whole tensor, and `checksum` when the file stores one per tensor.

    >>> from ckptlib.formats import open_checkpoint
    >>> ckpt = open_checkpoint("sample_checkpoints/linear/model.ckpt-500")
    >>> [v.name for v in ckpt.variables][:2]
    ['global_step', 'linear/bias']
    """

    format_name: str = "unknown"  # a short name a person can read, e.g. "tf-bundle-v2"

    def __init__(self, prefix: str, chunk_elements: int = CHUNK_ELEMENTS):
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1, not {chunk_elements}")
        self.prefix = prefix  # the path the checkpoint was opened by (a bundle's prefix, a file, a folder)
        self.chunk_elements = chunk_elements

    @property
    @abc.abstractmethod
    def variables(self) -> tuple[VariableInfo, ...]:
        """Every stored tensor sorted by name."""

    @abc.abstractmethod
    def read(self, name: str) -> np.ndarray:
        """The whole tensor (strings as an object array of bytes, bfloat16 via ml_dtypes)."""

    def iter_chunks(self, name: str, chunk_elements: int | None = None) -> Iterator[np.ndarray]:
        """The tensor flattened in C order as 1-D chunks of about `chunk_elements` elements.

        This default reads the whole tensor and slices it; formats with ranged reads stream instead.
        Each chunk is valid only until the next one is requested.
        """
        step = chunk_elements or self.chunk_elements
        flat = self.read(name).reshape(-1)
        if self.info(name).dtype == "string":
            return iter((flat,))
        return (flat[start : start + step] for start in range(0, max(flat.size, 1), step))

    def checksum(self, name: str) -> int | None:
        """The content checksum the file stores for this tensor (e.g. a bundle's crc32c), else None."""
        self.info(name)
        return None

    @cached_property
    def _by_name(self) -> dict[str, VariableInfo]:
        found = {var.name: var for var in self.variables}
        by_display: dict[str, list[VariableInfo]] = {}
        for var in self.variables:
            if var.display_name != var.name and var.copy_of is None:
                by_display.setdefault(var.display_name, []).append(var)
        for display, matches in by_display.items():  # a display name is an alias only when it names one tensor
            if len(matches) == 1 and display not in found:
                found[display] = matches[0]
        return found

    def info(self, name: str) -> VariableInfo:
        """The variable's VariableInfo by raw key or display name; VariableNotFound naming the checkpoint."""
        try:
            return self._by_name[name]
        except KeyError:
            raise errors.VariableNotFound(f"Checkpoint '{self.prefix}' has no variable '{name}'.") from None

    def key_of(self, name: str) -> str:
        """The raw key of a variable named by key or display name."""
        return self.info(name).name


def variable_info(name: str, dtype: str, shape: tuple[int, ...], nbytes: int, **names) -> VariableInfo:
    """A VariableInfo with its element count and kind filled in (the kind from the raw key)."""
    return VariableInfo(
        name=name,
        shape=shape,
        dtype=dtype,
        num_elements=int(np.prod(shape, dtype=np.int64)) if shape else 1,
        nbytes=int(nbytes),
        kind=names.pop("kind", None) or variable_kind(name, dtype, shape),
        **names,
    )
