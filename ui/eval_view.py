"""Render an evaluation (accuracy, confusion matrix, misclassified digits) and accuracy over a run."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ckptlib import storage
from ckptlib.compare.types import RunTrends
from ckptlib.evaluate.types import EvalHistory, EvalResult, MnistTestSet
from ckptlib.formats.savedmodel_files import GRAPH_FILE as SAVED_MODEL_FILE
from ckptlib.runs.types import CheckpointEntry, RunHistory
from ui import graph_data
from ui.evaluate_state import CHART_KEY, diff_link, diff_params, open_chosen_diff
from ui.widgets import Selection

GALLERY_SIZE = 24


def confusion_figure(result: EvalResult) -> go.Figure:
    matrix = np.asarray(result.confusion)
    fig = go.Figure(go.Heatmap(z=matrix, x=[str(i) for i in range(10)], y=[str(i) for i in range(10)],
                               colorscale="Blues", text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(title="Confusion matrix", xaxis_title="predicted", yaxis_title="true", height=460,
                      yaxis={"autorange": "reversed", "dtick": 1}, xaxis={"dtick": 1}, margin={"t": 40, "b": 40})
    return fig


def show_result(result: EvalResult, dataset: MnistTestSet) -> None:
    cols = st.columns(4)
    cols[0].metric("Accuracy", f"{result.accuracy:.2%}", help=f"{result.num_correct:,} of {result.num_examples:,}")
    cols[1].metric("Images / s", f"{result.images_per_second:,.0f}")
    cols[2].metric("Device", result.device)
    cols[3].metric("Test images", f"{result.num_examples:,}")
    feeds = ", ".join(f"`{k}={v}`" for k, v in result.feeds) or "none"
    padded = f" (digits padded by {result.padding} pixels to 32×32)" if result.padding else ""
    st.caption(f"Input `{result.input}`{padded} → output `{result.output}` ({result.output_kind}); extra feeds: "
               f"{feeds}; batch {result.batch_size}; pixels {'raw 0–255' if result.raw_pixels else 'scaled to [0, 1]'}; "
               f"data: {result.dataset_source}")
    if result.metric is not None:
        st.info(f"The graph's own `{result.metric.name}`: {result.metric.value:.4%} (ckptlib: {result.accuracy:.4%}).")
    left, right = st.columns(2)
    left.plotly_chart(confusion_figure(result), width="stretch")
    per_class = [np.nan if a is None else a for a in result.per_class_accuracy]
    bars = go.Figure(go.Bar(x=[str(i) for i in range(10)], y=per_class, marker_color="#1565c0"))
    bars.update_layout(title="Accuracy per class", xaxis_title="digit", yaxis_tickformat=".0%", height=460,
                       yaxis_range=[max(0.0, np.nanmin(per_class) - 0.05) if np.isfinite(per_class).any() else 0, 1],
                       xaxis={"tickmode": "array", "tickvals": [str(i) for i in range(10)]},  # plotly skips odd ones
                       margin={"t": 40, "b": 40})
    right.plotly_chart(bars, width="stretch")
    wrong = result.misclassified[:GALLERY_SIZE]
    if wrong:
        st.markdown(f"**Misclassified digits** (the first {len(wrong)} of "
                    f"{result.num_examples - result.num_correct:,})")
        for row in range(0, len(wrong), 8):
            for col, (index, truth, predicted) in zip(st.columns(8), wrong[row:row + 8]):
                col.image(np.asarray(dataset.images[index]), width=72, clamp=True,
                          caption=f"#{index}: {truth} → {predicted}")


def _fate(entry: CheckpointEntry | None, run: RunHistory) -> str:
    """What will become of a checkpoint: the reviewer picking one to ship needs to know."""
    if entry is None:
        return ""
    if entry.prefix == run.next_deleted:
        return "deleted by max_to_keep at the next save"
    return {"orphan": "orphan: not in the state file", "preserved": "kept by keep_checkpoint_every_n_hours",
            "latest": "latest"}.get(entry.status, "")


def step_axis(steps: list[int]) -> dict:
    """An x axis of whole steps: with few points a tick at each (never 1,998.5), else plotly's own."""
    axis = {"title": "step", "tickformat": "d"}
    if len(steps) <= 12:
        axis.update(tickmode="array", tickvals=steps)
    if len(steps) == 1:
        axis["range"] = [steps[0] - 1, steps[0] + 1]
    return axis


