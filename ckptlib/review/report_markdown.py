"""The review report as GitHub-flavoured Markdown: tables and numbers, no figures, fit for a pull request."""

from __future__ import annotations

import os
import re

from ckptlib.review.report_data import (
    ChangesSection,
    NotesSection,
    ReportData,
    left_out_sentence,
    note_state,
    number,
    size,
    step_label,
    summary_sentence,
    utc,
    verdict_label,
)


def cell(value) -> str:
    """Text safe inside a table cell: a '|' would end the cell, a newline the row, '<' open an HTML tag."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\r", " ").replace("\n", " ")


def code(text: str) -> str:
    """An inline code span that survives backticks in the text (CommonMark: a longer fence, padded)."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table(header: list[str], align: str, rows: list[list]) -> list[str]:
    """A GFM table; `align` has one letter per column: l(eft) or r(ight)."""
    marks = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(data: ReportData) -> str:
    history = data.history
    complete = sum(1 for e in history.checkpoints if e.complete)
    lines = [f"# Review report: {cell(history.name)}", "",
             f"- Run: {code(history.path)}",
             f"- Generated: {utc(data.generated)} by ckptlib",
             f"- Checkpoints: {len(history.checkpoints)} ({complete} complete)", ""]
    lines += _checkpoints(data) + [""] + _notes(data.notes) + [""] + _health(data) + [""]
    lines += _changes(data.changes) + [""] + _accuracy(data)
    return "\n".join(lines).rstrip() + "\n"


def _checkpoints(data: ReportData) -> list[str]:
    history, notes = data.history, data.notes
    lines = ["## Checkpoints", ""]
    if not history.checkpoints:
        return lines + ["The run holds no checkpoints."]
    rows = [[e.step if e.step is not None else "—", e.name, utc(e.mtime), size(e.size_bytes), e.status,
             verdict_label(notes.verdicts.get(e.prefix)), notes.count(e.prefix), e.problem or ""]
            for e in history.checkpoints]
    lines += table(["step", "checkpoint", "saved", "size", "status", "verdict", "notes", "problem"], "rllrllrl", rows)
    remarks = ([history.problem] if history.problem else []) + list(history.notes)
    return lines + ([""] + [f"- {cell(r)}" for r in remarks] if remarks else [])


def _notes(section: NotesSection) -> list[str]:
    lines = ["## Notes", ""]
    if section.unavailable:
        return lines + [f"_{cell(section.unavailable)}_"]
    if not section.notes:
        return lines + ["No notes on this run yet."]
    for note in section.notes:
        verdict = f" — **{note.verdict}**" if note.verdict else ""
        lines += [f"### {cell(note.where)}{verdict}", ""]
        marks = [f"note #{note.id}"] + (["retracted"] if note.retracted else [])
        lines += [f"{cell(note.author)} · {utc(note.created)} · {' · '.join(marks)}", ""]
        if note_state(note):
            lines += [f"_⚠ {note_state(note)}_", ""]
        lines += [f"> {line}" if line.strip() else ">" for line in (note.text or "(verdict only)").splitlines()]
        lines += [""]
    return lines[:-1]


def _health(data: ReportData) -> list[str]:
    health = data.health
    lines = ["## Health flags", ""]
    if not health.flags:
        lines += [f"No health flags: {len(health.checked)} variables checked over the complete checkpoints."]
    else:
        rows = [[f.flag, f.variable, step_label(f.step, f.prefix), f.detail] for f in health.flags]
        lines += table(["flag", "variable", "where", "detail"], "llll", rows)
    if health.skipped:
        left = sorted({os.path.basename(s.prefix) for s in health.skipped})
        lines += ["", f"Left out of the check: {cell(', '.join(left))}."]
    return lines


def _changes(section: ChangesSection) -> list[str]:
    lines = ["## Top changes", ""]
    if section.absent:
        return lines + [cell(section.absent)]
    pair = f"From {code(os.path.basename(section.a))} to {code(os.path.basename(section.b))}"
    lines += [f"{pair} (rel_change = ‖b−a‖₂ / ‖a‖₂): {summary_sentence(section.summary)}.", ""]
    if not section.top:
        return lines + ["No variable changed with a defined relative change (‖a‖₂ is 0, or nothing compares)."]
    rows = [[i, r.name, r.kind, r.status, number(r.rel_change), number(r.l2_diff), number(r.max_abs_diff)]
            for i, r in enumerate(section.top, 1)]
    lines += table(["#", "variable", "kind", "status", "rel_change", "l2_diff", "max_abs_diff"], "rlllrrr", rows)
    return lines + (["", left_out_sentence(section)] if section.left_out else [])


def _accuracy(data: ReportData) -> list[str]:
    lines = ["## Accuracy", ""]
    accuracy = data.accuracy
    if accuracy is None:
        return lines + ["Accuracy was not computed for this report (run `eval-history` and pass its result)."]
    if not accuracy.points:
        return lines + ["No checkpoint could be evaluated."]
    rows = [[p.step if p.step is not None else "—", os.path.basename(p.prefix), number(p.accuracy), p.num_examples]
            for p in accuracy.points]
    lines += table(["step", "checkpoint", "accuracy", "examples"], "rlrr", rows)
    best = accuracy.best
    where = f" on {cell(accuracy.dataset_source)}" if accuracy.dataset_source else ""
    lines += ["", f"Best: {number(best.accuracy)} at {step_label(best.step, best.prefix)}{where}."]
    return lines
