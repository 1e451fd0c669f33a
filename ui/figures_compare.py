"""Plotly figures for the Diff and Trends pages (no Streamlit calls here)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ckptlib.compare.types import ChangeMatrix, VariableDiff
from ckptlib.tensors.stats import as_float_components

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
        for label, values, color in (("A", fa, "#1565c0"), ("B", fb, "#ef6c00")):
            fig.add_trace(go.Bar(x=centers, y=np.histogram(values, edges)[0], name=label, opacity=0.55,
                                 marker_color=color, width=np.diff(edges)))
    fig.update_layout(barmode="overlay", bargap=0, title="Histograms of A and B", xaxis_title="value",
                      yaxis_title="count", height=340, margin={"t": 40, "b": 40})
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
    """Relative change per variable, largest first (the MAX_BARS largest)."""
    ranked = sorted((r for r in rows if r.rel_change is not None), key=lambda r: -r.rel_change)[:MAX_BARS]
    fig = go.Figure(go.Bar(x=[r.rel_change for r in ranked], y=[r.name for r in ranked], orientation="h",
                           marker_color="#1565c0"))
    fig.update_layout(title="Relative change ‖B−A‖ / ‖A‖", xaxis_title="relative change", height=120 + 22 * len(ranked),
                      margin={"t": 40, "b": 40, "l": 10}, yaxis={"autorange": "reversed", "automargin": True})
    return fig


def change_matrix(matrix: ChangeMatrix) -> go.Figure:
    """Variables × steps of the relative change since the previous checkpoint."""
    steps = [str(s) if s is not None else p.rsplit("/", 1)[-1] for s, p in zip(matrix.steps, matrix.prefixes)]
    fig = go.Figure(go.Heatmap(z=matrix.values, x=steps, y=list(matrix.variables), colorscale="Viridis",
                               colorbar={"title": "rel. change"}, hoverongaps=False,
                               hovertemplate="%{y}<br>step %{x}<br>%{z:.4g}<extra></extra>"))
    fig.update_layout(title="Relative change since the previous checkpoint", xaxis_title="step", xaxis_type="category",
                      height=160 + 22 * len(matrix.variables), margin={"t": 40, "b": 40},
                      yaxis={"autorange": "reversed", "automargin": True})
    return fig


def trend_lines(series: dict[str, tuple[list, list]], title: str, log_y: bool = False) -> go.Figure:
    """One line per run: label -> (steps, values)."""
    fig = go.Figure()
    for label, (steps, values) in series.items():
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=label))
    fig.update_layout(title=title, xaxis_title="step", height=300, margin={"t": 40, "b": 40},
                      yaxis_type="log" if log_y else "linear", legend={"orientation": "h", "y": -0.25})
    return fig