def accuracy_range(values: list[float]) -> list[float]:
    """A y range around the accuracies that never leaves 0–100 % (plotly pads a lone point to ±50 %)."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.15, 0.01)
    return [max(0.0, low - pad), min(1.0, high + pad)]


def accuracy_figure(history: EvalHistory, links: list[str]) -> go.Figure:
    points = [p for p in history.points if p.step is not None]
    steps = [p.step for p in points]
    fig = go.Figure(go.Scatter(
        x=steps, y=[p.accuracy for p in points], customdata=links, mode="lines+markers", name="accuracy",
        marker={"size": 9}, hovertemplate="step %{x}: %{y:.2%}<extra>click: Diff against the checkpoint before</extra>"))
    fig.update_layout(title="Test accuracy by step (click a point to diff it with the one before)", height=340,
                      xaxis=step_axis(steps), yaxis={"tickformat": ".1%", "range": accuracy_range(
                          [p.accuracy for p in points] or [0.0, 1.0])}, margin={"t": 40, "b": 40})
    return fig


def norms_figure(trends: RunTrends) -> go.Figure | None:
    """Weight norms by step; None when fewer than two checkpoints were read (no line to draw)."""
    steps = sorted({p.step for t in trends.variables for p in t.points if p.step is not None})
    if len(steps) < 2:
        return None
    fig = go.Figure()
    for trend in trends.variables:
        fig.add_trace(go.Scatter(x=[p.step for p in trend.points], y=[p.l2 for p in trend.points],
                                 mode="lines+markers" if len(steps) <= 2 else "lines", name=trend.name))
    fig.update_layout(title="Weight norms (L2) by step", xaxis=step_axis(steps), height=340,
                      margin={"t": 40, "b": 40}, legend={"font": {"size": 9}})
    return fig


def show_history(history: EvalHistory, trends: RunTrends, selection: Selection) -> None:
    """Accuracy over the run; each point (chart and table) opens the Diff against the checkpoint before."""
    run = selection.history
    by_prefix = {e.prefix: e for e in run.checkpoints}
    if not history.points:
        st.warning("No checkpoint could be evaluated.")
    else:
        best = history.best
        fate = _fate(by_prefix.get(best.prefix), run)
        st.success(f"Best: step {best.step} ({best.prefix.rsplit('/', 1)[-1]}) at {best.accuracy:.2%} on "
                   f"{best.num_examples:,} images · {history.device} · {history.dataset_source}")
        if fate and fate != "latest":
            st.warning(f"The best checkpoint, {best.prefix.rsplit('/', 1)[-1]}, is {fate}: copy it somewhere safe "
                       "before you rely on it.")
        links = [diff_link(diff_params(selection, os.path.basename(p.prefix))) for p in history.points]
        left, right = st.columns(2)
        charted = [link or "" for p, link in zip(history.points, links) if p.step is not None]
        left.plotly_chart(accuracy_figure(history, charted), width="stretch", key=CHART_KEY,
                          on_select=open_chosen_diff, selection_mode="points")
        norms = norms_figure(trends)
        if norms is None:
            read = len({p.step for t in trends.variables for p in t.points})
            right.info("Weight norms by step need two readable checkpoints to draw a line; "
                       + ("only one was read." if read == 1 else "none could be read."))
        else:
            right.plotly_chart(norms, width="stretch")
        # Accuracy in percent as on the chart; the first checkpoint has nothing before it (an empty cell, not None).
        st.dataframe(pd.DataFrame([{"step": p.step, "checkpoint": p.prefix.rsplit("/", 1)[-1],
                                    "accuracy": 100 * p.accuracy, "images": p.num_examples,
                                    "note": _fate(by_prefix.get(p.prefix), run), "diff against": link or ""}
                                   for p, link in zip(history.points, links)]),
                     hide_index=True, width="stretch", column_config={
                         "accuracy": st.column_config.NumberColumn("accuracy", format="%.2f %%"),
                         "note": st.column_config.TextColumn("note", width="large"),
                         "diff against": st.column_config.LinkColumn(
                             help="Opens the Diff of this checkpoint against the complete one before it",
                             display_text=r"[?&]a_ckpt=([^&]*)")})
    if history.skipped:
        st.warning("Skipped: " + "; ".join(f"{s.prefix.rsplit('/', 1)[-1]}: {s.reason}" for s in history.skipped))


def no_graph_note(selection: Selection) -> str:
    """Why step 1 has nothing to freeze, for the kind of run chosen (graph_data.run_kind, as the Graph page says
    it): a SavedModel runs through its signatures; TF2/Keras checkpoints carry no graph by design; a TF1
    checkpoint without its .meta lost it."""
    name = selection.run.name
    kind = graph_data.run_kind(selection.history)
    if kind == "saved-model" or storage.isfile(storage.join(selection.run.path, SAVED_MODEL_FILE)):
        return (f"Run {name} is a SavedModel: there is nothing to freeze, it is evaluated through its signatures "
                "in step 2 below.")
    why = {"keras": "Keras files hold weights and a model config, not a TensorFlow graph",
           "object": "TF2 object-based checkpoints carry no graph"}.get(kind)
    if why:
        return (f"Run {name} has no graph to freeze: {why}. A frozen .pb or a SavedModel export can still be "
                "evaluated below.")
    return (f"Run {name} has no .meta file beside its checkpoints, so there is no graph to freeze them with (the "
            "Saver writes one unless told not to: it may not have been copied). A frozen .pb can still be evaluated "
            "below.")
