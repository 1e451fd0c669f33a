"""Graph page: a picture of the graph (scopes you can open) or of a library function's body (a TF2
SavedModel's real ops), what a .meta holds (collections, ops, node_defs, op types, devices), and a compare
mode: two graphs (or two functions) op by op, the picture coloured by what changed."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import data, graph_data
from ui.graph_compare import compare_view
from ui.graph_picture import function_picker, picture_view
from ui.widgets import current, errors_shown, url_picker

selection = current()
st.title("Graph")
if selection.run is None:
    st.info("Choose a run in the sidebar.")
    st.stop()
graphs = graph_data.graph_files(selection.run.path)
if not graphs:
    st.info(f"Run {selection.run.name} has no .meta, frozen .pb or SavedModel (TF2 object-based checkpoints "
            "carry no graph).")
    st.stop()
names = list(graphs)
latest = selection.history.latest
metas = [n for n in names if n.endswith(".meta")]
fallback = metas[-1] if metas else names[-1]
default = next((f"{e.name}.meta" for e in (selection.checkpoint, latest) if e is not None and e.has_meta), fallback)
c1, c2, c3 = st.columns([3, 1, 1])
chosen = url_picker(c1.selectbox, "Graph (.meta, frozen .pb, SavedModel)", names, "meta", default=default)
clear = c2.toggle("clear_devices", key="clear_devices",
                  help="Drop device pins, as import_meta_graph(clear_devices=True)")
mode = url_picker(c3.radio, "Mode", ["Inspect", "Compare"], "gmode", horizontal=True,
                  help="Compare: this graph (A) against another one (B), op by op.")
path = graphs[chosen]
if mode == "Compare":
    compare_view(selection.root, selection.run, chosen, path, clear)
    st.stop()
if not chosen.endswith(".meta"):
    function = function_picker(st, path, clear)
    with errors_shown():
        graph = graph_data.loaded(path, clear, function)
    cols = st.columns(3)
    cols[0].metric("Operations", graph.num_ops)
    cols[1].metric("Kind", graph.kind.replace("_", " "))
    cols[2].metric("Functions", len(graph.function_names))
    where = (f"Body of function {function}: its arguments are _Arg ops, its return values _Retval ops. "
             if function else "Collections, saver and signatures live in a .meta; this graph shows its picture only. ")
    st.caption(f"{where}Suggested outputs: {', '.join(graph.suggested_outputs[:3]) or 'none found'}.")
    picture_view(path, clear, function=function)
    st.stop()
with errors_shown():
    info = data.meta_graph(path, clear)

cols = st.columns(4)
cols[0].metric("Operations", info.num_ops)
cols[1].metric("Op types", len(info.op_type_counts))
cols[2].metric("Collections", len(info.collections))
cols[3].metric("TensorFlow", info.tensorflow_version or "—")
accelerators = [d for d in info.devices if "GPU" in d.upper() or "TPU" in d.upper()]
if accelerators:
    st.warning(f"Device pins: {', '.join(accelerators)} — a graph pinned to an accelerator fails on a machine "
               "without one unless it is imported with clear_devices=True (toggle above) or soft placement.")
elif info.devices:
    st.info(f"Device pins: {', '.join(info.devices)} (CPU only: harmless on any machine).")
elif info.cleared_devices:
    st.info(f"Cleared device pins: {', '.join(info.cleared_devices)}.")

tabs = st.tabs(["Picture", "Suggested inputs and outputs", "Collections", "Operations", "Node", "Op types",
                "Saver and signatures"])
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
    types = [t for t, _ in info.op_type_counts]
    f1, f2 = st.columns([2, 2])
    wanted = f1.multiselect("Op types", types, key="op_types")
    scope = f2.text_input("Name contains (scope)", key="op_scope", placeholder="e.g. conv1/")
    ops = [o for o in info.ops if (not wanted or o.type in wanted) and scope in o.name]
    st.caption(f"{len(ops)} of {info.num_ops} operations")
    st.dataframe(pd.DataFrame({"name": [o.name for o in ops], "type": [o.type for o in ops],
                               "device": [o.device for o in ops], "inputs": [", ".join(o.inputs) for o in ops]}),
                 hide_index=True, width="stretch", height=420)
with tabs[4]:
    op_names = [o.name for o in info.ops]
    default_op = info.suggested_outputs[0].name if info.suggested_outputs else None
    op = url_picker(st.selectbox, "Operation", op_names, "op", default=default_op)
    if op is not None:
        with errors_shown():
            node = data.node(path, op, clear)
        st.markdown(f"**{node.name}** · `{node.type}` · device `{node.device or '(none)'}`")
        c1, c2 = st.columns(2)
        c1.markdown("Inputs: " + (", ".join(f"`{i}`" for i in node.inputs) or "none"))
        c2.markdown("Consumers: " + (", ".join(f"`{i}`" for i in node.consumers[:30]) or "none"))
        st.json(dict(node.attrs))
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
    for sig in info.signatures:
        st.markdown(f"Signature **{sig.key}** ({sig.method_name})")
        sides = (("input", sig.inputs), ("output", sig.outputs))
        st.dataframe(pd.DataFrame([{"side": side, "key": t.key, "tensor": t.name, "dtype": t.dtype,
                                    "shape": str(t.shape)} for side, ts in sides for t in ts]),
                     hide_index=True, width="stretch")
    if not info.saver and not info.signatures:
        st.caption("No SaverDef and no signatures in this meta graph.")
