"""The review widgets that write: the note form (author, verdict, Markdown, the view's URL) and the report."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

import streamlit as st

from ckptlib.errors import CkptError, ReviewUnavailable
from ckptlib.review.types import VERDICTS, Target
from ckptlib.runs.types import RunSummary
from ui.config import allowed_roots, inside
from ui.pickers import reset_when_changed
from ui.review import NO_VERDICT, Review, escape, show_notes

AUTHOR_KEY = "review_author"  # the name typed once per browser session (not a widget key: it outlives forms)
REPORT_KEY = "review_report"
FORMATS = {"HTML": ("html", "text/html"), "Markdown": ("md", "text/markdown")}


def signed_in_user() -> str | None:
    """The email (else the name) of the user signed in through Streamlit's OIDC login, if any."""
    user = st.user
    if user.get("is_logged_in") is not True:
        return None
    who = user.get("email") or user.get("name")
    return str(who) if who else None


def author() -> str | None:
    """Who signs notes: the signed-in user, else the name typed earlier in this browser session."""
    return signed_in_user() or st.session_state.get(AUTHOR_KEY)


def page_url(page: str) -> str:
    """This view's URL: the page URL the browser reports (st.context.url) plus every query parameter now.

    Without a browser (st.context.url is None) it falls back to the page's path, /PAGE?….
    """
    pairs = [(name, value) for name in st.query_params for value in st.query_params.get_all(name)]
    base = st.context.url or f"/{page}"
    if not urlsplit(base).path:
        base += "/"  # the default page's URL is the bare origin
    return base + (f"?{urlencode(pairs)}" if pairs else "")


def note_form(review: Review, key: str, page: str, targets: dict[str, Target],
              labels: dict[str, str] | None = None) -> None:
    """A compact form adding a note to one of `targets` (a radio picks which when there are several).

    `key` keeps this form's widgets apart; `page` is the page's URL path, for page_url's fallback.
    """
    if not review.available or not targets:
        return
    added = st.session_state.pop(f"{key}_added", None)
    if added:
        st.success(added, icon=":material/check:")
    generation = st.session_state.get(f"{key}_gen", 0)  # a new one after each note: empty fields again
    who = author()
    with st.form(f"{key}_note_form"):
        choice = next(iter(targets))
        if len(targets) > 1:
            # One widget per set of choices: the browser showed a radio whose labels changed (another run, another
            # checkpoint) with nothing selected, though the session still held a choice.
            shown = [(labels or {}).get(k, k) for k in targets]
            about = f"{key}_about_{hashlib.sha1(repr(shown).encode()).hexdigest()[:12]}"
            choice = st.radio("About", list(targets), index=0, key=about, horizontal=True,
                              format_func=lambda k: (labels or {}).get(k, k))
        left, right = st.columns([1, 3])
        verdict = left.selectbox("Verdict", [NO_VERDICT, *VERDICTS], key=f"{key}_verdict_{generation}")
        name = who or left.text_input("Your name", key=f"{key}_name", help="Asked once per browser session.")
        text = right.text_area("Note (Markdown)", key=f"{key}_text_{generation}", height=100,
                               placeholder="What you saw, and why it matters.")
        submitted = st.form_submit_button("Add note", key=f"{key}_submit", icon=":material/add_comment:")
    if who and not signed_in_user():
        cols = st.columns([4, 1])
        cols[0].caption(f"Notes are signed {escape(who)}.")
        cols[1].button("Change name", key=f"{key}_rename", type="tertiary",
                       on_click=lambda: st.session_state.pop(AUTHOR_KEY, None))
    if not submitted:
        return
    name = (name or "").strip()
    if not name:
        st.error("Type your name to sign the note.", icon=":material/error:")
        return
    try:
        note = review.store.add_note(targets[choice], text, verdict=None if verdict == NO_VERDICT else verdict,
                                     author=name, url=page_url(page))
    except ReviewUnavailable as exc:
        review.fail(exc)
        return
    except CkptError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if not signed_in_user():
        st.session_state[AUTHOR_KEY] = name
    st.session_state[f"{key}_gen"] = generation + 1
    st.session_state[f"{key}_added"] = f"Note {note.id} added ({note.where})."
    st.rerun()


def notes_panel(review: Review, key: str, page: str, target: Target, title: str) -> None:
    """The notes on exactly `target` and a form adding one, in an expander that is open when there are some."""
    if not review.available:
        return
    found = [n for n in review.notes(checkpoint=target.checkpoint, checkpoint_b=target.checkpoint_b,
                                     variable=target.variable) if n.target.checkpoint_b == target.checkpoint_b]
    with st.expander(f"{escape(title)} ({len(found)})", expanded=bool(found), icon=":material/rate_review:"):
        show_notes(found)
        note_form(review, key, page, {"this": target})


def diff_target(prefix_a: str, prefix_b: str) -> Target:
    """The diff A → B, filed under A's run folder (as `python -m ckptlib note A --b B` files it)."""
    return Target(run=os.path.dirname(prefix_a), checkpoint=prefix_a, checkpoint_b=prefix_b)


def report_section(review: Review, runs: Sequence[RunSummary], current: str | None) -> None:
    """Choose a run and a format, write the report into a temporary folder, offer it as a download."""
    st.subheader("Report")
    if not runs:
        st.caption("No runs under this root.")
        return
    by_name = {r.name: r for r in runs}
    reset_when_changed("report_sidebar", current, ("report_run",))  # a new sidebar run: report that one
    names = list(by_name)
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    name = c1.selectbox("Run", names, index=names.index(current) if current in names else 0, key="report_run")
    fmt = c2.radio("Format", list(FORMATS), horizontal=True, key="report_format")
    if c3.button("Write the report", key="report_write", icon=":material/description:"):
        _write(review, by_name[name].path, fmt)
    made = st.session_state.get(REPORT_KEY)
    if made and made["run"] == by_name[name].path and made["format"] == fmt:
        st.download_button(f"Download {made['name']} ({made['size']:,} bytes)", made["data"], made["name"],
                           made["mime"], key="report_download", icon=":material/download:")
    if not review.available:
        st.caption("The report is written without notes while the review database is unavailable.")


def _write(review: Review, run_dir: str, fmt: str) -> None:
    """write_report into a fresh temporary folder (never inside a root), keep the bytes, remove the folder."""
    from ckptlib.review.report import write_report  # lazily: diffs, health and charts only when asked

    ext, mime = FORMATS[fmt]
    folder = tempfile.mkdtemp(prefix="ckptlib-report-")
    try:
        if inside(folder, allowed_roots()):
            st.error(f"The temporary folder {folder} lies inside a root folder; set TMPDIR elsewhere.")
            return
        out = os.path.join(folder, f"{os.path.basename(run_dir.rstrip('/'))}-review.{ext}")
        with st.status("Writing the report…", expanded=True) as status:
            bar = st.progress(0.0, text="Starting")

            def progress(done: int, total: int, label: str) -> None:
                bar.progress(done / total if total else 1.0, text=label or "Done")

            try:
                result = write_report(run_dir, out, store=review.store, progress=progress)
            except CkptError as exc:
                status.update(label="The report could not be written", state="error")
                st.error(str(exc), icon=":material/error:")
                return
            status.update(label=f"Report written ({result.bytes:,} bytes)", state="complete", expanded=False)
        with open(result.output, "rb") as handle:
            content = handle.read()
        st.session_state[REPORT_KEY] = {"run": run_dir, "format": fmt, "name": os.path.basename(result.output),
                                        "data": content, "size": len(content), "mime": mime}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
