"""Plotly figures for the Diff and Trends pages (no Streamlit calls here)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ckptlib.compare.types import ChangeMatrix, VariableDiff
from ckptlib.tensors.stats import as_float_components
from ui.figures import count_axis, log_axis, note_figure, step_axis, value_range
from ui.steps import shown

MAX_SCATTER_POINTS = 5000
MAX_BARS = 40


def _finite(array: np.ndarray) -> np.ndarray:
    flat = as_float_components(np.asarray(array))
    if flat is None:
        return np.zeros(0)
    values = flat.astype(np.float64)
    return values[np.isfinite(values)]


def overlaid_histograms(a: np.ndarray, b: np.ndarray, bins: int = 60) -> go.Figure:
    """A and B on the same bins, so a shift of the distribution is visible at a glance."""
    fa, fb = _finite(a), _finite(b)
    both = np.concatenate([fa, fb])
    fig = go.Figure()
    if both.size:
        low, high = float(both.min()), float(both.max())
        edges = np.linspace(low - 0.5, high + 0.5, 2) if low == high else np.linspace(low, high, bins + 1)
        centers = (edges[:-1] + edges[1:]) / 2
        counts = []
        for label, values, color in (("A", fa, "#1565c0"), ("B", fb, "#ef6c00")):
            counts.extend(np.histogram(values, edges)[0])
            fig.add_trace(go.Bar(x=centers, y=counts[-len(centers):], name=label, opacity=0.55,
                                 marker_color=color, width=np.diff(edges)))
        fig.update_layout(yaxis=count_axis(counts))
    fig.update_layout(barmode="overlay", bargap=0, title="Histograms of A and B", xaxis_title="value",
                      height=340, margin={"t": 40, "b": 40})
    return fig


def sampled_scatter(a: np.ndarray, b: np.ndarray, seed: int = 0) -> go.Figure:
    """B against A for a fixed random sample of elements; points off the diagonal moved."""
    fa = as_float_components(np.asarray(a))
    fb = as_float_components(np.asarray(b))
    fig = go.Figure()
    if fa is not None and fb is not None and fa.size == fb.size and fa.size:
        index = np.arange(fa.size)
        if fa.size > MAX_SCATTER_POINTS:
            index = np.sort(np.random.default_rng(seed).choice(fa.size, MAX_SCATTER_POINTS, replace=False))
        xa, xb = fa[index].astype(np.float64), fb[index].astype(np.float64)
        fig.add_trace(go.Scattergl(x=xa, y=xb, mode="markers", marker={"size": 4, "opacity": 0.5}, name="elements"))
        finite = np.concatenate([xa[np.isfinite(xa)], xb[np.isfinite(xb)]])
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="unchanged",
                                     line={"dash": "dot", "color": "#9e9e9e"}))
    fig.update_layout(title=f"B against A (up to {MAX_SCATTER_POINTS:,} sampled elements)", xaxis_title="A",
                      yaxis_title="B", height=380, margin={"t": 40, "b": 40})
    return fig


def rel_change_bars(rows: list[VariableDiff]) -> go.Figure:
    """Relative change per variable, largest first (the MAX_BARS largest that moved), named as the tables name
    them; a sentence instead when no variable moved."""
    ranked = sorted((r for r in rows if r.rel_change), key=lambda r: -r.rel_change)[:MAX_BARS]
    if not ranked:
        return note_figure(f"No variable changed: all {len(rows)} are the same in A and B.",
                           "Relative change ‖B−A‖ / ‖A‖")
    names = [r.display_name or r.name for r in ranked]
    fig = go.Figure(go.Bar(x=[r.rel_change for r in ranked], y=names, orientation="h", marker_color="#1565c0",
                           customdata=[r.name for r in ranked],
                           hovertemplate="%{y}: %{x:.4g}<extra>key %{customdata}</extra>"))
    fig.update_layout(title="Relative change ‖B−A‖ / ‖A‖", xaxis_title="relative change", height=120 + 22 * len(ranked),
                      margin={"t": 40, "b": 40, "l": 10}, yaxis={"autorange": "reversed", "automargin": True})
    return fig


MATRIX_SCALES = {  # how the change matrix is coloured -> its colour bar title
    "rank": "rank among all cells<br>(0 smallest, 1 largest)",
    "step": "share of the step's<br>largest change",
}


def scaled_changes(values: np.ndarray, scale: str = "rank") -> np.ndarray:
    """The colours of a change matrix, 0..1 (NaN stays NaN), so that one early column of large changes does
    not wash out the rest: "rank" is each cell's rank among all finite cells (ties share one), "step"
    divides each column by its largest value."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if scale == "step":
        for j in range(values.shape[1]):
            column = values[:, j]
            ok = np.isfinite(column)
            if ok.any():
                top = column[ok].max()
                out[ok, j] = column[ok] / top if top > 0 else 0.0
        return out
    flat = values[finite]
    if flat.size == 1:
        out[finite] = 1.0
    elif flat.size:
        _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
        start = np.cumsum(counts) - counts
        out[finite] = ((start + (counts - 1) / 2) / (flat.size - 1))[inverse]
    out[values == 0] = 0.0  # nothing moved reads as nothing, however many cells share that rank
    return out


