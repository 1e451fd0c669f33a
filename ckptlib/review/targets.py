"""Turn what a reviewer points at (a run folder, a checkpoint, a pair, a variable) into a checked Target."""

from __future__ import annotations

import os

from ckptlib import errors, storage
from ckptlib.formats import detect, open_checkpoint
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import resolve_prefix
from ckptlib.review.types import Target


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if storage.is_url(path) else os.path.dirname(path)


def run_target(path: str) -> Target:
    """A whole run; BadNote when the folder holds no checkpoint at all."""
    path = storage.absolute(path)
    if not storage.isdir(path):
        if storage.exists(path):
            raise errors.BadNote(f"Cannot attach a note to '{path}': not a run folder.")
        raise errors.NotFound(f"Cannot attach a note to '{path}': it does not exist.")
    history = load_history(path)
    if not history.checkpoints:
        raise errors.BadNote(f"Cannot attach a note to '{path}': it is not a run (it holds no checkpoints).")
    return Target(run=path)


def resolve_target(path: str, variable: str | None = None, checkpoint_b: str | None = None) -> Target:
    """A run folder (alone: the run; with `variable`: that variable in its latest checkpoint), a checkpoint
    prefix or one of its files, optionally a second checkpoint of the same kind for a diff note."""
    path = storage.absolute(path)
    if storage.isdir(path) and detect(path) is None and variable is None and checkpoint_b is None:
        return run_target(path)
    prefix = resolve_prefix(path)
    run = path if storage.isdir(path) and detect(path) is None else _parent(prefix)
    if variable is not None:
        variable = _stored_name(prefix, variable)
    prefix_b = resolve_prefix(checkpoint_b) if checkpoint_b is not None else None
    return Target(run=run, checkpoint=prefix, variable=variable, checkpoint_b=prefix_b)


def _stored_name(prefix: str, name: str) -> str:
    """The raw key of `name`, given as a raw key or as a display name; VariableNotFound naming the checkpoint."""
    ckpt = open_checkpoint(prefix)
    if any(v.name == name for v in ckpt.variables):
        return name
    matches = [v.name for v in ckpt.variables if v.display_name == name]
    if len(matches) == 1:
        return matches[0]
    return ckpt.info(name).name  # raises VariableNotFound
