"""Trends page: how every layer moved over the run — change matrix, per-variable lines, health flags."""

import pandas as pd
import streamlit as st

from ui import backend, data, figures_compare, live, steps, trend_links
from ui.pickers import url_multiselect
from ui.review import Target, open_review
from ui.review_forms import notes_panel
from ui.widgets import current, errors_shown, url_picker

selection = current()
trend_links.switch_to_chosen_diff()  # a chart point or matrix cell clicked in the previous run
st.title("Trends")
if selection.history is None:
    st.info("Choose a root folder that holds checkpoints in the sidebar.")
    st.stop()
st.caption(selection.history.path)
if live.live_toggle():
    live.follow(selection.history.path)
root, run_name = selection.root, selection.run.name
c1, c2 = st.columns([3, 1])
others = [r.name for r in data.runs(root) if r.name != run_name]
overlay = url_multiselect(c1.multiselect, "Overlay other runs on the line charts", others, "overlay", [])
with c2:
    include_optimizer = live.url_toggle("Optimizer slots too", "opt", "Also follow optimizer slots "
                                        "(Adam's moments …), not only the model's weights.")
with errors_shown():
    trends = data.trends(selection.run.path, include_optimizer)
if not trends.variables:
    st.warning(trend_links.nothing_read(trends))
    st.stop()
orphans = [e.name for e in selection.history.checkpoints if e.status == "orphan"]
if orphans:
    st.info(f"Left out: {len(orphans)} orphan(s) ({', '.join(orphans[:4])}{' …' if len(orphans) > 4 else ''}), "
            "on disk but not in the state file — often another run's, so they are not drawn among this run's "
            "steps. History says more; Diff compares them.")
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

history = selection.history
step_title, shown_at = steps.axis_title(history), steps.training_steps(history)
matrix = backend.change_matrix(trends)
if matrix.values.size and (matrix.values == matrix.values).any():  # some cell is not NaN
    scale = url_picker(st.radio, "Colour the change matrix by", list(figures_compare.MATRIX_SCALES), "mscale",
                       horizontal=True, format_func={"rank": "rank among all cells",
                                                     "step": "share of each step's largest change"}.get,
                       help="Both keep one early step of large changes from washing out the rest; "
                            "the hover shows the relative change itself.")
    trend_links.chart(st, figures_compare.change_matrix(
        matrix, scale, trend_links.matrix_links(root, run_name, trends, matrix), shown_at, step_title),
        "trend_matrix", run_name)
else:
    st.info(trend_links.single_note(trends))

names = [t.name for t in trends.variables]
real = {t.name: t.display_name or t.name for t in trends.variables}
name = url_picker(st.selectbox, "Variable", names, "var", format_func=lambda n: real.get(n, n), url_text=real)
series_runs, run_steps = {run_name: trends}, {run_name: shown_at}
for other in overlay:
    run = next(r for r in data.runs(root) if r.name == other)
    with errors_shown():
        series_runs[other] = data.trends(run.path, include_optimizer)
        run_steps[other] = steps.training_steps(data.history(run.path))
lacking = [other for other in overlay if other in series_runs and series_runs[other].get(name) is None]
if lacking:
    st.caption(f"Not drawn: {', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no variable {name}.")
for stat_pair in (("l2", "mean"), ("std", "rel_change_prev")):
    for col, stat in zip(st.columns(2), stat_pair):
        series, links = trend_links.line_series(series_runs, name, stat, root, run_steps)
        if figures_compare.has_values(series):
            trend_links.chart(col, figures_compare.trend_lines(series, f"{name}: {stat}", stat == "rel_change_prev",
                                                               links, step_title), f"trend_{stat}", run_name)
        else:
            col.info(f"{name}: {stat} — nothing to draw: " + ("a change since the previous checkpoint needs two "
                     "checkpoints that hold it." if stat == "rel_change_prev" else "no checkpoint has a value."))
trend = trends.get(name)
c1, c2 = st.columns([1, 2])
pair = trend_links.step_picker(c1, trend, shown_at)
if pair is not None:
    # Scenario: a norm jumped between two steps -> open the Diff of exactly those two checkpoints.
    before, after = pair
    at_before, at_after = (steps.shown(p.step, p.prefix, shown_at) for p in (before, after))
    c2.page_link("pages/diff.py", label=f"Open the Diff of {step_title} {at_before} → {at_after} for {name}",
                 icon=":material/difference:",
                 query_params=trend_links.diff_params(root, run_name, name, before, after))
number = steps.number_label(history)  # a TF2 manager's save counter, a Keras epoch: as History names them
table = pd.DataFrame([{"checkpoint": trend_links.name_of(p.prefix), number: p.step, "l2": p.l2, "mean": p.mean,
                       "std": p.std, "min": p.min, "max": p.max, "rel_change_prev": p.rel_change_prev,
                       "rel_change_first": p.rel_change_first, "nan": p.nan, "inf": p.inf} for p in trend.points])
if steps.counts_saves(history):  # the optimizer's step beside the save or epoch number, as on History
    table.insert(1, "training step", [steps.shown(None, p.prefix, shown_at) for p in trend.points])
st.dataframe(table, hide_index=True, width="stretch")
# Scenario: a jump seen here is worth a note for the team, on the variable at the step chosen above.
at_step = pair[1] if pair is not None else None
notes_panel(open_review(), "trends", "trends",
            Target(history.path, checkpoint=at_step.prefix, variable=name) if at_step else Target(history.path),
            f"Notes on {real.get(name, name)} at {trend_links.name_of(at_step.prefix)}" if at_step
            else "Notes on the run")
