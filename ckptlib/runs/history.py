"""Runs under a root folder, and a run's checkpoints: the state file reconciled with the disk."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ckptlib import errors, storage
from ckptlib.runs import keras_run, retention, savedmodel_run, v1_run
from ckptlib.runs.naming import step_from_name
from ckptlib.runs.retention import ORPHAN_SENTENCE, explain_v1_preserved, next_to_delete
from ckptlib.runs.statefile import STATE_FILENAME, CheckpointState, read_state
from ckptlib.runs.types import CheckpointEntry, RunHistory, RunSummary

_DATA = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<total>\d{5})$")
# Sharded saves write into '<prefix>_temp/' (TF2: '<prefix>_temp_<uuid hex>/') and rename at the end:
# such a folder left behind means a save that never finished.
_TEMP_DIR = re.compile(r"^(?P<prefix>.+)_temp(_[0-9a-f]{32})?$")
# Counters that hold the training step, best first: the user's own global_step / step, then the optimizer's
# iteration count (tf.keras `iter`, Keras 3 `_iterations`). `save_counter` only counts saves (the '-N' of TF2).
_STEP_LEAVES = ("global_step", "step", "iter", "_iterations", "iterations")
_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
# Timestamps in the state file are taken just before/after the save; allow for that when matching.
_PRESERVE_SLACK_S = 5.0


@storage.operation()  # one listing of a URL root, reused by every load_history below
def find_runs(root: str) -> tuple[RunSummary, ...]:
    """Every folder under `root` (itself included) that holds checkpoints; hidden folders skipped."""
    root = storage.absolute(root)
    if not storage.isdir(root):
        raise errors.NotFound(f"Cannot list runs under '{root}': no such folder.")
    runs = []
    for folder, subdirs, files in storage.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and not _TEMP_DIR.match(d))
        exports = savedmodel_run.is_export(folder, files) or bool(savedmodel_run.numbered_exports(folder))
        if exports:
            subdirs[:] = []  # an export's variables/ (or each numbered export) is part of this run, not one of its own
        elif not any(_is_checkpoint_file(f) for f in files):
            continue
        history = load_history(folder)
        latest = history.latest
        runs.append(RunSummary(folder, storage.relative(folder, root), len(history.checkpoints),
                               latest.step if latest else None))
    return tuple(runs)


def _is_checkpoint_file(name: str) -> bool:
    return name == STATE_FILENAME or name.endswith(".index") or bool(_DATA.match(name)) or keras_run.is_keras_file(name)


@dataclass
class _Files:
    """What is on disk for one prefix."""

    index: bool = False
    meta: bool = False
    shards: dict[int, str] = field(default_factory=dict)  # shard id -> file name
    num_shards: int | None = None  # from the data file names
    temp_dir: str | None = None


@storage.operation()  # a URL run folder: one listing gives every size and time, no HEAD per file
def load_history(run_dir: str, read_step: Callable[[str], int | None] | None = None) -> RunHistory:
    """The run's checkpoints sorted by step, each flagged in_state/latest/complete/orphan/missing.

    `read_step(prefix)`, when given, reads the step of a checkpoint named without '-N' (default: the
    counter stored in its index and data shard).
    """
    run_dir = storage.absolute(run_dir)
    if not storage.isdir(run_dir):
        raise errors.NotFound(f"Cannot read run '{run_dir}': no such folder.")
    exported = savedmodel_run.export_history(run_dir)  # a SavedModel, or a folder of numbered exports
    if exported is not None:
        return exported
    problem = None
    notes: list[str] = []
    try:
        state = read_state(run_dir)
    except errors.StateFileError as exc:
        state, problem = None, str(exc)
    files = _scan(run_dir)
    keras, keras_notes = keras_run.keras_entries(run_dir)  # ModelCheckpoint files: Keras writes no state file
    if state is None and problem is None and (files or not keras):
        problem = "No `checkpoint` state file: listing the checkpoints found on disk; none is marked latest."
    # Without a state file, 'cp-0005.ckpt' (Keras' TF-format weights, Checkpoint.write) is numbered by its name.
    name_steps, steps_note = (keras_run.name_steps([n for n in files if step_from_name(n) is None])
                              if state is None else ({}, None))
    listed, latest, stamps = _state_prefixes(state, run_dir, files, notes)
    file_times = {name: _mtime(storage.join(run_dir, name), _paths(run_dir, name, found))
                  for name, found in files.items()}
    copied_note, ignore_file_times = retention.copied_file_times(stamps, file_times, {n: step_from_name(n) for n in files})
    preserved_until = state.last_preserved_timestamp if state and state.last_preserved_timestamp else None
    unlisted_times = [file_times[name] for name, found in files.items() if name not in listed and found.index]
    if preserved_until is not None and not ignore_file_times and not _preserved_anchor(unlisted_times, preserved_until):
        # CheckpointManager writes last_preserved_timestamp (its creation time - 1 s) even when nothing
        # was ever preserved; trust it only when the last preserved checkpoint itself is on disk.
        preserved_until = None
    entries = []
    for name in sorted(set(files) | set(listed)):
        found = files.get(name, _Files())
        if name in stamps:
            when, source = stamps[name], "state"
        elif ignore_file_times or file_times.get(name) is None:
            when, source = None, "unknown"
        else:
            when, source = file_times[name], "file"
        entries.append(_entry(run_dir, name, found, name in listed, name == latest, (when, source),
                              None if ignore_file_times else preserved_until, read_step, state is not None,
                              name_steps.get(name)))
    entries = v1_run.with_v1_files(run_dir, entries, state is not None)  # TF <= 0.11: one file, no .index
    entries, unmanaged = keras_run.explain_unmanaged_saves(entries, stamps, state)
    notes.extend([n for n in (steps_note if any(name_steps.values()) else None, unmanaged) if n] + keras_notes)
    entries.extend(keras)
    entries.sort(key=lambda e: (e.step is None, e.step if e.step is not None else 0, e.mtime or 0.0, e.name))
    notes.extend([copied_note] if copied_note else [])
    if any(e.preserved for e in entries):
        notes.append("Checkpoints marked 'preserved' were dropped from the state file's list but kept on disk by "
                     "keep_checkpoint_every_n_hours (saved before the state file's last_preserved_timestamp).")
    elif state is not None and state.last_preserved_timestamp and ignore_file_times:
        entries, note = retention.explain_copied_preserved(entries, state.last_preserved_timestamp)
        notes.extend([note] if note else [])
    elif state is not None and not state.last_preserved_timestamp:  # a v1 Saver records no retention
        entries, note = explain_v1_preserved(entries)
        notes.extend([note] if note else [])
    doomed, note = next_to_delete(entries)
    notes.extend([note] if note else [])
    return RunHistory(run_dir, tuple(entries), problem, tuple(notes),
                      state.last_preserved_timestamp if state and state.last_preserved_timestamp else None, doomed,
                      file_times_copied=copied_note is not None)


def _preserved_anchor(unlisted_times: list[float | None], stamp: float) -> bool:
    """Is an unlisted checkpoint on disk saved at `stamp` (the state file's last_preserved_timestamp)?

    CheckpointManager sets last_preserved_timestamp to the state-file timestamp of the checkpoint it
    preserved, taken right after that checkpoint's files were written.
    """
    return any(t is not None and abs(t - stamp) <= _PRESERVE_SLACK_S for t in unlisted_times)


def _scan(run_dir: str) -> dict[str, _Files]:
    found: dict[str, _Files] = {}
    listing = storage.listdir(run_dir, prefetch=".index")  # a URL: every index read at once, concurrently
    for name, is_dir in listing:
        if is_dir:
            temp = _TEMP_DIR.match(name)
            if temp:
                found.setdefault(temp.group("prefix"), _Files()).temp_dir = name
            continue
        if name.endswith(".index"):
            found.setdefault(name[: -len(".index")], _Files()).index = True
        elif data := _DATA.match(name):
            files = found.setdefault(data.group("prefix"), _Files())
            files.shards[int(data.group("shard"))] = name
            files.num_shards = int(data.group("total"))
    # A .meta counts only beside checkpoint files: export_meta_graph alone writes no checkpoint.
    plain_files = {name for name, is_dir in listing if not is_dir}
    for prefix, files in found.items():
        files.meta = prefix + ".meta" in plain_files
    return found


def _state_prefixes(state: CheckpointState | None, run_dir: str, files: dict[str, _Files], notes: list[str]):
    """Map the state file's paths to names inside run_dir; returns (listed, latest, timestamps)."""
    if state is None:
        return set(), None, {}
    moved = []

    def local(path: str) -> str:
        if not storage.isabs(path):
            path = storage.normalize(storage.join(run_dir, path))
        if os.path.dirname(path) == run_dir:
            return os.path.basename(path)
        # Written on another machine or before the folder moved: look for it by name in run_dir.
        moved.append(path)
        return os.path.basename(path)

    listed = [local(p) for p in state.all_model_checkpoint_paths]
    latest = local(state.model_checkpoint_path) if state.model_checkpoint_path else None
    if latest and latest not in listed:
        listed.append(latest)
    stamps = {}
    if len(state.all_model_checkpoint_timestamps) == len(state.all_model_checkpoint_paths):
        stamps = dict(zip(listed, state.all_model_checkpoint_timestamps))
    if moved:
        where = os.path.dirname(moved[0])
        notes.append(
            f"The state file points to another folder ({where}); the run was probably moved or copied from "
            "another machine, so its checkpoints were looked up by name in this folder."
        )
    return set(listed), latest, stamps


def _paths(run_dir: str, name: str, files: _Files) -> list[str]:
    prefix = storage.join(run_dir, name)
    paths = [prefix + ".index"] if files.index else []
    paths += [storage.join(run_dir, f) for f in files.shards.values()]
    return paths + ([prefix + ".meta"] if files.meta else [])


def _entry(run_dir, name, files: _Files, in_state, latest, time: tuple[float | None, str], preserved_until,
           read_step, state_known, name_step: int | None = None) -> CheckpointEntry:
    prefix = storage.join(run_dir, name)
    paths = _paths(run_dir, name, files)
    size = sum(_size(p) for p in paths)
    problems = []
    index = None
    if not paths:
        if in_state:  # else only an unfinished save's temp folder is there (reported below)
            problems.append("Listed in the state file, but its files are gone (deleted, or never copied here).")
    elif not files.index:
        problems.append(f"Index file {name}.index is missing: the save did not finish or the file was not copied.")
    else:
        index = _check_complete(prefix, problems)
    if files.temp_dir:
        problems.append(f"An unfinished save left the temporary folder {files.temp_dir}/.")
    mtime, source = time
    preserved = bool(not in_state and paths and preserved_until and mtime is not None
                     and mtime <= preserved_until + _PRESERVE_SLACK_S)
    if state_known and not in_state and paths and not preserved:
        problems.insert(0, ORPHAN_SENTENCE)
    step = step_from_name(name)
    stored = None
    if index is not None and step is None:
        stored = read_step(prefix) if read_step is not None else _stored_step(index)
        step = stored if name_step is None else name_step
    elif index is not None and _OBJECT_GRAPH in index.entries:  # TF2: '-N' counts saves, not training steps
        stored = _stored_step(index)
    return CheckpointEntry(
        prefix=prefix,
        step=step,
        mtime=mtime,
        size_bytes=size,
        in_state=in_state,
        latest=latest,
        complete=index is not None,
        has_meta=files.meta,
        problem=" ".join(problems) or None,
        preserved=preserved,
        state_known=state_known,
        stored_step=stored,
        time_source=source,
    )


def _check_complete(prefix: str, problems: list[str]):
    """The decoded index when it is readable and every data shard is present and long enough, else None."""
    from ckptlib.formats import bundle

    try:
        index = bundle.read_index(prefix)
    except errors.CkptError as exc:
        problems.append(str(exc))
        return None
    shard_problems = index.shard_problems()
    problems.extend(shard_problems)
    return None if shard_problems else index


def _stored_step(index) -> int | None:
    """The training step stored in a checkpoint: an integer scalar counter named like a step (global_step,
    step, the optimizer's iter / _iterations), top-level ones first; None when it holds none."""
    from ckptlib.formats import bundle

    found = []
    for key, entry in index.entries.items():
        path = key.split("/.ATTRIBUTES/")[0]
        leaf = path.rsplit("/", 1)[-1]
        if (leaf in _STEP_LEAVES and entry.shape == () and entry.dtype.startswith(("int", "uint"))
                and not entry.is_partitioned):
            found.append((path.count("/"), _STEP_LEAVES.index(leaf), path, key))
    for *_, key in sorted(found):
        try:
            return int(bundle.read_tensor(index, key))
        except (errors.CkptError, OSError, ValueError):
            continue
    return None


def _size(path: str) -> int:
    try:
        return storage.getsize(path)
    except OSError:
        return 0


def _mtime(prefix: str, paths: list[str]) -> float | None:
    index = prefix + ".index"
    if index in paths:
        return storage.getmtime(index)
    times = [t for t in (storage.getmtime(p) for p in paths if storage.exists(p)) if t is not None]
    return max(times) if times else None
