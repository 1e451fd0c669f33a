"""JSON documents of the review subcommands (note, notes, retract, report) and their plain text."""

from __future__ import annotations

import datetime

from ckptlib.review.types import Note, ReportResult


def note_doc(note: Note) -> dict:
    """The `note` document: the contract's keys first, then what else a note records."""
    return {
        "id": note.id, "run": note.run, "checkpoint": note.checkpoint, "variable": note.variable,
        "verdict": note.verdict, "text": note.text, "author": note.author, "created": note.created,
        "checkpoint_b": note.target.checkpoint_b, "url": note.url, "supersedes": note.supersedes,
    }


def listed_note_doc(note: Note) -> dict:
    return {**note_doc(note), "retracted": note.retracted, "checkpoint_changed": note.checkpoint_changed,
            "checkpoint_missing": note.checkpoint_missing, "superseded_by": note.superseded_by}


def notes_doc(notes: tuple[Note, ...]) -> dict:
    return {"notes": [listed_note_doc(n) for n in notes]}


def report_doc(result: ReportResult) -> dict:
    return {"output": result.output, "bytes": result.bytes, "format": result.format}


def note_line(note: Note) -> str:
    """One note as text: '#3 2026-12-01 10:02 UTC ana [ship] linear · model.ckpt-500: text'."""
    when = datetime.datetime.fromtimestamp(note.created, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flags = [f for f, on in (("retracted", note.retracted), ("checkpoint rewritten since", note.checkpoint_changed),
                             ("checkpoint deleted", note.checkpoint_missing)) if on]
    verdict = f" [{note.verdict}]" if note.verdict else ""
    run = note.run.rstrip("/").rsplit("/", 1)[-1]
    extra = f" ({'; '.join(flags)})" if flags else ""
    text = note.text.replace("\n", " ")
    return f"#{note.id} {when} {note.author}{verdict} {run} · {note.where}{extra}: {text}"
