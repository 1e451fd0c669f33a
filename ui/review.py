"""Team review in the dashboard: one ReviewStore per database URL, the one "notes are unavailable" banner,
and notes drawn as cards or as a table. The note form and the report section live in ui/review_forms.py."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from ckptlib.errors import ReviewUnavailable
from ckptlib.review.store import ReviewStore
from ckptlib.review.types import VERDICTS, Note, Target
from ui.config import database_url

VERDICT_COLORS = {"candidate": "blue", "ship": "green", "regressed": "orange", "broken": "red"}
NO_VERDICT = "no verdict"
MAX_CARDS = 200  # notes drawn in full on one page; the table above them lists every one

__all__ = ["NO_VERDICT", "VERDICTS", "Review", "Target", "escape", "notes_table", "open_review", "run_label", "show_notes"]


@st.cache_resource(show_spinner=False)
def _store(url: str) -> ReviewStore:
    return ReviewStore(url)  # one engine (connection pool) per URL, shared by every session


@st.cache_data(ttl=15, show_spinner=False)
def _problem(url: str) -> str | None:
    """Why the database cannot be read (None when it can). Cached briefly: an unreachable server would
    otherwise cost its connect timeout on every rerun of every page."""
    try:
        _store(url).check()
    except ReviewUnavailable as exc:
        return str(exc)
    return None


class Review:
    """This page run's view of the review store. When the store is unavailable it shows one banner (at the
    top, where open_review() was called) and every read answers nothing, so the page renders on."""

    def __init__(self, url: str, banner):
        self.url = url
        self._banner = banner
        self.problem = _problem(url)
        self.store = None if self.problem else _store(url)
        if self.problem:
            self._show(self.problem)

    @property
    def available(self) -> bool:
        return self.store is not None

    def _show(self, message: str) -> None:
        self._banner.warning(f"Notes are unavailable: {message}", icon=":material/cloud_off:")

    def fail(self, exc: ReviewUnavailable) -> None:
        """The store failed mid-page (e.g. a read-only database refused a write): show the banner once."""
        if self.problem is None:
            self.problem = str(exc)
            self._show(self.problem)
        _problem.clear()
        self.store = None

    def notes(self, **filters) -> tuple[Note, ...]:
        """store.notes(**filters), newest first; () when the store is unavailable."""
        if self.store is None:
            return ()
        try:
            return self.store.notes(**filters)
        except ReviewUnavailable as exc:
            self.fail(exc)
            return ()

    def verdicts(self, run: str) -> dict[str, str]:
        """{checkpoint prefix: its standing verdict} for one run; {} when the store is unavailable."""
        if self.store is None:
            return {}
        try:
            return {prefix: note.verdict for prefix, note in self.store.verdicts(run).items()}
        except ReviewUnavailable as exc:
            self.fail(exc)
            return {}


def open_review() -> Review:
    """The review store for this page; call it once, near the top (that is where the banner goes)."""
    return Review(database_url(), st.empty())


def when(note: Note) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(note.created))


def escape(text: str) -> str:
    """Markdown-inert text (author names such as ana_b, run names with underscores)."""
    return "".join("\\" + c if c in "\\`*_[]<>#|~$:" else c for c in text)


def flags(note: Note) -> list[str]:
    """What is true of the note now, in words."""
    found = ["retracted"] if note.retracted else []
    if note.checkpoint_missing:
        found.append("checkpoint deleted")
    elif note.checkpoint_changed:
        found.append("made on an earlier version of this checkpoint")
    return found


def header(note: Note, root: str | None = None) -> str:
    """One Markdown line: verdict badge, author, time, what it is about (and the run, given a root)."""
    parts = [f":{VERDICT_COLORS[note.verdict]}-badge[{note.verdict}]"] if note.verdict else []
    parts += [f"**{escape(note.author)}**", when(note)]
    where = note.where
    if root is not None:
        where = f"{run_label(note.run, root)} · {where}"
    parts.append(escape(where))
    parts += [f":gray-badge[{flag}]" for flag in flags(note)]
    return " · ".join(parts)


def run_label(run: str, root: str) -> str:
    if "://" in run or "://" in root:
        return run
    rel = os.path.relpath(run, root)
    return run if rel.startswith("..") else rel


def show_notes(notes: Sequence[Note], *, root: str | None = None, links: bool = False,
               empty: str = "No notes yet.") -> None:
    """Each note as a bordered card: header, its Markdown, a link back to its view when `links`."""
    if not notes:
        st.caption(empty)
        return
    for note in notes[:MAX_CARDS]:
        with st.container(border=True):
            st.markdown(header(note, root))
            if note.text:
                st.markdown(note.text)
            if links and note.url:
                st.markdown(f"[Open the view it was written from]({note.url})")
    if len(notes) > MAX_CARDS:
        st.caption(f"The newest {MAX_CARDS} of {len(notes)} notes are shown.")


def notes_table(notes: Sequence[Note], root: str) -> pd.DataFrame:
    """One row per note, newest first, for st.dataframe (with the view's URL for a LinkColumn)."""
    return pd.DataFrame({
        "created": pd.to_datetime([n.created for n in notes], unit="s", utc=True).tz_convert(None),
        "run": [run_label(n.run, root) for n in notes],
        "about": [n.where for n in notes],
        "verdict": [n.verdict or "" for n in notes],
        "author": [n.author for n in notes],
        "text": [n.text.splitlines()[0][:200] if n.text else "" for n in notes],
        "state": [", ".join(flags(n)) for n in notes],
        "view": [n.url or None for n in notes],
        "id": [n.id for n in notes],
    })
