"""Subcommands `note`, `notes`, `retract` and `report`: team review from a terminal (see ckptlib.review)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from ckptlib import errors, storage
from ckptlib.cli import review_docs
from ckptlib.review.types import VERDICTS

ENV_AUTHOR = "CKPTLIB_AUTHOR"


def add_subcommands(sub) -> None:
    """Register note, notes, retract and report on the `add_subparsers()` object of `python -m ckptlib`."""

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        cmd.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the review database (default: $CKPTLIB_DB, "
                                                     "else an SQLite file in your data folder)")
        return cmd

    note = command("note", "attach a note (and a verdict) to a run, a checkpoint, a diff or a variable")
    note.add_argument("target", metavar="TARGET", help="a run folder, or a checkpoint prefix / one of its files")
    note.add_argument("--var", metavar="NAME", help="the note is about this variable of the checkpoint")
    note.add_argument("--b", metavar="CKPT_B", help="the note is about the diff TARGET -> CKPT_B")
    note.add_argument("--verdict", choices=VERDICTS, help="candidate, ship, regressed or broken")
    note.add_argument("--text", required=True, metavar="T", help="the note, in Markdown ('-' reads stdin)")
    note.add_argument("--author", metavar="A", help=f"who writes it (default: ${ENV_AUTHOR}, else your login)")
    note.add_argument("--supersedes", type=int, metavar="ID", help="this note replaces note ID (same target)")
    note.add_argument("--url", metavar="URL", help="the dashboard view the note refers to")

    notes = command("notes", "list notes, newest first: all of them, under a root, or of one run")
    notes.add_argument("where", nargs="?", metavar="ROOT_OR_RUN", help="a root folder or a run folder")
    notes.add_argument("--verdict", choices=VERDICTS, help="only notes with this verdict")
    notes.add_argument("--author", metavar="A", help="only notes by this author")
    notes.add_argument("--all", action="store_true", help="include notes replaced by newer ones")

    retract = command("retract", "mark a note retracted (it is kept, and shown as retracted)")
    retract.add_argument("id", type=int, metavar="ID")
    retract.add_argument("--author", metavar="A", help=f"who retracts it (default: ${ENV_AUTHOR}, else your login)")

    report = command("report", "write a self-contained review report of a run (HTML or Markdown)")
    report.add_argument("run", metavar="RUN")
    report.add_argument("--out", required=True, metavar="FILE", help="FILE.html (charts embedded) or FILE.md")
    report.add_argument("--a", metavar="CKPT", help="first checkpoint of the top changes (default: the last two)")
    report.add_argument("--b", metavar="CKPT", help="second checkpoint of the top changes")
    report.add_argument("--accuracy", metavar="FILE.json", help="an `eval-history --json` document to include")


def _store(args):
    from ckptlib.review.store import ReviewStore  # local: SQLAlchemy only for the review subcommands

    return ReviewStore(args.db)


def _author(args) -> str:
    if args.author:
        return args.author
    if os.environ.get(ENV_AUTHOR):
        return os.environ[ENV_AUTHOR]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        raise errors.BadNote("Who writes this note? Give --author or set $CKPTLIB_AUTHOR.") from None


def _note(args):
    from ckptlib.review.targets import resolve_target

    text = sys.stdin.read() if args.text == "-" else args.text
    target = resolve_target(args.target, variable=args.var, checkpoint_b=args.b)
    note = _store(args).add_note(target, text, verdict=args.verdict, author=_author(args), url=args.url,
                                 supersedes=args.supersedes)
    return review_docs.note_doc(note), f"saved note {note.id}\n{review_docs.note_line(note)}"


def _notes(args):
    store = _store(args)
    under = None
    if args.where:
        under = storage.absolute(args.where)
        if not storage.isdir(under):
            raise errors.NotFound(f"Cannot list notes under '{under}': no such folder.")
    found = store.notes(under=under, verdict=args.verdict, author=args.author, include_superseded=args.all)
    text = "\n".join(review_docs.note_line(n) for n in found) if found else "No notes."
    return review_docs.notes_doc(found), text


def _retract(args):
    note = _store(args).retract(args.id, _author(args))
    return review_docs.listed_note_doc(note), f"retracted note {note.id}\n{review_docs.note_line(note)}"


def _report(args):
    from ckptlib.review.report import write_report
    from ckptlib.review.targets import run_target

    run = run_target(args.run).run
    accuracy = _read_accuracy(args.accuracy, run) if args.accuracy else None
    store = _store(args)
    result = write_report(run, args.out, store=store, a=args.a, b=args.b, accuracy=accuracy)
    return review_docs.report_doc(result), f"wrote {result.output} ({result.bytes:,} bytes, {result.format})"


def _read_accuracy(path: str, run: str):
    """An `eval-history --json` document back into an EvalHistory (for the report's accuracy chart)."""
    from ckptlib.evaluate.types import EvalHistory, EvalPoint

    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
        points = tuple(EvalPoint(step=p["step"], prefix=p["prefix"], accuracy=float(p["accuracy"]),
                                 num_examples=int(p["num_examples"])) for p in doc["points"])
    except OSError as exc:
        raise errors.NotFound(f"Cannot read accuracy file '{path}': {exc.strerror}.") from None
    except (ValueError, KeyError, TypeError):
        raise errors.CkptError(f"Cannot read accuracy file '{path}': not an `eval-history --json` document.") from None
    return EvalHistory(run=doc.get("run") or run, points=points, skipped=(), dataset_source=str(
        (doc.get("dataset") or {}).get("source", "")), device=str(doc.get("device") or ""))


HANDLERS = {"note": _note, "notes": _notes, "retract": _retract, "report": _report}
