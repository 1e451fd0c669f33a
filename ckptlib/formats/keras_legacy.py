"""Legacy Keras HDF5 files (`model.save("x.h5")`, Keras 2's `save_weights("x.h5")`), and which reader an `.h5` needs."""

# keras/src/legacy/saving/legacy_h5_format.py (Keras 3) and tf_keras/src/saving/legacy/hdf5_format.py:
#   whole model:  /model_weights (attr layer_names) / <layer> (attr weight_names) / <weight name>
#                 /optimizer_weights (attr weight_names) / <weight name>
#   weights only: / (attr layer_names) / <layer> (attr weight_names) / <weight name>
# Weight names are Keras paths: `sequential/hidden/kernel` from Keras 3, `dense/kernel:0` from Keras 2.

from __future__ import annotations

from ckptlib import errors, storage
from ckptlib.formats import h5io
from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint, variable_info
from ckptlib.formats.h5checkpoint import H5Checkpoint
from ckptlib.formats.keras_h5 import SHARDED_SUFFIX, WEIGHTS_SUFFIX, KerasWeightsCheckpoint, is_keras3_layout, \
    is_legacy_layout
from ckptlib.formats.types import VariableInfo

LEGACY_SUFFIXES = (".h5", ".hdf5", ".keras.h5")
_ITERATION_LEAVES = {"iteration", "iter", "iterations"}


class LegacyH5Checkpoint(H5Checkpoint):
    """A legacy Keras `.h5`: each weight stored under its own name, so display names are the file's."""

    format_name = "keras-legacy-h5"
    kind_of_file = "Keras file"

    def _open_source(self, source: int):
        return h5io.open_h5(self.prefix, self.what)

    def _list(self) -> tuple[tuple[VariableInfo, ...], dict[str, int]]:
        with self._open_source(0) as handle:
            if not is_legacy_layout(handle):
                raise errors.NotACheckpoint(f"{self.what}: an HDF5 file, but not a Keras model or weights file "
                                            "(no 'model_weights' group or 'layer_names' attribute).")
            model = handle["model_weights"] if hasattr(handle.get("model_weights"), "keys") else handle
            infos = []
            for layer in _names(model.attrs.get("layer_names")) or sorted(model.keys()):
                group = model.get(layer)
                if hasattr(group, "keys"):
                    infos.extend(_weights(group, "model"))
            optimizer = handle.get("optimizer_weights")
            if hasattr(optimizer, "keys"):
                infos.extend(_weights(optimizer, "optimizer"))
        unique = {info.name: info for info in infos}
        return tuple(sorted(unique.values(), key=lambda i: i.name)), {}


def _weights(group, kind: str) -> list[VariableInfo]:
    """The datasets a layer (or the optimizer) group lists in weight_names, then any it does not list."""
    found = []
    listed = _names(group.attrs.get("weight_names"))
    seen = set()
    for weight in listed:
        dataset = group.get(weight)
        if hasattr(dataset, "shape"):
            found.append(_info(dataset, weight, kind))
            seen.add(dataset.name)

    def visit(_, obj):
        if hasattr(obj, "shape") and obj.name not in seen:
            found.append(_info(obj, obj.name[len(group.name) + 1 :], kind))

    group.visititems(visit)
    return found


def _info(dataset, weight: str, kind: str) -> VariableInfo:
    display = weight[:-2] if weight.endswith(":0") else weight
    shape = tuple(int(d) for d in dataset.shape)
    dtype = h5io.dtype_name(dataset)
    leaf = display.rsplit("/", 1)[-1]
    if kind == "optimizer" and leaf in _ITERATION_LEAVES and shape == () and dtype.startswith(("int", "uint")):
        kind = "counter"
    return variable_info(dataset.name.lstrip("/"), dtype, shape, h5io.nbytes_of(dataset), full_name=display,
                         kind=kind)


def _names(value) -> list[str]:
    if value is None:
        return []
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in list(value)]


def open_h5_checkpoint(path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS) -> Checkpoint:
    """A `.h5` / `.weights.h5` / `.weights.json` opened by the reader its layout needs, not its name.

    Keras 2 wrote `save_weights("x.weights.h5")` in the legacy layout; a renamed Keras 3 file may end in `.h5`.
    """
    if path.endswith(SHARDED_SUFFIX):
        return KerasWeightsCheckpoint(path, backend, chunk_elements)
    kind_of_file = "Keras weights" if path.endswith(WEIGHTS_SUFFIX) else "Keras file"
    with h5io.open_h5(path, f"Cannot read {kind_of_file} '{path}'") as handle:
        keras3 = is_keras3_layout(handle)
    if keras3:
        return KerasWeightsCheckpoint(path, backend, chunk_elements)
    return LegacyH5Checkpoint(path, backend, chunk_elements)  # its listing says when it is not Keras at all


def sniff(path: str) -> str | None:
    """`path` when its name is a legacy Keras file's (`.h5`, `.hdf5`; missing too: opening says so), else None."""
    if path.endswith(LEGACY_SUFFIXES) and not path.endswith(WEIGHTS_SUFFIX) and not storage.isdir(path):
        return path
    return None
