"""A run + checkpoint picker whose choice lives in the URL (used for Diff's A and B)."""

from __future__ import annotations

import streamlit as st

from ckptlib.runs.types import CheckpointEntry, RunSummary
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
    """The complete checkpoint just before `name` (the natural A for B = `name`); for the first one,
    the next one, so that A and B differ whenever the run has two checkpoints."""
    complete = [e.name for e in entries if e.complete]
    if name in complete:
        at = complete.index(name)
        return complete[at - 1] if at > 0 else complete[min(1, len(complete) - 1)]
    return complete[0] if complete else None


def reset_when_changed(marker: str, value, keys: tuple[str, ...]) -> bool:
    """Forget the widgets `keys` (and their URL entries) when `value` differs from the last run's;
    True when it did. The first run of a session only records the value, so a shared link keeps
    every parameter.
    """
    previous = st.session_state.get(marker)
    st.session_state[marker] = value
    if previous is None or previous == value:
        return False
    for key in keys:
        st.session_state.pop(key, None)
        st.query_params.pop(key, None)
    return True


def parse_atol(text: str) -> float:
    """The atol field as a number >= 0; anything else is shown as an error and stops the page."""
    try:
        atol = float(text) if text.strip() else 0.0
    except ValueError:
        atol = -1.0
    if not atol >= 0:  # also NaN
        st.error(f"atol must be a number ≥ 0, not '{text}'.", icon=":material/error:")
        st.stop()
    return atol


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


def url_multiselect(widget, label: str, options, key: str, default, **kwargs) -> list:
    """A multiselect kept in the URL as repeated ?key=a&key=b (absent while it equals `default`)."""
    if key not in st.session_state:
        wanted = [v for v in st.query_params.get_all(key) if v in options]
        st.session_state[key] = wanted or list(default)
    value = widget(label, options, key=key, **kwargs)
    if list(value) == list(default):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value
    return value
