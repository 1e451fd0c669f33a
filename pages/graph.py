"""Graph page: a picture of the graph (scopes you can open) or of a library function's body (a TF2
SavedModel's real ops), what a .meta holds (collections, ops, node_defs, op types, devices), and a compare
mode: two graphs (or two functions) op by op, the picture coloured by what changed. The tab, clear_devices,
the filters and the node shown (found by name, reached through inputs and consumers) live in the URL."""

import os

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import data, graph_data
from ui.graph_compare import compare_view
from ui.graph_nodes import device_notice, graph_notes, node_tab, ops_tab, signatures_view
from ui.graph_picture import follow_run, function_picker, picture_view
from ui.live import url_toggle
from ui.review import open_review
from ui.widgets import current, errors_shown, url_picker

TABS = ["Picture", "Suggested inputs and outputs", "Collections", "Operations", "Node", "Op types",
        "Saver and signatures"]

selection = current()
st.title("Graph")
review = open_review()
if selection.run is None:
    st.info("Choose a run in the sidebar.")
    st.stop()
follow_run(selection.run.path)
graphs = graph_data.graph_files(selection.run.path)
if not graphs:
    st.info(graph_data.no_graph_message(selection.run.name, selection.history))
    st.stop()
names = list(graphs)
latest = selection.history.latest
metas = [n for n in names if n.endswith(".meta")]
fallback = metas[-1] if metas else names[-1]
default = next((f"{e.name}.meta" for e in (selection.checkpoint, latest) if e is not None and e.has_meta), fallback)
c1, c2, c3 = st.columns([3, 1, 1])
chosen = url_picker(c1.selectbox, "Graph (.meta, frozen .pb, SavedModel)", names, "meta", default=default)
with c2:
    clear = url_toggle("clear_devices", "clear_devices", "Drop device pins, as import_meta_graph(clear_devices=True)")
mode = url_picker(c3.radio, "Mode", ["Inspect", "Compare"], "gmode", horizontal=True,
                  help="Compare: this graph (A) against another one (B), op by op.")
path = graphs[chosen]
saved_model = os.path.isdir(path)  # a SavedModel: a meta graph with signatures, shown like a .meta
is_export = saved_model and selection.checkpoint is not None and selection.checkpoint.prefix == path
note = None if is_export else graph_data.meta_note(selection.history, selection.checkpoint, chosen)
if note:
    st.caption(note)


def finish() -> None:
    """The notes at the bottom of every view, then the page ends."""
    graph_notes(review, selection.history, selection.checkpoint, chosen)
    st.stop()


if mode == "Compare":
    compare_view(selection.root, selection.run, chosen, path, clear)
    finish()
if not chosen.endswith(".meta"):
    function = function_picker(st, path, clear)
    with errors_shown():
        graph = graph_data.loaded(path, clear, function)
    cols = st.columns(3)
    cols[0].metric("Operations", graph.num_ops)
    cols[1].metric("Kind", graph.kind.replace("_", " "))
    cols[2].metric("Functions", len(graph.function_names))
    where = (f"Body of function {function}: its arguments are _Arg ops, its return values _Retval ops. " if function
             else "Its signatures are listed below the picture. " if saved_model
             else "Collections, saver and signatures live in a .meta; this graph shows its picture only. ")
    st.caption(f"{where}Suggested outputs: {', '.join(graph.suggested_outputs[:3]) or 'none found'}.")
    picture_view(path, clear, function=function)
    if saved_model:
        with errors_shown():
            signatures_view(data.meta_graph(path, clear))
    finish()
with errors_shown():
    info = data.meta_graph(path, clear)

cols = st.columns(4)
cols[0].metric("Operations", info.num_ops)
cols[1].metric("Op types", len(info.op_type_counts))
cols[2].metric("Collections", len(info.collections))
cols[3].metric("TensorFlow", info.tensorflow_version or "—")
device_notice(info, path)

# Bound to ?gtab=…: a shared link opens on the same tab, and a switch reruns the page (the tab's .open is set).
tabs = st.tabs(TABS, key="gtab", bind="query-params")
with tabs[0]:
    picture_view(path, clear, function=function_picker(st, path, clear))
with tabs[1]:
    st.markdown("**Inputs** (placeholders)")
    st.dataframe(pd.DataFrame([{"name": p.name, "dtype": p.dtype, "shape": str(list(p.shape) if p.shape else p.shape),
                                "role": p.role, "has default": p.has_default} for p in info.suggested_inputs]),
                 hide_index=True, width="stretch")
    st.markdown("**Outputs** (best first: the end of the inference subgraph)")
    st.dataframe(pd.DataFrame([{"name": o.name, "type": o.type, "why": o.reason} for o in info.suggested_outputs]),
                 hide_index=True, width="stretch")
with tabs[2]:
    by_key = {c.key: c for c in info.collections}
    key = url_picker(st.selectbox, "Collection", list(by_key), "collection",
                     format_func=lambda k: f"{k} ({len(by_key[k].items)} items, {by_key[k].kind})")
    if key is not None:
        st.dataframe(pd.DataFrame({"item": by_key[key].items}), hide_index=True, width="stretch")
with tabs[3]:
    ops_tab(info)
with tabs[4]:
    node_tab(info, path, clear)
with tabs[5]:
    counts = list(info.op_type_counts)
    fig = go.Figure(go.Bar(x=[c for _, c in counts], y=[t for t, _ in counts], orientation="h"))
    fig.update_layout(height=120 + 18 * len(counts), yaxis={"autorange": "reversed", "automargin": True},
                      margin={"t": 20, "b": 40}, xaxis_title="operations")
    st.plotly_chart(fig, width="stretch")
with tabs[6]:
    if info.saver:
        s = info.saver
        st.markdown(f"Saver: restore op `{s.restore_op}`, format {s.version}, max_to_keep {s.max_to_keep}, "
                    f"keep_checkpoint_every_n_hours {s.keep_checkpoint_every_n_hours:g}, sharded {s.sharded}")
    signatures_view(info)
    if not info.saver and not info.signatures:
        st.caption("No SaverDef and no signatures in this meta graph.")
finish()
