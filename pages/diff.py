"""Diff page: what changed between two checkpoints (two steps of a run, or two runs), ranked."""

import json

import numpy as np
import pandas as pd
import streamlit as st

from ui import backend, data, diff_rules, figures, figures_compare
from ui.pickers import checkpoint_picker, default_a, parse_atol, reset_when_changed, text_param, url_multiselect
from ui.review import open_review
from ui.review_forms import diff_target, notes_panel
from ui.widgets import current, errors_shown, url_picker

selection = current()
st.title("Diff")
review = open_review()
if selection.history is None:
    st.info("Choose a root folder that holds checkpoints in the sidebar.")
    st.stop()
runs = data.runs(selection.root)
run_b = selection.run.name
chosen = selection.checkpoint
if chosen is None or not chosen.usable:  # a broken sidebar choice: B starts at the run's latest instead
    chosen = selection.history.latest
ckpt_b = chosen.name if chosen else None
reset_when_changed("diff_sidebar", (run_b, ckpt_b), ("a_run", "a_ckpt", "b_run", "b_ckpt"))
left, right = st.columns(2)
run_a, ckpt_a = default_a(runs, selection.run, selection.history, ckpt_b)
entry_a = checkpoint_picker(left, "A", "a", runs, run_a, ckpt_a)
entry_b = checkpoint_picker(right, "B", "b", runs, run_b, ckpt_b)
if entry_a is None or entry_b is None:
    st.stop()

fields = diff_rules.mapping_fields()
atol = parse_atol(fields.atol_text)
with errors_shown():
    rules, strip = fields.mapping()
    result = data.diff(entry_a.prefix, entry_b.prefix, rules, strip, atol)

with errors_shown():
    verdict = data.parity(entry_a.prefix, entry_b.prefix, result)
if verdict is not None:  # an export against a training checkpoint: does it hold exactly those weights?
    (st.success if verdict.holds else st.warning)(verdict.sentence[0].upper() + verdict.sentence[1:] + ".")
summary = result.summary
st.caption("Every variable, all kinds:")
for col, (status, count) in zip(st.columns(len(summary)), summary.items()):
    col.metric(status.replace("_", " "), count)
diff_rules.suggestions(result, fields.rules_text)
side_a, side_b = (st.session_state.get(f"{side}_run") for side in ("a", "b"))
notes_panel(review, "diff", "diff", diff_target(entry_a.prefix, entry_b.prefix),
            f"Notes on {entry_a.name} → {entry_b.name}" if side_a == side_b else
            f"Notes on {side_a} {entry_a.name} → {side_b} {entry_b.name}")
nonfinite = [r for r in result.variables if r.nonfinite]
if nonfinite:
    st.warning(f"{len(nonfinite)} variable(s) hold NaN or Inf in A or B ({', '.join(r.name for r in nonfinite[:5])}): "
               "those positions count as changed but are left out of the norms (see the nonfinite column).")

c1, c2, c3 = st.columns([2, 2, 1])
kinds = url_multiselect(c1.multiselect, "Kinds", backend.KINDS, "kinds", ["model"],
                        help="Model weights by default; add optimizer slots, counters or metadata here.")
# A new pair of checkpoints (or rules) resets the status filter and the variable to inspect.
new_pair = reset_when_changed("diff_result", (result.a, result.b, rules, strip, atol), ())
diff_rules.forget_on_new_pair(new_pair, ("diff_status", "status"), ("dvar", "dvar"))
statuses = diff_rules.status_filter(c2, summary)
scope = text_param(c3.text_input, "Scope contains", "scope")
rows = [r for r in result.variables if r.kind in kinds and r.status in statuses
        and (scope in r.name or scope in (r.display_name or ""))]
table = pd.DataFrame({
    "name": [r.display_name or r.name for r in rows],
    "status": [r.status for r in rows],
    "kind": [r.kind for r in rows],
    "shape": [str(list(r.shape_b if r.shape_b is not None else r.shape_a)) for r in rows],
    "rel_change": [r.rel_change for r in rows],
    "l2_diff": [r.l2_diff for r in rows],
    "max_abs_diff": [r.max_abs_diff for r in rows],
    "mean_abs_diff": [r.mean_abs_diff for r in rows],
    "cosine": [r.cosine for r in rows],
    "frac_changed": [r.frac_changed for r in rows],
    "nonfinite": [r.nonfinite for r in rows],
    "key": [r.name for r in rows],
    "name_a": [r.name_a for r in rows],
})
table = table.sort_values("rel_change", ascending=False, na_position="last", kind="stable")
st.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * max(len(table), 2), 460))
doc = backend.diff_doc(result)
with st.container(horizontal=True):  # buttons as wide as their labels, side by side
    st.download_button("CSV (rows shown)", table.to_csv(index=False), "diff.csv", "text/csv")
    st.download_button("JSON (every variable)", json.dumps(doc, indent=2), "diff.json", "application/json")
if any(r.rel_change for r in rows):
    st.plotly_chart(figures_compare.rel_change_bars(rows), width="stretch")
elif rows and all(r.status == "unchanged" for r in rows):
    st.info(f"No variable moved between A and B: all {len(rows)} shown are unchanged, so there is no change to "
            "chart.")

both = [r.name for r in rows if r.name_a is not None and r.status not in ("added", "removed")]
options = list(table["key"][table["key"].isin(both)])
shown_as = {r.name: r.display_name or r.name for r in rows}
name = url_picker(st.selectbox, "Variable to inspect", options, "dvar", format_func=lambda n: shown_as.get(n, n),
                  default=diff_rules.largest_change(rows, options),  # the layer that moved most
                  url_text=shown_as)
if name is None:
    st.stop()
row = next(r for r in rows if r.name == name)
with errors_shown():
    a = data.tensor(entry_a.prefix, row.name_a)
    b = data.tensor(entry_b.prefix, row.name)
st.subheader(shown_as.get(name, name))
if a is None or b is None:
    st.caption(f"{name} is too large to plot value by value; the table's statistics cover every element.")
    st.stop()
a, b = np.asarray(a), np.asarray(b)
if row.display_name and row.display_name != row.name:  # the heading is the real name; the keys go last
    st.caption(f"A: {list(row.shape_a)} {row.dtype_a} · B: {list(row.shape_b)} {row.dtype_b} · keys: A {row.name_a}, "
               f"B {row.name}")
else:
    st.caption(f"A: {row.name_a} {list(row.shape_a)} {row.dtype_a} · B: {row.name} {list(row.shape_b)} {row.dtype_b}")
left, right = st.columns(2)
left.plotly_chart(figures_compare.overlaid_histograms(a, b), width="stretch")
right.plotly_chart(figures_compare.sampled_scatter(a, b), width="stretch")
real = all(d not in ("string", "bool") and not d.startswith("complex") for d in (row.dtype_a, row.dtype_b))
if a.shape == b.shape and real:
    delta = figures.as_matrix(b.astype(np.float64) - a.astype(np.float64))
    if delta is not None:
        st.plotly_chart(figures.heatmap(delta, "B − A" + (" (kernel as [h·w·in, out])" if a.ndim == 4 else "")),
                        width="stretch")
