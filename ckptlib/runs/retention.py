"""Explain orphans kept on purpose by keep_checkpoint_every_n_hours, and say when file times cannot tell."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re

from ckptlib.runs.saverdef import read_retention
from ckptlib.runs.types import CheckpointEntry

ORPHAN_SENTENCE = "Not listed in the state file (an orphan): TensorFlow's restore-latest will not see it."
# A file whose mtime is further than this from the save time the state file records was not written by that save.
COPIED_SLACK_S = 60.0
# Without timestamps: files of 3+ checkpoints at least 10 steps apart, all written within this many seconds and
# faster than this many training steps a second, were copied together rather than saved one by one.
_BURST_S, _BURST_STEPS_PER_S, _BURST_MIN_GAP = 2.0, 10_000.0, 10
_STEM = re.compile(r"^(?P<stem>.*)-\d+$")


def copied_file_times(stamps: dict[str, float], file_times: dict[str, float | None],
                      steps: dict[str, int | None]) -> tuple[str | None, bool]:
    """(a sentence when the files' mtimes look copied rather than saved, whether to ignore them).

    With the state file's timestamps (CheckpointManager, or the bundled samples) the evidence is direct:
    most listed checkpoints' files are dated away from the save times recorded for them, so no file time
    can be trusted (ignore them). Without timestamps only a guess is possible: the files of several
    checkpoints far apart in steps all written within a second or two (the times are kept, with a warning).
    """
    compared = [abs(file_times[name] - stamp) for name, stamp in stamps.items() if file_times.get(name) is not None]
    if compared:
        off = sum(1 for gap in compared if gap > COPIED_SLACK_S)
        if 2 * off <= len(compared):
            return None, False
        unlisted = any(name not in stamps for name in file_times)
        return (f"File times look copied, not saved: the files of {off} of the {len(compared)} checkpoints the state "
                "file lists are dated more than a minute away from the save times it records for them (a git clone "
                "or a plain copy resets file times). Times shown come from the state file"
                + ("; checkpoints it does not list have no known save time, and whether one was kept on purpose "
                   "cannot be checked by its time." if unlisted else ".")), True
    dated = [(steps[name], when) for name, when in file_times.items() if when is not None and steps.get(name) is not None]
    if len(dated) < 3:
        return None, False
    spread = max(w for _, w in dated) - min(w for _, w in dated)
    low, high = min(s for s, _ in dated), max(s for s, _ in dated)
    if (spread > _BURST_S or (high - low) / max(spread, 1e-3) <= _BURST_STEPS_PER_S
            or high - low < _BURST_MIN_GAP * (len(dated) - 1)):
        return None, False
    within = "less than a second" if spread < 1 else f"{spread:.1f} s"
    return (f"File times look copied, not saved: the files of all {len(dated)} checkpoints were written within "
            f"{within} although their steps run from {low} to {high} (a git clone or a plain copy resets file "
            "times). The times shown are when the files arrived here; the state file records no save times."), False


def explain_copied_preserved(entries: list[CheckpointEntry], last_preserved: float
                             ) -> tuple[list[CheckpointEntry], str | None]:
    """With file times that look copied, mark unlisted checkpoints older than every listed one and named like
    them (ckpt-2 beside ckpt-6..8) as preserved: a CheckpointManager with keep_checkpoint_every_n_hours (its
    state file has a last_preserved_timestamp) deletes every other checkpoint that leaves its window."""
    listed = [e for e in entries if e.in_state and e.step is not None]
    if not listed:
        return entries, None
    oldest = min(e.step for e in listed)
    stems = {_stem(e.name) for e in listed}
    when = datetime.datetime.fromtimestamp(last_preserved, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sentence = (f"Probably kept by keep_checkpoint_every_n_hours: older than every checkpoint the state file lists, "
                f"which records a last preserved save at {when}; its file time looks copied, so this is inferred "
                "from its name, not checked against its save time.")
    explained = []
    for entry in entries:
        if entry.orphan and entry.step is not None and entry.step < oldest and _stem(entry.name) in stems:
            rest = (entry.problem or "").replace(ORPHAN_SENTENCE, "").strip()
            entry = dataclasses.replace(entry, preserved=True, problem=" ".join(filter(None, [sentence, rest])))
        explained.append(entry)
    note = ("Checkpoints marked 'preserved' are older than every one the state file lists and named like them: "
            "most likely kept by keep_checkpoint_every_n_hours (their file times look copied, so it is not checked).")
    return explained, note if any(e.preserved for e in explained) else None


def _stem(name: str) -> str:
    match = _STEM.match(name)
    return match.group("stem") if match else name


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
