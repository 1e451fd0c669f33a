"""Variables page: every tensor of a checkpoint, filterable; statistics and plots of the chosen one."""

import numpy as np
import pandas as pd
import streamlit as st

from ui import backend, data, figures
from ui.pickers import variable_filters
from ui.review import Target, open_review
from ui.review_forms import notes_panel
from ui.widgets import current, errors_shown, url_picker

selection = current()
st.title("Variables")
review = open_review()
entry = selection.checkpoint
if entry is None:
    st.info("Choose a run and a checkpoint in the sidebar.")
    st.stop()
st.caption(entry.prefix)
if not entry.complete:
    st.error(f"Checkpoint {entry.name} cannot be read: {entry.problem}")
    st.stop()
with errors_shown():
    variables = data.variables(entry.prefix)

left, right = st.columns([2, 1])
pattern, kinds, link_notes = variable_filters(left, right, variables, backend.KINDS, entry.prefix)
for note in link_notes:
    st.info(note)
shown = [v for v in variables if v.kind in kinds
         and (pattern.lower() in v.name.lower() or pattern.lower() in v.display_name.lower())]
table = pd.DataFrame(
    {
        "scope": [v.scope for v in shown],
        "name": [v.display_name.rsplit("/", 1)[-1] for v in shown],
        "shape": [str(list(v.shape)) for v in shown],
        "dtype": [v.dtype for v in shown],
        "elements": [v.num_elements for v in shown],
        "bytes": [v.nbytes for v in shown],
        "kind": [v.kind for v in shown],
        "key": [v.name for v in shown],
    }
).sort_values(["scope", "name"], kind="stable")
st.caption(f"{len(shown)} of {len(variables)} variables, {backend.human_bytes(sum(v.nbytes for v in shown))}")
st.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * len(shown), 420))
with st.expander("By scope"):
    scopes = table.groupby("scope", sort=True).agg(variables=("key", "size"), elements=("elements", "sum"),
                                                   bytes=("bytes", "sum")).reset_index()
    st.dataframe(scopes, hide_index=True, width="stretch")

names = list(table["key"])
first_weight = next((v.name for v in shown if v.kind == "model" and v.name in names), None)
display = {v.name: v.display_name + (f"  ({v.name})" if v.display_name != v.name else "") for v in shown}
name = url_picker(st.selectbox, "Variable", names, "var", default=first_weight, format_func=lambda n: display.get(n, n),
                  url_text={v.name: v.display_name for v in variables})
if name is None:
    st.stop()
with errors_shown():
    summary = data.tensor_summary(entry.prefix, name)
info, stats = summary.info, summary.stats
st.subheader(info.display_name)
st.caption(f"shape {list(info.shape)} · {info.dtype} · {info.num_elements:,} elements · "
           f"{backend.human_bytes(info.nbytes)} · {info.kind}"
           + (f" · slot of {info.slot_of}" if info.slot_of else "") + (f" · copy of {info.copy_of}" if info.copy_of else "")
           + (f" · key {info.name}" if info.display_name != info.name else "") + (f" · {info.note}" if info.note else ""))
notes_panel(review, "variables", "variables",
            Target(selection.history.path, checkpoint=entry.prefix, variable=name), f"Notes on {info.display_name} in {entry.name}")
labels = ("min", "max", "mean", "std", "l2", "nan", "inf", "zero_fraction")
if info.dtype in ("string", "bool"):
    st.caption("Strings and bools have no numeric statistics.")
    labels = ()
for col, label in zip(st.columns(4) + st.columns(4), labels):
    value = getattr(stats, label)
    col.metric(label.replace("_", " "), "—" if value is None else f"{value:.4g}" if isinstance(value, float) else value)
if stats.nan or stats.inf:
    st.warning(f"{stats.nan} NaN and {stats.inf} Inf values: min, max, mean, std and l2 count only finite ones.")

if summary.histogram:
    st.plotly_chart(figures.histogram(summary.histogram, "Histogram"), width="stretch")
if len(info.shape) in (2, 4) and info.dtype not in ("string", "bool") and info.num_elements:
    with errors_shown():
        whole = data.tensor(entry.prefix, name)
    matrix = figures.as_matrix(np.asarray(whole)) if whole is not None else None
    if whole is None:
        st.caption("Too large to draw as a heatmap; the statistics and histogram above cover every value.")
    elif matrix is not None and not np.iscomplexobj(matrix):
        label = "Heatmap" if len(info.shape) == 2 else "Heatmap (kernel reshaped to [h·w·in, out])"
        st.plotly_chart(figures.heatmap(matrix, label), width="stretch")
st.markdown("**Values**" + (" (first values)" if summary.preview_truncated else ""))
if isinstance(summary.preview, list) and len(info.shape) <= 2 and not summary.preview_truncated:
    st.dataframe(pd.DataFrame(summary.preview if len(info.shape) == 2 else {"value": summary.preview}),
                 width="stretch")
elif isinstance(summary.preview, list):
    st.json(summary.preview, expanded=False)
else:  # a scalar: st.json would try to parse a string as JSON
    st.code(repr(summary.preview)[:5000], language=None)
