"""A SavedModel folder as a checkpoint: the V2 bundle in its `variables/`, named through its object graph."""

from __future__ import annotations

from ckptlib import errors, storage
from ckptlib.formats.base import CHUNK_ELEMENTS
from ckptlib.formats.savedmodel_files import GRAPH_FILE, VARIABLES
from ckptlib.formats.v2bundle import BundleCheckpoint, is_bundle, strip_suffix



def is_saved_model(folder: str) -> bool:
    """Whether `folder` holds a binary saved_model.pb (the name alone; the bytes are parsed when read)."""
    return storage.isfile(storage.join(folder, GRAPH_FILE))


class SavedModelCheckpoint(BundleCheckpoint):
    """The weights of a SavedModel (`tf.saved_model.save`, `model.export()`, Estimator exports).

    `folder` is the SavedModel; `prefix` its variables bundle. Its object graph names every weight by the
    model's own variable path, and lists each weight twice (`variables/N`, `_all_variables/M`): the
    second is a copy (`copy_of`).
    """

    format_name = "saved-model"

    def __init__(self, folder: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        self.folder = folder
        prefix = storage.join(folder, VARIABLES)
        if not is_bundle(prefix):
            raise errors.NotACheckpoint(
                f"Cannot open SavedModel '{folder}' as a checkpoint: it stores no variables "
                f"(no {VARIABLES}.index; a graph with its weights folded into constants).")
        super().__init__(prefix, backend, chunk_elements)


def sniff(path: str) -> str | None:
    """The SavedModel folder `path` names (the folder, its saved_model.pb, or its variables bundle), or None."""
    if path.endswith("/" + GRAPH_FILE) and storage.isfile(path):
        path = path[: -len(GRAPH_FILE) - 1]
    bundle = strip_suffix(path)
    if bundle.endswith("/" + VARIABLES):  # runs list the bundle's prefix: it is still the SavedModel's weights
        folder = bundle[: -len(VARIABLES) - 1]
        return folder if is_saved_model(folder) else None
    if is_bundle(bundle):  # a checkpoint prefix: answered from its folder's listing, no request for `path/`
        return None
    return path if storage.isdir(path) and is_saved_model(path) else None
