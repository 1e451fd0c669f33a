"""Checkpoints no state file lists by design: Keras ModelCheckpoint files, and saves made before a CheckpointManager."""

# keras/src/callbacks/model_checkpoint.py writes `filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)`
# with model.save / model.save_weights and no `checkpoint` state file: the only step a file carries is the
# number in its name (and the optimizer's iteration count inside it). Nothing here is an orphan.

from __future__ import annotations

import dataclasses
import re

from ckptlib import errors, storage
from ckptlib.runs.types import CheckpointEntry

KERAS_SUFFIXES = (".weights.json", ".weights.h5", ".keras.h5", ".keras", ".hdf5", ".h5")  # longest first
_SHARD = re.compile(r"^(?P<base>.+)_\d{5}\.weights\.h5$")  # ShardedH5IOStore: '<base>_00000.weights.h5'
_NUMBER = re.compile(r"\d+(?:\.\d+)?")  # decimals ({val_loss:.2f}) are read and skipped: not a step
_STEM = re.compile(r"^(?P<stem>.*)-(?P<step>\d+)$")
UNMANAGED_SENTENCE = ("Saved by tf.train.Checkpoint.save() before a CheckpointManager took over this folder, "
                      "which lists and deletes only its own saves: not an orphan.")


def is_keras_file(name: str) -> bool:
    return name.endswith(KERAS_SUFFIXES)


def keras_names(files: list[str]) -> list[str]:
    """The Keras checkpoint files among a folder's file names: a sharded save once (its .weights.json)."""
    maps = {name[: -len(".weights.json")] for name in files if name.endswith(".weights.json")}
    return sorted(name for name in files if is_keras_file(name)
                  and not ((shard := _SHARD.match(name)) and shard.group("base") in maps))


def _stem(name: str) -> str:
    return next((name[: -len(s)] for s in KERAS_SUFFIXES if name.endswith(s)), name)


def _integers(name: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) of each whole number in the name's stem, decimals left out."""
    return [(m.start(), m.end(), m.group()) for m in _NUMBER.finditer(_stem(name)) if "." not in m.group()]


def name_steps(names: list[str], stored: dict[str, int | None] | None = None
               ) -> tuple[dict[str, int | None], str | None]:
    """The step of each file from the number in its name, and a note saying which rule gave it.

    Names that differ only in their numbers form one pattern; the number that varies is the step (the only
    number when a pattern has one file). With several varying numbers ({epoch}-{batch}) the step is the
    optimizer's iteration count stored in each file when all have one, else the first (the epoch).
    `stored` (those iteration counts) also tells a step count from an epoch number in the note.
    """
    stored = stored or {}
    groups: dict[str, list[str]] = {}
    for name in names:
        skeleton, last = "", 0
        for match in _NUMBER.finditer(_stem(name)):
            field = "{:f}" if "." in match.group() else "{}"
            skeleton, last = skeleton + name[last : match.start()] + field, match.end()
        groups.setdefault(skeleton + name[last:], []).append(name)
    steps: dict[str, int | None] = {}
    rules = []
    for members in groups.values():
        values = {n: [int(t[2]) for t in _integers(n)] for n in members}
        count = len(values[members[0]])
        varying = [i for i in range(count) if len({v[i] for v in values.values()}) > 1]
        chosen = varying if len(members) > 1 else list(range(count))[-1:]
        if not chosen:
            steps.update(dict.fromkeys(members))
            continue
        if len(chosen) > 1 and all(stored.get(n) is not None for n in members):
            steps.update({n: stored[n] for n in members})
            fields = {chosen[0]: "epoch", chosen[1]: "batch"}
            rules.append(f"from the optimizer's iteration count stored in each file ({_pattern(members[0], fields)} "
                         "names hold several changing numbers)")
            continue
        steps.update({n: values[n][chosen[0]] for n in members})
        counts = all(stored.get(n) == values[n][chosen[0]] for n in members)
        fields = {chosen[0]: "step" if counts else "epoch"} | ({chosen[1]: "batch"} if len(chosen) > 1 else {})
        which = f"the {fields[chosen[0]]} number" if len(chosen) > 1 else "the number"
        rules.append(f"from {which} in each file name ({_pattern(members[0], fields)})")
    if not rules:
        return steps, None
    if any("{epoch" in rule for rule in rules) and names and all(stored.get(n) is not None for n in names):
        # The number in the name counts epochs: the pages draw the optimizer's step, so say where each comes from.
        return steps, (f"Each file's number is its epoch, {'; '.join(sorted(rules))}; the training step shown "
                       "beside it is the optimizer's iteration count stored in the file.")
    return steps, f"Steps {'; '.join(sorted(rules))}."


