"""Shared widgets: URL-synced pickers, the sidebar selection, and CkptError display."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import streamlit as st

from ckptlib.errors import CkptError
from ckptlib.runs.types import CheckpointEntry, RunHistory, RunSummary
from ui import data
from ui.config import allowed_roots, inside


@contextlib.contextmanager
def errors_shown(stop: bool = True) -> Iterator[None]:
    """Show a CkptError as one st.error line, never a traceback; then stop the page unless `stop`
    is False (a failed action whose section is independent of the rest of the page)."""
    try:
        yield
    except (CkptError, OSError) as exc:
        message = str(exc) if isinstance(exc, CkptError) else f"{exc.filename or ''}: {exc.strerror or exc}"
        st.error(message, icon=":material/error:")
        if stop:
            st.stop()


def url_picker(widget, label: str, options: Sequence[str], key: str, default: str | None = None, **kwargs):
    """A selectbox-like widget whose value lives in the URL (?key=value) so a link reproduces it."""
    if not options:
        st.query_params.pop(key, None)
        return None
    wanted = st.session_state.get(key, st.query_params.get(key))
    if wanted not in options:
        wanted = default if default in options else options[0]
    st.session_state[key] = wanted
    value = widget(label, options, key=key, **kwargs)
    st.query_params[key] = value
    return value


@dataclass(frozen=True)
class Selection:
    """What the sidebar chose: the root, the run and the checkpoint (any may be None)."""

    root: str
    run: RunSummary | None
    history: RunHistory | None
    checkpoint: CheckpointEntry | None


def sidebar() -> Selection:
    """Root, run and checkpoint pickers; the selection is kept in st.session_state['selection']."""
    roots = allowed_roots()
    side = st.sidebar
    root = url_picker(side.selectbox, "Root folder", list(roots), "root",
                      help="Folders this dashboard may read (set with --root or CKPTLIB_ROOT).")
    selection = Selection(root, None, None, None)
    if side.button("Refresh", help="Look for new runs and checkpoints now"):
        st.cache_data.clear()
    if not inside(root, roots) or not os.path.isdir(root):
        st.session_state["selection"] = selection
        return selection
    with errors_shown():
        runs = data.runs(root)
    by_name = {r.name: r for r in runs}
    run_name = url_picker(side.selectbox, "Run", list(by_name), "run",
                          help="Every folder under the root that holds checkpoints.")
    if run_name is None:
        side.info(f"No checkpoints under {root}.")
        st.session_state["selection"] = selection
        return selection
    run = by_name[run_name]
    with errors_shown():
        history = data.history(run.path)
    entries = {e.name: e for e in history.checkpoints}
    default = history.latest.name if history.latest else None
    if st.session_state.get("_ckpt_run", run.path) != run.path:
        st.session_state.pop("ckpt", None)  # another run: start from its latest, not a same-named step
        st.query_params.pop("ckpt", None)
    st.session_state["_ckpt_run"] = run.path
    ckpt_name = url_picker(side.selectbox, "Checkpoint", list(entries), "ckpt", default=default,
                           format_func=lambda n: checkpoint_label(entries[n]))
    selection = Selection(root, run, history, entries.get(ckpt_name))
    st.session_state["selection"] = selection
    return selection


def checkpoint_label(entry: CheckpointEntry) -> str:
    step = f"step {entry.step}" if entry.step is not None else "step ?"
    flag = "" if entry.status in ("kept", "latest") else f" — {entry.status}"
    return f"{entry.name} ({step}){' ★' if entry.latest else ''}{flag}"


def current() -> Selection:
    """The sidebar's selection for this rerun (dashboard.py computes it before the page runs)."""
    if _running_without_router():
        return sidebar()
    selection = st.session_state.get("selection")
    if selection is None:
        selection = sidebar()
    return selection


def _running_without_router() -> bool:
    """True when this page file runs alone, without dashboard.py (Streamlit's pages/-folder mode).

    Because a `pages/` folder sits beside dashboard.py, Streamlit starts in its old multipage mode and,
    when the very first request names a page (a deep link such as /variables?run=…), runs that page
    file alone: no page config, no page titles. Clearing that start-up flag and rerunning once per
    session routes it through dashboard.py like every later request. (AppTest sets the flag again
    before every run; past the session's first run the page then draws the sidebar itself, without a
    rerun that would swallow a button click.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory:
        return False
    PagesManager.uses_pages_directory = False
    if not st.session_state.get("_routed_once"):
        st.session_state["_routed_once"] = True
        st.rerun()
    return True
