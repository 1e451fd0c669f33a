"""Open a checkpoint, list its variables, read one tensor: the only path to tensor bytes."""

from __future__ import annotations

import os
import re
from functools import cached_property

import numpy as np

from ckptlib import errors
from ckptlib.kinds import variable_kind
from ckptlib.types import VariableInfo

BACKENDS = ("native", "tf")
_SUFFIX = re.compile(r"(\.index|\.meta|\.data-\d{5}-of-\d{5})$")


def strip_suffix(path: str) -> str:
    """'run/model.ckpt-5.index' -> 'run/model.ckpt-5' (a prefix is returned unchanged)."""
    return _SUFFIX.sub("", path)


def resolve_prefix(path: str) -> str:
    """Turn what a user typed (prefix, one of its files, or a run folder) into a checkpoint prefix."""
    path = os.path.abspath(os.path.expanduser(str(path)))
    if os.path.isdir(path):
        from ckptlib.history import load_history  # local: history imports reader

        latest = load_history(path).latest
        if latest is None:
            raise errors.NotFound(f"Cannot open run '{path}': it holds no complete checkpoint.")
        return latest.prefix
    prefix = strip_suffix(path)
    if not os.path.exists(prefix + ".index"):
        if os.path.exists(path) and prefix == path:
            raise errors.NotACheckpoint(
                f"Cannot open '{path}': not a checkpoint prefix (no '{os.path.basename(path)}.index' beside it)."
            )
        raise errors.NotFound(f"Cannot open checkpoint '{prefix}': {os.path.basename(prefix)}.index does not exist.")
    return prefix


class Checkpoint:
    """An opened checkpoint. `variables` lists it, `read` returns one tensor as a numpy array.

    >>> ckpt = open_checkpoint("sample_checkpoints/linear")
    >>> [v.name for v in ckpt.variables][:2]
    ['global_step', 'linear/b']
    """

    def __init__(self, prefix: str, backend: str = "native"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.prefix = prefix
        self.backend = backend

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
        entries = self._index.entries
        if self.backend == "tf":
            return self._tf_variables(entries)
        return tuple(_info(e.name, e.dtype, tuple(e.shape), e.size) for e in entries.values())

    def _tf_variables(self, entries) -> tuple[VariableInfo, ...]:
        from ckptlib._tf import map_tf_errors

        with map_tf_errors(self.prefix):
            shapes = self._tf_reader.get_variable_to_shape_map()
            dtypes = self._tf_reader.get_variable_to_dtype_map()
        infos = []
        for name in sorted(shapes):
            dtype = dtypes[name].name
            nbytes = entries[name].size if name in entries else 0
            infos.append(_info(name, dtype, tuple(int(d) for d in shapes[name]), nbytes))
        return tuple(infos)

    @cached_property
    def _by_name(self) -> dict[str, VariableInfo]:
        return {var.name: var for var in self.variables}

    def info(self, name: str) -> VariableInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise errors.VariableNotFound(f"Checkpoint '{self.prefix}' has no variable '{name}'.") from None

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


def _info(name: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> VariableInfo:
    return VariableInfo(
        name=name,
        shape=shape,
        dtype=dtype,
        num_elements=int(np.prod(shape, dtype=np.int64)) if shape else 1,
        nbytes=int(nbytes),
        kind=variable_kind(name, dtype, shape),
    )
