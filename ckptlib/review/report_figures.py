"""Plotly figures of the HTML review report: checkpoint timeline with verdicts, top changes, accuracy."""

from __future__ import annotations

import datetime

from ckptlib.compare.types import VariableDiff
from ckptlib.evaluate.types import EvalHistory
from ckptlib.review.types import Note
from ckptlib.runs.types import RunHistory

# The dashboard's status colours (ui/figures.py), repeated here because ckptlib never imports ui.
STATUS_COLORS = {"latest": "#2e7d32", "kept": "#1565c0", "preserved": "#6a1b9a", "orphan": "#ef6c00",
                 "incomplete": "#c62828", "missing": "#9e9e9e", "unlisted": "#00838f"}
VERDICT_STYLE = {"ship": ("star", "#2e7d32"), "candidate": ("diamond", "#1565c0"),
                 "regressed": ("triangle-down", "#ef6c00"), "broken": ("x", "#c62828")}
LAYOUT = {"margin": {"t": 40, "b": 40, "l": 10, "r": 10}, "template": "plotly_white", "font": {"family": "sans-serif"}}


def _go():
    import plotly.graph_objects as go  # lazily: plotly is a dashboard dependency, not a core one

    return go


def _when(seconds: float) -> datetime.datetime:
    # Naive UTC: plotly.js mis-reads ISO strings with an offset, and the axis says UTC.
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)


def timeline(history: RunHistory, verdicts: dict[str, Note]):
    """Step against save time, coloured by status; a checkpoint with a verdict gets that verdict's marker."""
    go = _go()
    fig = go.Figure()
    dated = [e for e in history.checkpoints if e.mtime is not None]
    for status, color in STATUS_COLORS.items():
        entries = [e for e in dated if e.status == status]
        if entries:
            fig.add_trace(go.Scatter(
                x=[_when(e.mtime) for e in entries], y=[e.step for e in entries], mode="markers", name=status,
                marker={"color": color, "size": 10, "line": {"width": 1, "color": "white"}},
                text=[e.name for e in entries],
                hovertemplate="%{text}<br>step %{y}<br>%{x}<extra>" + status + "</extra>"))
    for verdict, (symbol, color) in VERDICT_STYLE.items():
        entries = [e for e in dated if verdicts.get(e.prefix) is not None and verdicts[e.prefix].verdict == verdict]
        if entries:
            fig.add_trace(go.Scatter(
                x=[_when(e.mtime) for e in entries], y=[e.step for e in entries], mode="markers+text",
                name=verdict, text=[verdict] * len(entries), textposition="top center",
                marker={"symbol": symbol, "size": 18, "color": color, "line": {"width": 1, "color": "black"}},
                customdata=[e.name for e in entries],
                hovertemplate="%{customdata}: " + verdict + "<br>step %{y}<extra></extra>"))
    fig.update_layout(title="Checkpoints and verdicts", xaxis_title="time saved (UTC)", yaxis_title="step",
                      height=380, legend={"orientation": "h", "y": -0.2}, **LAYOUT)
    return fig


def top_changes(rows: tuple[VariableDiff, ...]):
    """Relative change per variable, largest on top."""
    go = _go()
    fig = go.Figure(go.Bar(x=[r.rel_change for r in rows], y=[r.name for r in rows], orientation="h",
                           marker_color="#1565c0", hovertemplate="%{y}: %{x:.6g}<extra></extra>"))
    fig.update_layout(title="Relative change ‖b−a‖₂ / ‖a‖₂", xaxis_title="relative change",
                      height=140 + 24 * len(rows), yaxis={"autorange": "reversed", "automargin": True}, **LAYOUT)
    return fig


def accuracy_line(accuracy: EvalHistory):
    """Accuracy against step (checkpoints without a step are left out: they have no place on the axis)."""
    go = _go()
    points = [p for p in accuracy.points if p.step is not None]
    fig = go.Figure(go.Scatter(x=[p.step for p in points], y=[p.accuracy for p in points], mode="lines+markers",
                               name="accuracy", text=[p.prefix.rsplit("/", 1)[-1] for p in points],
                               hovertemplate="%{text}<br>step %{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(title="Accuracy over the run", xaxis_title="step", yaxis_title="accuracy", height=320, **LAYOUT)
    return fig
