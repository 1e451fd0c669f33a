"""Tell what a path is from its names and bytes, then open it with the right format's reader.

Adding a format: write its module in this package (a Checkpoint subclass, a `sniff(path)` that
returns the path to open or None without parsing the file, an opener) and add one row to FORMATS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ckptlib import errors, storage
from ckptlib.formats import frozen_graph, keras_archive, keras_h5, keras_legacy, savedmodel, v1table, v2bundle
from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint


@dataclass(frozen=True)
class Format:
    """One checkpoint format: its name, how to recognise a path, how to open it."""

    name: str
    sniff: Callable[[str], str | None]  # absolute path -> the path to open, or None when it is not this format
    open: Callable[..., Checkpoint]  # (path, backend=..., chunk_elements=...) -> Checkpoint


# Most specific first: the first format whose sniff answers wins.
FORMATS: tuple[Format, ...] = (
    Format("saved-model", savedmodel.sniff, savedmodel.SavedModelCheckpoint),
    Format("tf-bundle-v2", v2bundle.sniff, v2bundle.BundleCheckpoint),
    Format("tf-checkpoint-v1", v1table.sniff, v1table.V1Checkpoint),
    Format("frozen-graph", frozen_graph.sniff, frozen_graph.FrozenGraphCheckpoint),
    Format("keras", keras_archive.sniff, keras_archive.KerasArchiveCheckpoint),
    # Both HDF5 rows open by layout, not name: Keras 2 wrote legacy weights to `x.weights.h5` too.
    Format("keras-weights-h5", keras_h5.sniff, keras_legacy.open_h5_checkpoint),
    Format("keras-legacy-h5", keras_legacy.sniff, keras_legacy.open_h5_checkpoint),
)


def detect(path: str) -> tuple[Format, str] | None:
    """(format, path to open) for what `path` names, or None when no format recognises it."""
    path = storage.absolute(path)
    for fmt in FORMATS:
        target = fmt.sniff(path)
        if target is not None:
            return fmt, target
    return None


def open_checkpoint(path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS) -> Checkpoint:
    """Open one checkpoint file or prefix in whatever format it is; its variables are listed at once.

    A run folder is not a checkpoint here: `ckptlib.runs.open_checkpoint` resolves it to its latest one.

    >>> ckpt = open_checkpoint("sample_checkpoints/linear/model.ckpt-500.index")
    >>> ckpt.format_name, len(ckpt.variables)
    ('tf-bundle-v2', 3)
    """
    path = storage.absolute(path)
    found = detect(path)
    if found is None:
        raise unknown_path_error(path)
    fmt, target = found
    ckpt = fmt.open(target, backend=backend, chunk_elements=chunk_elements)
    ckpt.variables  # noqa: B018 - parse the index now so a bad file fails here, not later
    return ckpt


def unknown_path_error(path: str) -> errors.CkptError:
    """The error for a path no format recognises: missing, a folder, or a file of another kind."""
    prefix = v2bundle.strip_suffix(path)
    base = prefix.rsplit("/", 1)[-1]
    if storage.isdir(path):
        return errors.NotACheckpoint(f"Cannot open '{path}': a folder, not a checkpoint.")
    if storage.exists(path) and prefix == path:
        return errors.NotACheckpoint(f"Cannot open '{path}': not a checkpoint prefix (no '{base}.index' beside it).")
    return errors.NotFound(f"Cannot open checkpoint '{prefix}': {base}.index does not exist.")
