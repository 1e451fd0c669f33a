"""Read every tensor of a run's checkpoints and check its crc32c: the damage a listing cannot see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ckptlib import errors
from ckptlib.formats import open_checkpoint
from ckptlib.runs.types import CheckpointEntry, RunHistory

Progress = Callable[[int, int, str], None]


def verify_entry(entry: CheckpointEntry) -> CheckpointEntry:
    """The entry with `checksums` "ok" or "damaged" (and the damage as its problem); incomplete ones as they are."""
    if not entry.complete:
        return entry
    try:
        ckpt = open_checkpoint(entry.prefix)
        for info in ckpt.variables:
            for _ in ckpt.iter_chunks(info.name):  # the native reader checks each crc32c as the bytes pass
                pass
    except errors.CkptError as exc:
        problem = " ".join(filter(None, [entry.problem, str(exc)]))
        return replace(entry, checksums="damaged", problem=problem)
    return replace(entry, checksums="ok")


def verify_history(history: RunHistory, progress: Progress | None = None) -> RunHistory:
    """Every complete checkpoint read whole (streamed) and checked; damaged ones are no longer `latest`."""
    checked = []
    for done, entry in enumerate(history.checkpoints):
        if progress is not None:
            progress(done, len(history.checkpoints), entry.name)
        checked.append(verify_entry(entry))
    if progress is not None:
        progress(len(history.checkpoints), len(history.checkpoints), "")
    return replace(history, checkpoints=tuple(checked))
