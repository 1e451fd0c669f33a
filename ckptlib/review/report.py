"""Write a run's review report (self-contained HTML with charts, or Markdown), never inside a checkpoint folder."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ckptlib import errors, storage
from ckptlib.evaluate.types import EvalHistory
from ckptlib.review import report_data
from ckptlib.review.report_data import ReportData
from ckptlib.review.types import ReportResult
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import resolve_prefix

if TYPE_CHECKING:  # only for the annotation: a Markdown report with store=None needs no SQLAlchemy
    from ckptlib.review.store import ReviewStore

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
# The names TensorFlow writes into a checkpoint folder (as in evaluate/freeze.py): a folder holding any
# of them is a checkpoint folder, and nothing is written there.
_CHECKPOINT_FILE = re.compile(r"(^checkpoint$|\.index$|\.meta$|\.data-\d{5}-of-\d{5}$)")
_SECTIONS = ("history", "notes", "health", "changes", "writing")

Progress = Callable[[int, int, str], None]


def report_format(out: str) -> str:
    """'html' or 'md' from the extension of `out`; CkptError naming the file for anything else."""
    ext = os.path.splitext(str(out))[1].lower()
    if ext not in FORMATS:
        raise errors.CkptError(f"Cannot write report '{out}': unknown extension '{ext or '(none)'}'; "
                               "use .html (charts embedded) or .md (Markdown tables).")
    return FORMATS[ext]


def check_report_destination(out: str, checkpoint_dirs: list[str]) -> str:
    """The absolute `out`, or an error when it lies in (or beside) a checkpoint folder or has no folder."""
    out = os.path.abspath(os.path.expanduser(str(out)))
    real_out = os.path.realpath(out)  # a symlink into a run folder is refused like the folder itself
    for folder in checkpoint_dirs:
        if storage.is_url(folder):
            continue  # a remote run cannot contain a local path
        real = os.path.realpath(folder)
        if os.path.commonpath([real_out, real]) == real:
            raise errors.UnsafeDestination(f"Refusing to write report '{out}': it is inside the checkpoint folder "
                                           f"'{real}', which ckptlib never modifies. Choose another folder.")
    parent = os.path.dirname(real_out)
    if not os.path.isdir(parent):
        raise errors.NotFound(f"Cannot write report '{out}': folder '{parent}' does not exist.")
    if os.path.isdir(real_out):
        raise errors.CkptError(f"Cannot write report '{out}': it is a folder; give a file name (review.html).")
    found = sorted(n for n in os.listdir(parent) if _CHECKPOINT_FILE.search(n))
    if found:
        shown = ", ".join(found[:3]) + (", …" if len(found) > 3 else "")
        raise errors.UnsafeDestination(f"Refusing to write report '{out}': folder '{parent}' holds checkpoint files "
                                       f"({shown}); ckptlib never writes beside checkpoints.")
    return out


def write_report(run_dir: str, out: str, *, store: ReviewStore | None, a: str | None = None, b: str | None = None,
                 accuracy: EvalHistory | None = None, progress: Progress | None = None) -> ReportResult:
    """Write the review report of `run_dir` to `out` (.html or .md); returns what was written.

    `a`/`b` choose the checkpoints of the top changes (default: the last two complete ones); `accuracy`
    is an EvalHistory to chart; `store=None` (or an unreachable store) writes the report without notes.

        >>> write_report("runs/exp1", "/tmp/exp1-review.md", store=ReviewStore()).format
        'md'
    """
    fmt = report_format(out)
    if fmt == "html" and importlib.util.find_spec("plotly") is None:
        raise errors.CkptError(f"Cannot write report '{out}': HTML reports need plotly (pip install plotly); "
                               "a .md report does not.")
    history = load_history(run_dir)
    pair = report_data.pick_pair(history, resolve_prefix(a) if a else None, resolve_prefix(b) if b else None)
    folders = [history.path] + [os.path.dirname(p) for p in pair if p is not None]
    out = check_report_destination(out, folders)  # before the slow part: refuse early, write nothing
    data = _gather(history, pair, store, accuracy, progress or _silent)
    text = _render(data, fmt)
    encoded = text.encode("utf-8")
    _write_atomic(out, encoded)
    if progress is not None:
        progress(len(_SECTIONS), len(_SECTIONS), "")
    return ReportResult(output=out, bytes=len(encoded), format=fmt)


def _silent(done: int, total: int, label: str) -> None:
    """The progress callback used when the caller gives none."""


def _gather(history, pair, store, accuracy, progress: Progress) -> ReportData:
    total = len(_SECTIONS)
    progress(0, total, "history")
    generated = time.time()
    progress(1, total, "notes")
    notes = report_data.gather_notes(store, history.path)
    progress(2, total, "health")
    health = report_data.gather_health(history)
    progress(3, total, "changes")
    changes = report_data.gather_changes(history, *pair)
    progress(4, total, "writing")
    return ReportData(history=history, generated=generated, notes=notes, health=health, changes=changes,
                      accuracy=accuracy)


def _render(data: ReportData, fmt: str) -> str:
    # Renderers are imported here: the HTML one pulls in plotly, which a Markdown report never needs.
    if fmt == "html":
        from ckptlib.review.report_html import render_html

        return render_html(data)
    from ckptlib.review.report_markdown import render_markdown

    return render_markdown(data)


def _write_atomic(out: str, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a report."""
    folder, name = os.path.split(out)
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode as for any new file (umask applies)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise errors.CkptError(f"Cannot write report '{out}': {exc.strerror or exc}.") from None
    finally:
        if os.path.lexists(tmp):  # only after a failure: os.replace moved it otherwise
            with contextlib.suppress(OSError):
                os.remove(tmp)
