"""The review report as one self-contained HTML file: inline CSS, plotly.js inlined once, nothing fetched."""

from __future__ import annotations

import html
import os
import re

from ckptlib.review import report_figures as figures
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

# Nothing may leave the machine: scripts and styles only inline, images only from data: or blob:.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
       "font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
.meta,.muted{color:#59636e}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.nowrap{white-space:nowrap}
.verdict{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:.85em}
.ship{background:#2e7d32}.candidate{background:#1565c0}.regressed{background:#ef6c00}.broken{background:#c62828}
.note{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:10px 0}
.note.retracted{opacity:.6}.warn{color:#9a6700}pre{background:#f6f8fa;padding:8px;overflow-x:auto}
"""
_BULLET = re.compile(r"^\s*[-*+] ")
_NUMERIC = frozenset({"step", "size", "notes", "#", "rel_change", "l2_diff", "max_abs_diff", "accuracy", "examples"})
_NOWRAP = frozenset({"checkpoint", "saved", "status", "verdict", "flag", "where"})


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


class _Figures:
    """Embeds figures in document order: plotly.js goes into the first one only."""

    def __init__(self):
        self.count = 0

    def embed(self, fig, div_id: str) -> str:
        self.count += 1
        return fig.to_html(full_html=False, include_plotlyjs=self.count == 1, div_id=div_id,
                           config={"displaylogo": False, "responsive": True})


def note_html(text: str) -> str:
    """A safe subset of Markdown: paragraphs, line breaks, lists, fenced code, `code`, **bold**, *italics*.

    Every character of the note is escaped first; only tags this function writes reach the page.
    """
    parts = re.split(r"^```[^\n]*\n(.*?)^```[ \t]*$", text, flags=re.DOTALL | re.MULTILINE)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # the captured body of a fenced block
            out.append(f"<pre><code>{esc(part)}</code></pre>")
            continue
        for block in re.split(r"\n\s*\n", part.strip()):
            lines = [line for line in block.splitlines() if line.strip()]
            if not lines:
                continue
            if all(_BULLET.match(line) for line in lines):
                items = "".join(f"<li>{_inline(_BULLET.sub('', line))}</li>" for line in lines)
                out.append(f"<ul>{items}</ul>")
            else:
                out.append("<p>" + "<br>".join(_inline(line) for line in lines) + "</p>")
    return "".join(out)


def _inline(line: str) -> str:
    pieces = re.split(r"(`[^`]+`)", line)
    done = []
    for j, piece in enumerate(pieces):
        if j % 2:
            done.append(f"<code>{esc(piece[1:-1])}</code>")
            continue
        piece = esc(piece)
        piece = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", piece)
        done.append(re.sub(r"(?<![*\w])\*(?!\s)([^*]+?)\*(?![*\w])", r"<em>\1</em>", piece))
    return "".join(done)


def _table(header: list[str], rows: list[list], raw: frozenset[str] = frozenset()) -> str:
    """A table; cells are escaped unless their column is in `raw` (cells this module built as HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [_td(h) + (str(v) if h in raw else esc(v)) + "</td>" for h, v in zip(header, row)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _td(column: str) -> str:
    if column in _NUMERIC:
        return '<td class="num">'
    return '<td class="nowrap">' if column in _NOWRAP else "<td>"


def _badge(verdict: str | None, label: str = "") -> str:
    return f'<span class="verdict {esc(verdict)}">{esc(label or verdict)}</span>' if verdict else ""


def render_html(data: ReportData) -> str:
    figs = _Figures()
    history = data.history
    complete = sum(1 for e in history.checkpoints if e.complete)
    body = [f"<h1>Review report: {esc(history.name)}</h1>",
            (f'<p class="meta">Run <code>{esc(history.path)}</code> · generated {esc(utc(data.generated))} by '
             f"ckptlib · {len(history.checkpoints)} checkpoints ({complete} complete)</p>"),
            _checkpoints(data, figs), _notes(data.notes), _health(data), _changes(data.changes, figs),
            _accuracy(data, figs)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Review report: {esc(history.name)}</title><style>{STYLE}</style></head>\n"
            "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")


def _checkpoints(data: ReportData, figs: _Figures) -> str:
    history, notes = data.history, data.notes
    parts = ['<section id="checkpoints"><h2>Checkpoints</h2>']
    if not history.checkpoints:
        return parts[0] + "<p>The run holds no checkpoints.</p></section>"
    parts.append(figs.embed(figures.timeline(history, notes.verdicts), "fig-timeline"))
    rows = []
    for e in history.checkpoints:
        verdict = notes.verdicts.get(e.prefix)
        rows.append([e.step if e.step is not None else "—", e.name, utc(e.mtime), size(e.size_bytes), e.status,
                     _badge(verdict.verdict, verdict_label(verdict)) if verdict else "", notes.count(e.prefix),
                     e.problem or ""])
    parts.append(_table(["step", "checkpoint", "saved", "size", "status", "verdict", "notes", "problem"], rows,
                        raw=frozenset({"verdict"})))
    remarks = ([history.problem] if history.problem else []) + list(history.notes)
    parts += ["<ul>" + "".join(f"<li>{esc(r)}</li>" for r in remarks) + "</ul>"] if remarks else []
    return "".join(parts) + "</section>"


def _notes(section: NotesSection) -> str:
    head = '<section id="notes"><h2>Notes</h2>'
    if section.unavailable:
        return f'{head}<p class="muted"><em>{esc(section.unavailable)}</em></p></section>'
    if not section.notes:
        return f"{head}<p>No notes on this run yet.</p></section>"
    items = []
    for note in section.notes:
        state = note_state(note)
        retracted = " · retracted" if note.retracted else ""
        items.append(
            f'<article class="note{" retracted" if note.retracted else ""}" id="note-{note.id}">'
            f"<div><strong>{esc(note.where)}</strong> {_badge(note.verdict)}</div>"
            f'<div class="muted">{esc(note.author)} · {esc(utc(note.created))} · note #{note.id}{retracted}</div>'
            + (f'<div class="warn">⚠ {esc(state)}</div>' if state else "")
            + (note_html(note.text) if note.text else "<p class=\"muted\">(verdict only)</p>") + "</article>")
    return head + "".join(items) + "</section>"


def _health(data: ReportData) -> str:
    health = data.health
    parts = ['<section id="health"><h2>Health flags</h2>']
    if not health.flags:
        parts.append(f"<p>No health flags: {len(health.checked)} variables checked over the complete checkpoints.</p>")
    else:
        rows = [[f.flag, f.variable, step_label(f.step, f.prefix), f.detail] for f in health.flags]
        parts.append(_table(["flag", "variable", "where", "detail"], rows))
    if health.skipped:
        left = sorted({os.path.basename(s.prefix) for s in health.skipped})
        parts.append(f"<p class=\"muted\">Left out of the check: {esc(', '.join(left))}.</p>")
    return "".join(parts) + "</section>"


def _changes(section: ChangesSection, figs: _Figures) -> str:
    head = '<section id="changes"><h2>Top changes</h2>'
    if section.absent:
        return f"{head}<p>{esc(section.absent)}</p></section>"
    pair = (f"<p>From <code>{esc(os.path.basename(section.a))}</code> to <code>{esc(os.path.basename(section.b))}"
            f"</code>: {esc(summary_sentence(section.summary))}.</p>")
    parts = [head, pair]
    if not section.top:
        parts.append("<p>No variable changed with a defined relative change.</p>")
        return "".join(parts) + "</section>"
    parts.append(figs.embed(figures.top_changes(section.top), "fig-changes"))
    rows = [[i, r.name, r.kind, r.status, number(r.rel_change), number(r.l2_diff), number(r.max_abs_diff)]
            for i, r in enumerate(section.top, 1)]
    parts.append(_table(["#", "variable", "kind", "status", "rel_change", "l2_diff", "max_abs_diff"], rows))
    if section.left_out:
        parts.append(f'<p class="muted">{_inline(left_out_sentence(section))}</p>')
    return "".join(parts) + "</section>"


def _accuracy(data: ReportData, figs: _Figures) -> str:
    head = '<section id="accuracy"><h2>Accuracy</h2>'
    accuracy = data.accuracy
    if accuracy is None:
        return f"{head}<p>Accuracy was not computed for this report.</p></section>"
    if not accuracy.points:
        return f"{head}<p>No checkpoint could be evaluated.</p></section>"
    rows = [[p.step if p.step is not None else "—", os.path.basename(p.prefix), number(p.accuracy), p.num_examples]
            for p in accuracy.points]
    return (head + figs.embed(figures.accuracy_line(accuracy), "fig-accuracy")
            + _table(["step", "checkpoint", "accuracy", "examples"], rows) + "</section>")
