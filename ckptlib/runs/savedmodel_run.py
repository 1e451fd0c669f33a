"""SavedModel exports as runs: one export folder is a run of one checkpoint, a folder of timestamped exports
(Estimator's `export/<name>/1589…/`, TF Serving's `model/1/`, `model/2/`) a run whose steps are the exports."""

from __future__ import annotations

from ckptlib import errors, storage
from ckptlib.formats.savedmodel_files import GRAPH_FILE, VARIABLES_DIR
from ckptlib.runs.types import CheckpointEntry, RunHistory


def is_export(folder: str, files: list[str] | None = None) -> bool:
    """Whether `folder` is a SavedModel (holds saved_model.pb); `files` its listing, when already made."""
    return GRAPH_FILE in files if files is not None else storage.isfile(storage.join(folder, GRAPH_FILE))


def numbered_exports(folder: str) -> list[tuple[int, str]]:
    """(number, path) of the sub-folders named by a number that are SavedModels, by number."""
    try:
        listing = storage.listdir(folder)
    except (OSError, errors.CkptError):
        return []
    found = [(int(name), storage.join(folder, name)) for name, is_dir in listing if is_dir and name.isdigit()]
    return sorted((n, path) for n, path in found if is_export(path))


def export_history(run_dir: str) -> RunHistory | None:
    """The history of an export folder or of a folder of numbered exports; None when it is neither."""
    if is_export(run_dir):
        exports, note = [(None, run_dir)], "A SavedModel export: its variables are this run's one checkpoint."
    else:
        exports = numbered_exports(run_dir)
        if not exports:
            return None
        note = ("A folder of SavedModel exports: each numbered sub-folder is a checkpoint, its number the step "
                "(Estimator exports are numbered by their time, TF Serving's by version).")
    entries = [_entry(path, number, latest=i == len(exports) - 1) for i, (number, path) in enumerate(exports)]
    return RunHistory(run_dir, tuple(entries), None, (note,))


def _entry(folder: str, number: int | None, latest: bool) -> CheckpointEntry:
    from ckptlib.formats import open_checkpoint

    sizes, times, problem = 0, [], None
    for path in [storage.join(folder, GRAPH_FILE)] + _variable_files(folder):
        try:
            sizes += storage.getsize(path)
            times.append(storage.getmtime(path))
        except (OSError, errors.CkptError):
            continue
    try:
        open_checkpoint(folder).variables  # noqa: B018 - a damaged bundle or object graph shows here
    except errors.CkptError as exc:
        problem = str(exc)
    stamps = [t for t in times if t is not None]
    return CheckpointEntry(prefix=folder, step=number, mtime=max(stamps) if stamps else None, size_bytes=sizes,
                           in_state=False, latest=latest and problem is None, complete=problem is None,
                           has_meta=False, problem=problem, state_known=False,  # its graph is saved_model.pb
                           time_source="file" if stamps else "unknown")


def _variable_files(folder: str) -> list[str]:
    variables = storage.join(folder, VARIABLES_DIR)
    try:
        return [storage.join(variables, n) for n, is_dir in storage.listdir(variables) if not is_dir]
    except (OSError, errors.CkptError):
        return []