def change_matrix(matrix: ChangeMatrix, scale: str = "rank", links=None, steps: dict | None = None,
                  step_title: str = "step") -> go.Figure:
    """Variables × steps of the relative change since the previous checkpoint, coloured by `scale` (see
    scaled_changes; the raw value is in the hover). `links[i][j]`, shaped like matrix.values, is what a click on
    that cell carries (customdata[0] of an invisible marker on the cell, since heatmaps cannot be selected).
    Columns stand at their step (`steps`: {prefix: training step}, else the checkpoint's own), so a gap in
    the saves is a wider column; checkpoints without distinct steps are listed side by side instead."""
    values = np.asarray(matrix.values, dtype=np.float64)
    keep = [j for j in range(values.shape[1]) if np.isfinite(values[:, j]).any()] if values.size else []
    if not keep:
        return note_figure("No variable changed between two checkpoints that both hold it: the change matrix "
                           "needs two complete checkpoints.", "Relative change since the previous checkpoint")
    at = [shown(matrix.steps[j], matrix.prefixes[j], steps or {}) for j in keep]
    by_step = None not in at and len(set(at)) == len(at)
    if by_step:
        labels = at
    else:
        labels, seen = [], set()
        for j, step in zip(keep, at):
            label = str(step) if step is not None and str(step) not in seen else matrix.prefixes[j].rsplit("/", 1)[-1]
            seen.add(label)
            labels.append(label)
    values = values[:, keep]
    colours = scaled_changes(values, scale)
    names = list(matrix.variables)
    fig = go.Figure(go.Heatmap(z=colours, x=labels, y=names, colorscale="Viridis", zmin=0, zmax=1,
                               colorbar={"title": {"text": MATRIX_SCALES.get(scale, scale)}}, hoverongaps=False,
                               hoverinfo="skip"))
    cells = [(i, k) for i in range(len(names)) for k in range(len(keep)) if np.isfinite(values[i, k])]
    fig.add_trace(go.Scatter(
        x=[labels[k] for _, k in cells], y=[names[i] for i, _ in cells], mode="markers", showlegend=False,
        name="cells", customdata=[[(links[i][keep[k]] if links else "") or "", values[i, k], colours[i, k]]
                                  for i, k in cells],
        marker={"symbol": "square-open", "size": 14, "color": "white", "opacity": 0, "line": {"width": 2}},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 0}},
        hovertemplate="%{y}<br>" + step_title + " %{x}: rel. change %{customdata[1]:.3g} (colour "
                      "%{customdata[2]:.2f})<extra>click: Diff against the step before</extra>"))
    xaxis = step_axis(labels, step_title) if by_step else {"title": step_title, "type": "category"}
    fig.update_layout(title="Relative change since the previous checkpoint (click a cell to open its Diff)",
                      xaxis=xaxis, hovermode="closest",
                      height=max(300, 160 + 22 * len(names)), margin={"t": 40, "b": 40},
                      yaxis={"autorange": "reversed", "automargin": True, "type": "category"})
    return fig


def has_values(series: dict[str, tuple[list, list]]) -> bool:
    """Whether any run's line has a finite value to draw."""
    return any(v is not None and np.isfinite(v) for _, values in series.values() for v in values)


def trend_lines(series: dict[str, tuple[list, list]], title: str, log_y: bool = False,
                links: dict[str, list[str]] | None = None, step_title: str = "step") -> go.Figure:
    """One line per run: label -> (steps, values); `links[label][k]` is what a click on point k carries.

    Whole-step ticks (a tick at each of a few steps), a sensible range around a lone point or a flat line,
    readable log ticks (whole decades); with nothing finite to draw, a sentence instead of empty axes."""
    if not has_values(series):
        return note_figure("Nothing to draw: no checkpoint has a value here (a change needs two checkpoints).", title)
    fig = go.Figure()
    every = [v for _, values in series.values() for v in values]
    few = sum(len(steps) for steps, _ in series.values()) <= 2 * len(series)
    for label, (steps, values) in series.items():
        fig.add_trace(go.Scatter(
            x=steps, y=values, mode="lines+markers", name=label, marker={"size": 10 if few else 6},
            customdata=[[link] for link in (links or {}).get(label, [""] * len(steps))],
            hovertemplate=step_title + " %{x}: %{y:.4g}<extra>" + label
                          + "<br>click: Diff against the step before</extra>"))
    yaxis = log_axis(every) if log_y else {"type": "linear"}
    if not log_y and value_range(every) is not None:
        yaxis["range"] = value_range(every)
    fig.update_layout(title=title, xaxis=step_axis([s for steps, _ in series.values() for s in steps], step_title),
                      yaxis=yaxis,
                      height=300, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25},
                      hovermode="closest")
    zeros = sum(1 for v in every if v == 0)
    if log_y and zeros:
        fig.add_annotation(text=f"{zeros} point(s) at 0 (no change) lie below a log scale", xref="paper",
                           yref="paper", x=1, y=1, xanchor="right", showarrow=False, font={"size": 11})
    return fig