def _pattern(name: str, fields: dict[int, str]) -> str:
    """'model.05-0.43.keras' -> 'model.{epoch:02d}-{:.2f}.keras': the chosen whole numbers (by position) as
    format fields, zero padding kept; decimals as an unnamed field."""
    out, last, position = "", 0, 0
    for match in _NUMBER.finditer(_stem(name)):
        digits = match.group()
        if "." in digits:
            field = f"{{:.{len(digits.split('.')[1])}f}}"
        else:
            label, position = fields.get(position), position + 1
            if label is None:
                continue
            field = f"{{{label}:0{len(digits)}d}}" if digits.startswith("0") and len(digits) > 1 else f"{{{label}}}"
        out, last = out + name[last : match.start()] + field, match.end()
    return out + name[last:]


def keras_entries(run_dir: str) -> tuple[list[CheckpointEntry], list[str]]:
    """One entry per Keras checkpoint file of `run_dir` (step from its name, time from its mtime), and notes."""
    from ckptlib.formats import open_checkpoint
    from ckptlib.formats.keras_h5 import shards_of

    listing = {name: (size, mtime) for name, is_dir, size, mtime in storage.scan(run_dir) if not is_dir}
    names = keras_names(list(listing))
    if not names:
        return [], []
    found = {}
    for name in names:
        path = storage.join(run_dir, name)
        parts = [listing.get(storage.relative(p, run_dir), (0, None)) for p in shards_of(path)]
        size = sum(s for s, _ in parts)
        times = [t for _, t in parts if t is not None]
        problem, stored = None, None
        try:
            stored = _iterations(open_checkpoint(path))
        except errors.CkptError as exc:
            problem = str(exc)
        found[name] = (path, size, max(times) if times else None, problem, stored)
    steps, note = name_steps(names, {n: f[4] for n, f in found.items()})
    entries = [CheckpointEntry(prefix=path, step=steps.get(name), mtime=mtime, size_bytes=size, in_state=False,
                               latest=False, complete=problem is None, has_meta=False, problem=problem,
                               state_known=False, stored_step=stored, time_source="file" if mtime else "unknown")
               for name, (path, size, mtime, problem, stored) in found.items()]
    nameless = [e.name for e in entries if e.step is None]
    notes = [note] if note else []
    if nameless:
        notes.append(f"{', '.join(nameless[:3])}{' …' if len(nameless) > 3 else ''}: no number in the name, so no step "
                     "(ModelCheckpoint overwrites such a file at every save); the optimizer's iteration count inside "
                     "it is shown where the file holds one.")
    notes.append("Keras ModelCheckpoint files: Keras writes no state file, so each file is a checkpoint listed as "
                 "'unlisted' (never an orphan), dated by its modification time (which a copy or an unpack resets).")
    return entries, notes


def _iterations(ckpt) -> int | None:
    """The optimizer's iteration count a Keras file stores (`adam/iteration`), None when it holds no optimizer."""
    for info in ckpt.variables:
        leaf = info.display_name.rsplit("/", 1)[-1]
        if info.kind == "counter" and leaf in ("iteration", "iter", "iterations") and info.num_elements == 1:
            try:
                return int(ckpt.read(info.name).reshape(-1)[0])
            except (errors.CkptError, OSError, ValueError, TypeError):
                return None
    return None


def explain_unmanaged_saves(entries: list[CheckpointEntry], stamps: dict[str, float], state
                            ) -> tuple[list[CheckpointEntry], str | None]:
    """Unlisted checkpoints a CheckpointManager never knew: those Checkpoint.save() wrote before it took over.

    Checkpoint.save() records only its newest save and no timestamps; a manager created afterwards recovers
    nothing from such a state file (it keeps only paths with timestamps) and carries over its
    last_preserved_timestamp of 0. So a manager's state file (timestamps, no last_preserved_timestamp) beside
    unlisted saves of the same name, numbered below every listed one, means exactly that.
    """
    # `state`: the run's CheckpointState. A .meta means a v1 Saver (it writes no timestamps of its own).
    if state is None or not stamps or state.last_preserved_timestamp or any(e.has_meta for e in entries):
        return entries, None
    listed = [_STEM.match(e.name) for e in entries if e.in_state]
    if not listed or not all(listed) or len({m.group("stem") for m in listed}) != 1:
        return entries, None
    stem, first = listed[0].group("stem"), min(int(m.group("step")) for m in listed)
    earliest = min(stamps.values())
    explained, changed = [], []
    for entry in entries:
        match = _STEM.match(entry.name)
        if (entry.orphan and entry.complete and match and match.group("stem") == stem
                and int(match.group("step")) < first and (entry.mtime is None or entry.mtime <= earliest + 5.0)):
            entry = dataclasses.replace(entry, state_known=False, problem=UNMANAGED_SENTENCE)
            changed.append(entry.name)
        explained.append(entry)
    if not changed:
        return entries, None
    return explained, (f"{', '.join(changed)} were saved by tf.train.Checkpoint.save() before a CheckpointManager "
                       f"took over this folder (its saves start at {stem}-{first}); they are listed as 'unlisted', "
                       "not as orphans.")
