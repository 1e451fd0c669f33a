"""Evaluate page: freeze a checkpoint, run a frozen graph on MNIST, accuracy over the run's steps."""

import os

import streamlit as st

from ui import backend, data, eval_view
from ui.widgets import current, errors_shown

selection = current()
st.title("Evaluate")
if selection.run is None:
    st.info("Choose a run in the sidebar.")
    st.stop()
entry = selection.checkpoint

st.header("1 · Freeze a checkpoint", divider="gray")
outputs = ()
# The output nodes come from the chosen checkpoint's .meta, else from the newest .meta of the run
# (one training graph per run), so accuracy over the run works even when the chosen one is broken.
run_meta = next((e.prefix + ".meta" for e in reversed(selection.history.checkpoints) if e.has_meta), None)
meta = entry.prefix + ".meta" if entry and entry.has_meta else run_meta
if meta is None:
    st.info(f"Run {selection.run.name} has no .meta file: there is no graph to freeze (TF2 object-based "
            "checkpoints carry none). A frozen .pb can still be evaluated below.")
else:
    with errors_shown():
        graph = data.meta_graph(meta, True)
    suggested = [o.name for o in graph.suggested_outputs]
    outputs = tuple(st.multiselect("Output nodes (suggested, best first)", suggested + [o.name for o in graph.ops
                                   if o.name not in suggested], default=suggested[:1], key="freeze_outputs"))
    can_freeze = entry is not None and entry.complete
    if not can_freeze:
        st.warning("The checkpoint chosen in the sidebar is incomplete or missing: choose another one to freeze it.")
    if st.button("Freeze", type="primary", disabled=not (outputs and can_freeze), key="freeze"):
        with errors_shown(stop=False), st.spinner("Freezing…"):
            st.session_state["frozen"] = data.freeze(entry.prefix, outputs)
            st.session_state["pick_frozen"] = True  # evaluate what was just frozen, not the previous pick
    frozen = st.session_state.get("frozen")
    if frozen is not None and (entry is None or frozen.checkpoint != entry.prefix):
        frozen = None  # frozen from another checkpoint: not offered under this one
    if frozen is not None:
        st.success(f"Froze {os.path.basename(frozen.checkpoint)}: {frozen.num_nodes} nodes, {frozen.bytes:,} bytes, "
                   f"{frozen.num_variables} variables turned into constants; outputs {', '.join(frozen.outputs)}."
                   + (f" Cleared device pins: {', '.join(frozen.cleared_devices)}." if frozen.cleared_devices else ""))
        with open(frozen.output, "rb") as handle:
            st.download_button("Download the .pb", handle.read(), f"{os.path.basename(frozen.checkpoint)}.pb",
                               "application/octet-stream")

st.header("2 · Evaluate a frozen graph on MNIST", divider="gray")
candidates = data.frozen_candidates(selection.run.path, frozen if meta else None)
upload = st.file_uploader("…or upload a frozen GraphDef (.pb)", type=["pb"])
if upload is not None:
    candidates = {f"uploaded: {upload.name}": data.store_upload(upload.name, upload.getvalue())} | candidates
if not candidates:
    st.info("Freeze a checkpoint above, or upload a .pb.")
else:
    if st.session_state.pop("pick_frozen", False):
        # Through the session state, so the browser's selectbox changes too (it keeps its old value otherwise).
        st.session_state["eval_model"] = next(iter(candidates))
    label = st.selectbox("Frozen graph", list(candidates), key="eval_model")
    with st.expander("Options"):
        c1, c2, c3 = st.columns(3)
        device = c1.selectbox("Device", ["auto", "cpu", "gpu"], key="eval_device",
                              help="auto: the first GPU TensorFlow sees, else the CPU")
        limit = c2.number_input("Images (0 = all 10,000)", 0, 10000, 0, step=1000, key="eval_limit")
        raw = c3.checkbox("Raw 0–255 pixels", key="eval_raw", help="Default: pixels scaled to [0, 1]")
        c4, c5, c6 = st.columns(3)
        input_tensor = c4.text_input("Input tensor (blank: automatic)", key="eval_input") or None
        output_tensor = c5.text_input("Output tensor (blank: automatic)", key="eval_output") or None
        mnist_source = c6.text_input("MNIST folder or mnist.npz (blank: default)", key="eval_mnist") or None
        c7, c8, c9 = st.columns(3)
        feed_text = c7.text_area("Feeds, NAME=VALUE per line", key="eval_feeds", placeholder="keep_prob=1.0")
        labels = c8.text_input("Labels placeholder (optional)", key="eval_labels") or None
        metric = c9.text_input("Graph's own accuracy tensor (optional)", key="eval_metric") or None
    if st.button("Evaluate", type="primary", key="evaluate"):
        with errors_shown():
            feeds = backend.parse_feeds([line for line in feed_text.splitlines() if line.strip()])
        st.session_state["eval_request"] = (candidates[label], tuple(sorted({
            "device": device, "limit": int(limit) or None, "raw_pixels": raw, "input_tensor": input_tensor,
            "output_tensor": output_tensor, "feeds": tuple(sorted(feeds.items())) or None, "labels": labels,
            "metric": metric}.items())), mnist_source)
    request = st.session_state.get("eval_request")
    result = None
    if request is not None:
        with errors_shown(stop=False):
            result = data.evaluation(*request)
    if result is not None:
        eval_view.show_result(result, data.mnist(request[2]))

st.header("3 · Accuracy over the run", divider="gray")
if meta is None:
    st.info("Accuracy over the run needs a .meta graph to freeze each checkpoint with; this run has none.")
elif not outputs:
    st.info("Pick the output nodes in step 1: every complete checkpoint of the run is frozen with them.")
elif st.button(f"Freeze and evaluate every checkpoint of {selection.run.name}", key="eval_history"):
    st.session_state["history_request"] = (selection.run.path, outputs)
request = st.session_state.get("history_request")
if request is not None and request[0] == selection.run.path:
    with errors_shown():
        history = data.accuracy_history(request[0], request[1], (("limit", None),), None)
        trends = data.trends(selection.run.path, False)
    eval_view.show_history(history, trends, selection.history)
