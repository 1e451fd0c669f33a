"""Shared widgets: URL-synced pickers, the sidebar selection, and CkptError display."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import streamlit as st

from ckptlib import storage
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
        message = storage.redact(message)  # a signed URL's query string or a key never shows
        st.error(message, icon=":material/error:")
        if stop:
            st.stop()


def url_picker(widget, label: str, options: Sequence[str], key: str, default: str | None = None,
               url_text: dict[str, str] | None = None, **kwargs):
    """A selectbox-like widget whose value lives in the URL (?key=value) so a link reproduces it; `url_text`
    writes an option as people name it (a variable's real name for its checkpoint key) and reads it back."""
    if not options:
        st.query_params.pop(key, None)
        return None
    wanted, linked = st.session_state.get(key), None
    if wanted is None:
        wanted = linked = st.query_params.get(key)
        if url_text and wanted not in options:
            wanted = next((option for option, text in url_text.items() if text == wanted), wanted)
    if wanted not in options:
        wanted = default if default in options else options[0]
        if linked:  # a link asked for what is not here: say so rather than show something else without a word
            shown = kwargs.get("format_func", str)(wanted)
            st.toast(f"The link's {label.lower()} '{linked}' is not here: showing {shown}.", icon=":material/link_off:")
    st.session_state[key] = wanted
    value = widget(label, options, key=key, **kwargs)
    st.query_params[key] = (url_text or {}).get(value, value)
    return value


def storage_operation():
    """One rerun is one storage operation: a bucket folder is listed once per rerun (sizes and times from
    that listing), and afresh by the next rerun."""
    return storage.operation()


SIDEBAR_CHARS = 28  # what the default sidebar's selectbox shows without cutting


def short_path(path: str) -> str:
    """A path's end that fits the sidebar, whole folder names only.

    >>> short_path("/work/main/sample_checkpoints"), short_path("runs")
    ('…/main/sample_checkpoints', 'runs')
    """
    if len(path) <= SIDEBAR_CHARS:
        return path
    parts = path.rstrip("/").split("/")
    shown = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(shown) + 3 > SIDEBAR_CHARS or not part:
            break
        shown = f"{part}/{shown}"
    return "…/" + shown


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
    root = url_picker(side.selectbox, "Root folder", list(roots), "root", format_func=short_path,
                      help="Folders this dashboard may read (set with --root or CKPTLIB_ROOT).")
    side.caption(root)  # the whole path, wrapped: the box shows its end
    selection = Selection(root, None, None, None)
    if side.button("Refresh", help="Look for new runs and checkpoints now"):
        st.cache_data.clear()
    if not inside(root, roots) or not (storage.is_url(root) or os.path.isdir(root)):  # a URL: find_runs says
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
    default = history.latest.name if history.latest else None
    if st.session_state.get("_ckpt_run", run.path) != run.path:
        st.session_state.pop("ckpt", None)  # another run: start from its latest, not a same-named step
        st.query_params.pop("ckpt", None)
    st.session_state["_ckpt_run"] = run.path
    chosen = checkpoint_select(side, "Checkpoint", history.checkpoints, "ckpt", default)
    selection = Selection(root, run, history, chosen)
    st.session_state["selection"] = selection
    return selection


def checkpoint_select(container, label: str, entries: Sequence[CheckpointEntry], key: str,
                      default: str | None) -> CheckpointEntry | None:
    """A checkpoint selectbox kept in ?{key}=NAME, newest first, each label starting with the step and
    filtered by prefix (typing 57 lists 57 and 570…, never 75), and a "Go to step" box below it that jumps
    to an exact step (or name); a caption gives the chosen checkpoint's full name, which no label cuts."""
    by_name = {e.name: e for e in entries}
    implied = names_implied(entries)
    name = url_picker(container.selectbox, label, [e.name for e in reversed(entries)], key, default=default,
                      format_func=lambda n: checkpoint_label(by_name[n], implied), filter_mode="prefix",
                      help="Newest first; each label starts with the training step (★ is the state file's latest). "
                           "Typing filters by the start of the label; *Go to step* finds an exact step.")
    if name is None:
        return None
    chosen = by_name[name]
    jump = f"{key}_step"
    st.session_state[jump] = "" if chosen.training_step is None else str(chosen.training_step)  # follows the choice
    if len(entries) > 1 or chosen.training_step is not None:  # one stepless checkpoint (an export): nothing to find
        container.text_input("Go to step", key=jump, on_change=_jump, args=(key, jump, tuple(entries)),
                             help="An exact step (TF2: the stored training step or the save number) or a checkpoint "
                                  "name.")
    missing = st.session_state.pop(f"{jump}_missing", None)
    if missing:
        container.caption(f"No checkpoint at step {missing}: still on {chosen.name}.")
    container.caption(checkpoint_caption(chosen))
    return chosen


def _jump(key: str, jump: str, entries: tuple[CheckpointEntry, ...]) -> None:
    """The "Go to step" box's callback: choose the checkpoint it names (before the selectbox is drawn)."""
    text = str(st.session_state.get(jump, "")).strip()
    found = find_checkpoint(entries, text)
    if found is not None:
        st.session_state[key] = found.name
    elif text:
        st.session_state[f"{jump}_missing"] = text


def find_checkpoint(entries: Sequence[CheckpointEntry], text: str) -> CheckpointEntry | None:
    """The checkpoint an exact step or name designates: the stored training step first, then the '-N' of
    the name (a TF2 save number), then the name itself; 'step 57' and '57' alike; never a partial match."""
    text = text.strip()
    number = text.lower().removeprefix("step").strip().replace(",", "").replace("_", "")
    if number.isdigit():
        value = int(number)
        for attribute in ("training_step", "step"):
            found = [e for e in entries if getattr(e, attribute) == value]
            if found:
                return found[-1]
    return next((e for e in entries if e.name == text), None)


def names_implied(entries: Sequence[CheckpointEntry]) -> bool:
    """True when every name is STEM-STEP with one stem and no other stored step: labels then need no name."""
    plain = [e for e in entries
             if e.step is not None and e.stored_step in (None, e.step) and e.name.endswith(f"-{e.step}")]
    return len(plain) == len(entries) > 0 and len({e.name[: -len(str(e.step)) - 1] for e in plain}) == 1


def checkpoint_label(entry: CheckpointEntry, name_implied: bool = False) -> str:
    """Short enough for the sidebar: '1000 ★', '200 · preserved', TF2 '400 · ckpt-8 ★' (training step first)."""
    step = entry.training_step
    parts = ([str(step)] if step is not None else []) + ([] if name_implied and step is not None else [entry.name])
    label = " · ".join(parts) + (" ★" if entry.latest else "")
    return label if entry.status in ("kept", "latest") else f"{label} · {entry.status}"


def checkpoint_caption(entry: CheckpointEntry) -> str:
    """The chosen checkpoint in full: name, save number and stored step where they differ, status."""
    steps = []
    if entry.stored_step is not None and entry.stored_step != entry.step:
        steps.append(f"save {entry.step}" if entry.step is not None else "")
        steps.append(f"step {entry.stored_step}")
    elif entry.step is not None:
        steps.append(f"step {entry.step}")
    return " · ".join(filter(None, [entry.name, ", ".join(filter(None, steps)), entry.status]))


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
