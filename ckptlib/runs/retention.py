"""Explain orphans of v1 Saver runs kept on purpose by keep_checkpoint_every_n_hours."""

from __future__ import annotations

import dataclasses
import os

from ckptlib.runs.saverdef import read_retention
from ckptlib.runs.types import CheckpointEntry

ORPHAN_SENTENCE = "Not listed in the state file (an orphan): TensorFlow's restore-latest will not see it."


def explain_v1_preserved(entries: list[CheckpointEntry]) -> tuple[list[CheckpointEntry], str | None]:
    """Mark orphans older than every listed checkpoint as preserved when the Saver was set to keep some.

    The v1 Saver's state file records no timestamps, so this is a well-founded guess: the .meta
    of the newest listed checkpoint says keep_checkpoint_every_n_hours was set, and the Saver only
    ever preserves checkpoints that fell out of the max_to_keep window (older than all it lists).
    """
    listed = [e for e in entries if e.in_state and e.has_meta and e.step is not None]
    orphans = [e for e in entries if e.orphan and e.step is not None]
    if not listed or not orphans:
        return entries, None
    newest = max(listed, key=lambda e: e.step)
    retention = read_retention(newest.prefix + ".meta")
    if retention is None or not retention.preserves:
        return entries, None
    oldest_listed = min(e.step for e in entries if e.in_state and e.step is not None)
    hours = f"{retention.keep_every_n_hours:.4g}"
    sentence = (f"Probably kept by keep_checkpoint_every_n_hours={hours} (the Saver's setting in "
                f"{os.path.basename(newest.prefix)}.meta); a v1 Saver's state file does not record it.")
    explained = []
    for entry in entries:
        if entry in orphans and entry.step < oldest_listed:
            rest = (entry.problem or "").replace(ORPHAN_SENTENCE, "").strip()
            entry = dataclasses.replace(entry, preserved=True, problem=" ".join(filter(None, [sentence, rest])))
        explained.append(entry)
    note = (f"The Saver was configured with keep_checkpoint_every_n_hours={hours} and max_to_keep="
            f"{retention.max_to_keep}: older checkpoints missing from the state file were most likely kept "
            "on purpose; they are marked 'preserved'.")
    return explained, note if any(e.preserved for e in explained) else None



def next_to_delete(entries: list[CheckpointEntry]) -> tuple[str | None, str | None]:
    """The checkpoint the Saver's max_to_keep removes at the next save, and a sentence saying so.

    Known only where a .meta holds the SaverDef (v1 Saver runs): the state file's list is the
    Saver's window, and once it holds max_to_keep entries the oldest one goes next.
    """
    listed = [e for e in entries if e.in_state]
    newest = max((e for e in listed if e.has_meta and e.step is not None), key=lambda e: e.step, default=None)
    retention = read_retention(newest.prefix + ".meta") if newest else None
    if retention is None or retention.max_to_keep <= 0 or len(listed) < retention.max_to_keep:
        return None, None
    oldest = listed[0]  # entries are sorted by step
    kept = " unless keep_checkpoint_every_n_hours preserves it" if retention.preserves else ""
    return oldest.prefix, (f"max_to_keep={retention.max_to_keep} (the Saver's setting in "
                           f"{os.path.basename(newest.prefix)}.meta): the next save deletes {oldest.name}{kept}.")
