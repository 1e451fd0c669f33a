"""Plotly figure builders for the pages (no Streamlit calls here)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from ckptlib.runs.types import RunHistory
from ckptlib.tensors.types import Histogram
from ui import steps

STATUS_COLORS = {
    "latest": "#2e7d32",
    "kept": "#1565c0",
    "preserved": "#6a1b9a",
    "orphan": "#ef6c00",
    "incomplete": "#c62828",
    "damaged": "#ad1457",
    "missing": "#9e9e9e",
    "unlisted": "#00838f",
}
OTHER_STATUS_COLOR = "#616161"  # a status this table does not know yet still gets drawn
VERDICT_MARKS = {  # verdict -> (symbol, colour) of the ring drawn around a checkpoint's marker
    "ship": ("star-open", "#2e7d32"),
    "candidate": ("diamond-open", "#1565c0"),
    "regressed": ("triangle-down-open", "#ef6c00"),
    "broken": ("x-open", "#c62828"),
}
MAX_HEATMAP_SIDE = 256
MAX_STEP_TICKS = 8  # up to this many distinct steps: one tick at each step, nothing in between


def step_axis(steps, title: str = "step") -> dict:
    """An axis of whole steps: a tick at each step when there are few (never 1,998.5), integer labels
    otherwise, and a range around a lone step instead of plotly's ±1 around it."""
    distinct = sorted({int(s) for s in steps if s is not None})
    axis = {"title": title, "tickformat": "d"}
    if 0 < len(distinct) <= MAX_STEP_TICKS:
        axis.update(tickmode="array", tickvals=distinct, ticktext=[str(s) for s in distinct])
    if len(distinct) == 1:
        pad = max(1.0, abs(distinct[0]) * 0.05)
        axis["range"] = [distinct[0] - pad, distinct[0] + pad]
    return axis


def value_range(values) -> list[float] | None:
    """A y range for a lone value or a flat line (plotly pads those by ±50 %); None: let plotly choose."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    scale = max(abs(low), abs(high))
    if high - low > 1e-9 * scale:
        return None
    pad = scale * 0.1 if scale > 0 else 1.0
    return [low - pad, high + pad]


def log_axis(values) -> dict:
    """A log axis with one labelled tick per power of ten (or every few on wide ranges), over whole decades,
    so that plotly's 2-and-5 labels between decades do not clutter it."""
    positive = [float(v) for v in values if v is not None and np.isfinite(v) and v > 0]
    axis = {"type": "log", "exponentformat": "power", "showexponent": "all", "minor": {"ticks": "outside", "ticklen": 3}}
    if not positive:
        return axis
    low, high = int(np.floor(np.log10(min(positive)))), int(np.ceil(np.log10(max(positive))))
    if high == low:
        high += 1
    axis.update(range=[low, high], dtick=max(1, int(np.ceil((high - low) / 6))), tick0=0)
    return axis


def note_figure(sentence: str, title: str = "", height: int = 220) -> go.Figure:
    """A figure that says in words why there is nothing to plot (instead of empty axes)."""
    fig = go.Figure()
    fig.add_annotation(text="<br>".join(textwrap.wrap(sentence, 90)), xref="paper", yref="paper", x=0.5, y=0.5,
                       showarrow=False, font={"size": 14})
    fig.update_layout(title=title, height=height, margin={"t": 40, "b": 20}, xaxis={"visible": False},
                      yaxis={"visible": False})
    return fig


def _times_usable(entries) -> bool:
    """Whether the save times can order the checkpoints: known, and not all within a second (copied files)."""
    times = [e.mtime for e in entries]
    if not times or any(t is None for t in times):
        return False
    return len(times) == 1 or max(times) - min(times) >= 1.0


