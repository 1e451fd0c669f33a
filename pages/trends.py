"""Trends page: how every layer moved over the run — change matrix, per-variable lines, health flags."""

import numpy as np
import pandas as pd
import streamlit as st

from ui import backend, data, figures_compare, live
from ui.pickers import url_multiselect
from ui.widgets import current, errors_shown, url_picker

selection = current()
st.title("Trends")
if selection.history is None:
    st.info("Choose a root folder that holds checkpoints in the sidebar.")
    st.stop()
st.caption(selection.history.path)
if live.live_toggle():
    live.follow(selection.history.path)
c1, c2 = st.columns([3, 1])
others = [r.name for r in data.runs(selection.root) if r.name != selection.run.name]
overlay = url_multiselect(c1.multiselect, "Overlay other runs on the line charts", others, "overlay", [])
include_optimizer = c2.toggle("Optimizer slots too", key="trend_opt")
with errors_shown():
    trends = data.trends(selection.run.path, include_optimizer)
if not trends.variables:
    st.warning("This run has no complete checkpoint with numeric variables.")
    st.stop()
if trends.skipped:
    st.warning("Left out: " + "; ".join(f"{s.prefix.rsplit('/', 1)[-1]} ({s.reason})" for s in trends.skipped[:5]))

health = backend.health_from_trends(trends, include_optimizer=include_optimizer)
if health.flags:
    st.error(f"{len(health.flags)} health flag(s): NaN/Inf, frozen weights or sudden norm changes.",
             icon=":material/warning:")
    st.dataframe(pd.DataFrame([{"step": f.step, "variable": f.variable, "flag": f.flag, "detail": f.detail}
                               for f in health.flags]), hide_index=True, width="stretch")
else:
    st.success(f"No health flags over {len(trends.checkpoints)} checkpoints and {len(health.checked)} variables.")

matrix = backend.change_matrix(trends)
if matrix.values.size and len(matrix.prefixes) > 1:
    st.plotly_chart(figures_compare.change_matrix(matrix), width="stretch")

names = [t.name for t in trends.variables]
name = url_picker(st.selectbox, "Variable", names, "var")
series_runs = {selection.run.name: trends}
for other in overlay:
    run = next(r for r in data.runs(selection.root) if r.name == other)
    with errors_shown():
        series_runs[other] = data.trends(run.path, include_optimizer)
for stat_pair in (("l2", "mean"), ("std", "rel_change_prev")):
    cols = st.columns(2)
    for col, stat in zip(cols, stat_pair):
        series = {}
        for label, run_trends in series_runs.items():
            trend = run_trends.get(name)
            if trend is not None:
                series[label] = ([p.step for p in trend.points],
                                 [np.nan if getattr(p, stat) is None else getattr(p, stat) for p in trend.points])
        col.plotly_chart(figures_compare.trend_lines(series, f"{name}: {stat}", log_y=stat == "rel_change_prev"),
                         width="stretch")
trend = trends.get(name)
if len(trend.points) > 1:
    # Scenario: a norm jumped between two steps -> open the Diff of exactly those two checkpoints.
    jumps = {p.step: (before, p) for before, p in zip(trend.points, trend.points[1:])}
    c1, c2 = st.columns([1, 2])
    step = c1.selectbox("Diff the step before and", list(jumps), index=len(jumps) - 1, key="trend_diff_step")
    before, after = jumps[step]
    c2.page_link("pages/diff.py", label=f"Open the Diff of step {before.step} → {after.step} for {name}",
                 icon=":material/difference:",
                 query_params={"root": selection.root, "run": selection.run.name, "a_run": selection.run.name,
                               "b_run": selection.run.name, "a_ckpt": before.prefix.rsplit("/", 1)[-1],
                               "b_ckpt": after.prefix.rsplit("/", 1)[-1], "dvar": name})
st.dataframe(pd.DataFrame([{"step": p.step, "l2": p.l2, "mean": p.mean, "std": p.std, "min": p.min, "max": p.max,
                            "rel_change_prev": p.rel_change_prev, "rel_change_first": p.rel_change_first,
                            "nan": p.nan, "inf": p.inf} for p in trend.points]), hide_index=True, width="stretch")
