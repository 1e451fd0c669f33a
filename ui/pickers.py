"""A run + checkpoint picker whose choice lives in the URL (used for Diff's A and B)."""

from __future__ import annotations

import streamlit as st

from ckptlib.types import CheckpointEntry, RunSummary
from ui import data
from ui.widgets import checkpoint_label, errors_shown, url_picker


def checkpoint_picker(column, label: str, key: str, runs: tuple[RunSummary, ...], default_run: str | None,
                      default_ckpt: str | None) -> CheckpointEntry | None:
    """Run and complete checkpoint selectboxes in `column`, kept in ?{key}_run=…&{key}_ckpt=…."""
    by_name = {r.name: r for r in runs}
    run_name = url_picker(column.selectbox, f"{label}: run", list(by_name), f"{key}_run", default=default_run)
    if run_name is None:
        return None
    with errors_shown():
        history = data.history(by_name[run_name].path)
    usable = {e.name: e for e in history.checkpoints if e.complete}
    if not usable:
        column.warning(f"Run {run_name} has no complete checkpoint.")
        return None
    name = url_picker(column.selectbox, f"{label}: checkpoint", list(usable), f"{key}_ckpt", default=default_ckpt,
                      format_func=lambda n: checkpoint_label(usable[n]))
    return usable[name]


def previous_complete(entries: tuple[CheckpointEntry, ...], name: str | None) -> str | None:
    """The complete checkpoint just before `name` (the natural A for B = `name`), else the first."""
    complete = [e.name for e in entries if e.complete]
    if name in complete and complete.index(name) > 0:
        return complete[complete.index(name) - 1]
    return complete[0] if complete else None


def text_param(widget, label: str, key: str, default: str = "", **kwargs) -> str:
    """A text widget kept in the URL (omitted from it while empty)."""
    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(key, default)
    value = widget(label, key=key, **kwargs)
    if value:
        st.query_params[key] = value
    else:
        st.query_params.pop(key, None)
    return value