def timeline(history: RunHistory, verdicts: Mapping[str, str] | None = None) -> go.Figure:
    """Step against time, one marker per checkpoint sized by bytes and coloured by status; checkpoints
    with a verdict ({prefix: verdict}) get a labelled mark around them.

    When the save times cannot order the run (unknown, or files copied so that all carry one time) the
    x axis lists the checkpoints in step order instead; with nothing to draw, a sentence says why."""
    drawn = [e for e in history.checkpoints if e.training_step is not None]
    step_title = steps.axis_title(history)  # TF2 and Keras runs: the optimizer's step, not the save counter
    if not drawn:
        what = (f"None of the {len(history.checkpoints)} checkpoints has a step number (no '-N' in its name and "
                "no readable global step), so there is no timeline to draw; the table below lists them."
                if history.checkpoints else "This run has no checkpoint files, so there is no timeline to draw.")
        return note_figure(what, "Timeline")
    # Placed in time: checkpoints with a save time to trust (a copied folder's file times are not: only the state
    # file's timestamps count then); those without one are named under the chart instead of being guessed.
    copied = getattr(history, "file_times_copied", False)
    timed = [e for e in drawn if e.mtime is not None and (not copied or e.time_source == "state")]
    by_time = (len(timed) >= 2 and _times_usable(timed)) or (len(drawn) == len(timed) == 1)
    untimed = [e.name for e in drawn if e not in timed] if by_time else []
    if by_time:
        drawn = timed
        def where(e):
            return np.datetime64(int(e.mtime * 1000), "ms")
    else:
        def where(e):
            return e.name
    sizes = [e.size_bytes for e in history.checkpoints]
    biggest = max(sizes) if sizes and max(sizes) > 0 else 1
    fig = go.Figure()
    statuses = list(STATUS_COLORS) + sorted({e.status for e in drawn} - set(STATUS_COLORS))
    for status in statuses:
        entries = [e for e in drawn if e.status == status]
        if not entries:
            continue
        fig.add_trace(
            go.Scatter(
                x=[where(e) for e in entries],
                y=[e.training_step for e in entries],
                mode="markers",
                name=status,
                marker={"color": STATUS_COLORS.get(status, OTHER_STATUS_COLOR),
                        "size": [8 + 22 * (e.size_bytes / biggest) ** 0.5 for e in entries],
                        "line": {"width": 1, "color": "white"}},
                text=[f"{e.name}<br>{e.size_bytes:,} bytes" + (f"<br>{e.problem}" if e.problem else "")
                      for e in entries],
                hovertemplate="%{text}<br>" + step_title + " %{y}<br>%{x}<extra>" + status + "</extra>",
            )
        )
    for verdict, (symbol, color) in VERDICT_MARKS.items():
        marked = [e for e in drawn if (verdicts or {}).get(e.prefix) == verdict]
        if marked:
            fig.add_trace(go.Scatter(
                x=[where(e) for e in marked], y=[e.training_step for e in marked],
                mode="markers+text", name=f"verdict: {verdict}", text=[verdict] * len(marked),
                textposition="top center", textfont={"color": color},
                marker={"symbol": symbol, "size": 26, "color": color, "line": {"width": 2, "color": color}},
                customdata=[e.name for e in marked],
                hovertemplate="%{customdata}: " + verdict + "<extra>verdict</extra>"))
    if by_time:
        xaxis = {"title": "time saved"}
        if len({e.mtime for e in drawn}) == 1:  # a lone save time: an hour around it, not milliseconds
            center = np.datetime64(int(drawn[0].mtime * 1000), "ms")
            xaxis["range"] = [str(center - np.timedelta64(30, "m")), str(center + np.timedelta64(30, "m"))]
    else:
        xaxis = {"title": "checkpoints in step order (their file times cannot order them: copied or unknown)",
                 "type": "category", "categoryorder": "array", "categoryarray": [e.name for e in drawn]}
    fig.update_layout(xaxis=xaxis, yaxis=step_axis([e.training_step for e in drawn], step_title), height=360,
                      margin={"t": 30, "b": 40},
                      legend={"orientation": "h", "y": 1.12}, showlegend=True)
    if untimed:
        fig.add_annotation(text=f"Not placed in time (no known save time): {', '.join(untimed[:4])}"
                                + (f" and {len(untimed) - 4} more" if len(untimed) > 4 else ""),
                           xref="paper", yref="paper", x=1, y=-0.22, showarrow=False, xanchor="right")
    left_out = [e.name for e in history.checkpoints if e.training_step is None]
    if left_out:
        fig.add_annotation(text=f"Not drawn (no step number): {', '.join(left_out[:4])}"
                                + (f" and {len(left_out) - 4} more" if len(left_out) > 4 else ""),
                           xref="paper", yref="paper", x=0, y=-0.22, showarrow=False, xanchor="left")
    return fig


def count_axis(counts, title: str = "count") -> dict:
    """An axis of whole counts: never a tick at 0.5 (plotly's choice for a bar of height 1 or 3)."""
    top = max((int(c) for c in counts), default=0)
    axis = {"title": title, "tickformat": "d", "rangemode": "tozero"}
    if top <= 10:
        axis["dtick"] = 1
    return axis


def histogram(hist: Histogram, title: str = "") -> go.Figure:
    edges = np.asarray(hist.edges)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centers, y=hist.counts, width=np.diff(edges), marker_color="#1565c0"))
    fig.update_layout(title=title, xaxis_title="value", yaxis=count_axis(hist.counts), bargap=0, height=320,
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
