"""Plotly figure builders for the pages (no Streamlit calls here)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from ckptlib.runs.types import RunHistory
from ckptlib.tensors.types import Histogram

STATUS_COLORS = {
    "latest": "#2e7d32",
    "kept": "#1565c0",
    "preserved": "#6a1b9a",
    "orphan": "#ef6c00",
    "incomplete": "#c62828",
    "missing": "#9e9e9e",
    "unlisted": "#00838f",
}
VERDICT_MARKS = {  # verdict -> (symbol, colour) of the ring drawn around a checkpoint's marker
    "ship": ("star-open", "#2e7d32"),
    "candidate": ("diamond-open", "#1565c0"),
    "regressed": ("triangle-down-open", "#ef6c00"),
    "broken": ("x-open", "#c62828"),
}
MAX_HEATMAP_SIDE = 256


def timeline(history: RunHistory, verdicts: Mapping[str, str] | None = None) -> go.Figure:
    """Step against time, one marker per checkpoint sized by bytes and coloured by status; checkpoints
    with a verdict ({prefix: verdict}) get a labelled mark around them."""
    fig = go.Figure()
    sizes = [e.size_bytes for e in history.checkpoints]
    biggest = max(sizes) if sizes and max(sizes) > 0 else 1
    for status, color in STATUS_COLORS.items():
        entries = [e for e in history.checkpoints if e.status == status and e.mtime is not None]
        if not entries:
            continue
        fig.add_trace(
            go.Scatter(
                x=[np.datetime64(int(e.mtime * 1000), "ms") for e in entries],
                y=[e.step for e in entries],
                mode="markers",
                name=status,
                marker={"color": color, "size": [8 + 22 * (e.size_bytes / biggest) ** 0.5 for e in entries],
                        "line": {"width": 1, "color": "white"}},
                text=[f"{e.name}<br>{e.size_bytes:,} bytes" + (f"<br>{e.problem}" if e.problem else "")
                      for e in entries],
                hovertemplate="%{text}<br>step %{y}<br>%{x}<extra>" + status + "</extra>",
            )
        )
    for verdict, (symbol, color) in VERDICT_MARKS.items():
        marked = [e for e in history.checkpoints if (verdicts or {}).get(e.prefix) == verdict and e.mtime is not None]
        if marked:
            fig.add_trace(go.Scatter(
                x=[np.datetime64(int(e.mtime * 1000), "ms") for e in marked], y=[e.step for e in marked],
                mode="markers+text", name=f"verdict: {verdict}", text=[verdict] * len(marked),
                textposition="top center", textfont={"color": color},
                marker={"symbol": symbol, "size": 26, "color": color, "line": {"width": 2, "color": color}},
                customdata=[e.name for e in marked],
                hovertemplate="%{customdata}: " + verdict + "<extra>verdict</extra>"))
    fig.update_layout(xaxis_title="time saved", yaxis_title="step", height=360, margin={"t": 30, "b": 40},
                      legend={"orientation": "h", "y": 1.12}, showlegend=True)
    return fig


def histogram(hist: Histogram, title: str = "") -> go.Figure:
    edges = np.asarray(hist.edges)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centers, y=hist.counts, width=np.diff(edges), marker_color="#1565c0"))
    fig.update_layout(title=title, xaxis_title="value", yaxis_title="count", bargap=0, height=320,
                      margin={"t": 40, "b": 40})
    return fig


def as_matrix(array: np.ndarray) -> np.ndarray | None:
    """2-D as is; conv kernels [h, w, in, out] as [h*w*in, out]; None for anything else."""
    if array.ndim == 2:
        return array
    if array.ndim == 4:
        return array.reshape(-1, array.shape[-1])
    return None


def heatmap(matrix: np.ndarray, title: str = "") -> go.Figure:
    """A heatmap, block-averaged down to at most MAX_HEATMAP_SIDE per side so the browser stays fast."""
    values = np.asarray(matrix, dtype=np.float64)
    # Axis labels stay in the original rows/columns: each block is labelled by its first index.
    ticks = [np.arange(values.shape[0]), np.arange(values.shape[1])]
    for axis in (0, 1):
        factor = -(-values.shape[axis] // MAX_HEATMAP_SIDE)
        if factor > 1:
            pad = (-values.shape[axis]) % factor
            widths = [(0, 0), (0, 0)]
            widths[axis] = (0, pad)
            padded = np.pad(values, widths, constant_values=np.nan)
            shape = list(padded.shape)
            shape[axis : axis + 1] = [shape[axis] // factor, factor]
            values = np.nanmean(padded.reshape(shape), axis=axis + 1)
            ticks[axis] = ticks[axis][::factor]
    fig = go.Figure(go.Heatmap(z=values, y=ticks[0], x=ticks[1], colorscale="RdBu", zmid=0,
                               hovertemplate="row %{y}, column %{x}: %{z:.4g}<extra></extra>"))
    fig.update_layout(title=title, height=420, margin={"t": 40, "b": 40}, yaxis={"autorange": "reversed"})
    return fig
