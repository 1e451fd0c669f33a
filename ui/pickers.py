"""A run + checkpoint picker whose choice lives in the URL (used for Diff's A and B)."""

from __future__ import annotations

import streamlit as st

from ckptlib.compare.parity import EXPORT_FORMATS
from ckptlib.runs.types import CheckpointEntry, RunSummary
from ui import data
from ui.widgets import checkpoint_select, errors_shown, url_picker


def checkpoint_picker(column, label: str, key: str, runs: tuple[RunSummary, ...], default_run: str | None,
                      default_ckpt: str | None) -> CheckpointEntry | None:
    """Run and complete checkpoint selectboxes in `column`, kept in ?{key}_run=…&{key}_ckpt=…; the
    checkpoints newest first, searched by step (see widgets.checkpoint_select)."""
    by_name = {r.name: r for r in runs}
    run_name = url_picker(column.selectbox, f"{label}: run", list(by_name), f"{key}_run", default=default_run)
    if run_name is None:
        return None
    with errors_shown():
        history = data.history(by_name[run_name].path)
    usable = tuple(e for e in history.checkpoints if e.usable)
    if not usable:
        column.warning(f"Run {run_name} has no complete checkpoint.")
        return None
    return checkpoint_select(column, f"{label}: checkpoint", usable, f"{key}_ckpt", default_ckpt)


def previous_complete(entries: tuple[CheckpointEntry, ...], name: str | None) -> str | None:
    """The complete checkpoint just before `name` (the natural A for B = `name`); for the first one,
    the next one, so that A and B differ whenever the run has two checkpoints."""
    complete = [e.name for e in entries if e.complete]
    if name in complete:
        at = complete.index(name)
        return complete[at - 1] if at > 0 else complete[min(1, len(complete) - 1)]
    return complete[0] if complete else None


def default_a(runs: tuple[RunSummary, ...], run: RunSummary, history, ckpt_b: str | None) -> tuple[str, str | None]:
    """(run, checkpoint) A starts at: B's run, the checkpoint before B. A run of one checkpoint (an export, a
    single save) has nothing before it: A is then the latest checkpoint of a sibling run (same parent folder),
    a training checkpoint rather than another export where there is one, so that an export is compared with
    the run it came from."""
    if sum(1 for e in history.checkpoints if e.complete) >= 2:
        return run.name, previous_complete(history.checkpoints, ckpt_b)
    parent = run.name.rpartition("/")[0]  # runs at the root's top are not taken for one experiment's parts
    siblings = [r for r in runs if parent and r.name != run.name and r.name.rpartition("/")[0] == parent
                and r.num_checkpoints]
    for sibling in sorted(siblings, key=lambda r: _is_export(r)):
        latest = data.history(sibling.path).latest
        if latest is not None:
            return sibling.name, latest.name
    return run.name, previous_complete(history.checkpoints, ckpt_b)


def _is_export(run: RunSummary) -> bool:
    latest = data.history(run.path).latest
    return latest is None or data.format_name(latest.prefix) in EXPORT_FORMATS


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


_TOUCHED = "_vfilters_touched"
_SEEN_IN = "_vfilters_checkpoint"  # the checkpoint the page showed last


def _touch() -> None:
    # The person changed a filter while this variable was shown: hiding it is their choice, not a link's.
    st.session_state[_TOUCHED] = st.session_state.get("var")


def variable_filters(left, right, variables, kinds_all: tuple[str, ...],
                     checkpoint: str = "") -> tuple[str, list[str], list[str]]:
    """The Variables page's name filter and kinds, kept in ?vfilter=…&vkinds=… (absent while default).

    A `var` a link asks for (?var=NAME, raw key or display name) that they would hide widens them instead
    of silently choosing another variable (unless the person narrowed them while that variable was shown);
    returns (pattern, kinds, sentences to show about what the link asked for). A variable chosen in another
    `checkpoint` that this one lacks (the sidebar moved to another run) lapses without a word.
    """
    default = [k for k in kinds_all if k != "optimizer"]
    notes = []
    wanted = st.session_state.get("var", st.query_params.get("var"))
    by_key = {v.name: v for v in variables}
    target = by_key.get(wanted) or next((v for v in variables if v.display_name == wanted), None)
    previous = st.session_state.get(_SEEN_IN)
    st.session_state[_SEEN_IN] = checkpoint
    if wanted and target is None:
        if previous is not None and previous != checkpoint:
            st.session_state.pop("var", None)
            st.query_params.pop("var", None)
        else:
            notes.append(f"This checkpoint has no variable '{wanted}'.")
    elif target is not None and (_TOUCHED not in st.session_state or st.session_state[_TOUCHED] != target.name):
        st.session_state["var"] = target.name  # a display name resolves to its key
        kinds = st.session_state.get("vkinds") or [k for k in st.query_params.get_all("vkinds") if k in kinds_all]
        kinds = kinds or default
        if target.kind not in kinds:
            st.session_state["vkinds"] = [k for k in kinds_all if k in kinds or k == target.kind]
            notes.append(f"Showing {target.kind} variables too: the link asks for {target.display_name}.")
        pattern = st.session_state.get("vfilter", st.query_params.get("vfilter", ""))
        if pattern.lower() not in target.name.lower():
            st.session_state["vfilter"] = ""
            notes.append(f"Name filter '{pattern}' cleared: it hides {target.display_name}, which the link asks for.")
    pattern = text_param(left.text_input, "Filter by name", "vfilter", placeholder="e.g. conv1/ or kernel",
                         on_change=_touch)
    kinds = url_multiselect(right.multiselect, "Kinds", kinds_all, "vkinds", default,
                            help="Optimizer slots (Adam's m and v…) are hidden by default.", on_change=_touch)
    return pattern, list(kinds), notes
