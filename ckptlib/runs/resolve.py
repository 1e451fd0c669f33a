"""What a user typed as CKPT (a checkpoint, one of its files, or a run folder) → the checkpoint it means."""

from __future__ import annotations

from ckptlib import errors, storage
from ckptlib.formats import CHUNK_ELEMENTS, Checkpoint, detect
from ckptlib.formats import open_checkpoint as open_format
from ckptlib.formats.sniff import unknown_path_error
from ckptlib.runs.history import load_history


def resolve_prefix(path: str) -> str:
    """The checkpoint `path` means: a run folder means its latest complete checkpoint.

    >>> resolve_prefix("sample_checkpoints/linear").endswith("linear/model.ckpt-500")
    True
    """
    path = storage.absolute(path)
    found = detect(path)
    if found is not None:
        return found[1]
    if storage.isdir(path):
        latest = load_history(path).latest
        if latest is None:
            raise errors.NotFound(f"Cannot open run '{path}': it holds no complete checkpoint.")
        return latest.prefix
    raise unknown_path_error(path)


def open_checkpoint(path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS) -> Checkpoint:
    """Open a checkpoint by prefix, by one of its files, or by run folder (its latest checkpoint).

    >>> ckpt = open_checkpoint("sample_checkpoints/linear")
    >>> [v.name for v in ckpt.variables][:2]
    ['global_step', 'linear/bias']
    """
    return open_format(resolve_prefix(path), backend, chunk_elements)
