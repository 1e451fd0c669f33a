"""Keras 3 weights files: `model.save_weights("x.weights.h5")`, and its sharded form `x.weights.json` + shards."""

# Sharded saves (save_weights(..., max_shard_size=GB), keras/src/saving/saving_lib.py ShardedH5IOStore) write
# `x.weights.json` — {"metadata": {"total_size"}, "weight_map": {"/layers/dense/vars": ["x_00000.weights.h5"]}}
# — beside shards that each hold part of the tree in the plain layout; one object's datasets may span shards.

from __future__ import annotations

import json
import os

from ckptlib import errors, storage
from ckptlib.formats import h5io, keras_tree
from ckptlib.formats.base import CHUNK_ELEMENTS
from ckptlib.formats.h5checkpoint import H5Checkpoint
from ckptlib.formats.types import VariableInfo

WEIGHTS_SUFFIX = ".weights.h5"
SHARDED_SUFFIX = ".weights.json"
MAX_SHARD_MAP_BYTES = 16 << 20  # a weight map names each layer once: a few MB for the largest models
_KERAS3_GROUPS = ("vars", "layers", "_layer_checkpoint_dependencies")  # the latter: Keras 2.13's `.keras`


def is_keras3_layout(handle) -> bool:
    """Whether an open h5py.File has the Keras 3 layout (a `vars` group at the top, or `layers/`)."""
    return any(hasattr(handle.get(name), "keys") for name in _KERAS3_GROUPS)


def is_legacy_layout(handle) -> bool:
    """Whether an open h5py.File has the Keras 2 / legacy `.h5` layout (`model_weights/`, or `layer_names`)."""
    return hasattr(handle.get("model_weights"), "keys") or "layer_names" in handle.attrs


class KerasWeightsCheckpoint(H5Checkpoint):
    """A Keras 3 `.weights.h5` (or sharded `.weights.json`): layer weights by position, named by Keras' rules.

    The file names the model and every layer (the `vars` groups' `name`) but no variable: variables are
    named by the order Keras' built-in layers create them (Dense: kernel, bias), checked against their
    shapes, with a `note` saying so; others keep `<layer path>/vars/<i>`.
    """

    format_name = "keras-weights-h5"
    kind_of_file = "Keras weights"

    def __init__(self, path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        super().__init__(path, backend, chunk_elements)
        self.shards = _shard_paths(path, self.what) if path.endswith(SHARDED_SUFFIX) else (path,)

    def _open_source(self, source: int):
        return h5io.open_h5(self.shards[source], self._what_shard(source))

    def _what_shard(self, source: int) -> str:
        if len(self.shards) == 1 and self.shards[0] == self.prefix:
            return self.what
        return f"{self.what}: shard {os.path.basename(self.shards[source])}"

    def _list(self) -> tuple[tuple[VariableInfo, ...], dict[str, int]]:
        nodes: dict[str, keras_tree.Node] = {}
        for source in range(len(self.shards)):
            with self._open_source(source) as handle:
                if source == 0 and not is_keras3_layout(handle):  # later shards may hold only `optimizer/vars`
                    raise errors.NotACheckpoint(f"{self._what_shard(source)}: an HDF5 file, but not Keras 3 weights "
                                                "(no 'vars' or 'layers' group).")
                keras_tree.scan(handle, source, nodes)
        sources = {s.key: s.source for node in nodes.values() for s in node.stored}
        return keras_tree.name_variables(nodes), sources


def _shard_paths(path: str, what: str) -> tuple[str, ...]:
    """The shard files a `.weights.json` names, in order; CkptErrors when it is not a weight map or one is gone."""
    try:
        raw = storage.read_bytes(path, MAX_SHARD_MAP_BYTES)
    except FileNotFoundError:
        raise errors.NotFound(f"{what}: no such file.") from None
    except ValueError:
        raise errors.NotACheckpoint(f"{what}: too large to be a Keras weight map.") from None
    try:
        weight_map = json.loads(raw.decode("utf-8"))["weight_map"]
        listed = [weight_map[k] if isinstance(weight_map[k], list) else [weight_map[k]] for k in weight_map]
        names = list(dict.fromkeys(name for files in listed for name in files))
        if not names or not all(isinstance(n, str) and n and "/" not in n and n not in (".", "..") for n in names):
            raise ValueError("bad shard names")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise errors.NotACheckpoint(f"{what}: not a Keras weight map (no 'weight_map' of shard file names).") from None
    folder = os.path.dirname(path) if not storage.is_url(path) else path.rsplit("/", 1)[0]
    shards = tuple(storage.join(folder, name) for name in names)
    missing = [os.path.basename(s) for s in shards if not storage.isfile(s)]
    if missing:
        raise errors.IncompleteCheckpoint(f"{what}: shard {missing[0]} is missing"
                                          + (f" (and {len(missing) - 1} more)." if len(missing) > 1 else "."))
    return shards


def shards_of(path: str) -> tuple[str, ...]:
    """The files one `.weights.json` save consists of (the map and its shards); the path alone otherwise."""
    if not path.endswith(SHARDED_SUFFIX):
        return (path,)
    try:
        return (path, *_shard_paths(path, path))
    except errors.CkptError:
        return (path,)


def sniff(path: str) -> str | None:
    """`path` when its name is a Keras 3 weights file's (`.weights.h5`, `.weights.json`; missing too), else None."""
    if path.endswith((WEIGHTS_SUFFIX, SHARDED_SUFFIX)) and not storage.isdir(path):
        return path
    return None
