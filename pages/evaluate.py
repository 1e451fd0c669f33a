"""Evaluate page: freeze a checkpoint, run a frozen graph on MNIST, accuracy over the run's steps.

Every choice lives in the URL (ui/evaluate_state.py): a shared link reproduces the view, its results
recomputed through the caches.
"""

import os

import streamlit as st

from ui import data, eval_view
from ui import evaluate_state as state
from ui.review import Target, open_review
from ui.review_forms import notes_panel
from ui.widgets import current, errors_shown, url_picker

state.switch_to_chosen_diff()  # a point clicked on the accuracy chart in the previous run
selection = current()
st.title("Evaluate")
review = open_review()
if selection.run is None:
    st.info("Choose a run in the sidebar.")
    st.stop()
entry = selection.checkpoint
state.follow_sidebar(selection)

st.header("1 · Freeze a checkpoint", divider="gray")
outputs = ()
frozen = None
# The output nodes come from the chosen checkpoint's .meta, else from the newest .meta of the run
# (one training graph per run), so accuracy over the run works even when the chosen one is broken.
run_meta = next((e.prefix + ".meta" for e in reversed(selection.history.checkpoints) if e.has_meta), None)
meta = entry.prefix + ".meta" if entry and entry.has_meta else run_meta
if meta is None:
    st.info(eval_view.no_graph_note(selection))
else:
    with errors_shown():
        graph = data.meta_graph(meta, True)
    suggested = [o.name for o in graph.suggested_outputs]
    outputs = state.output_picker("Output nodes (suggested, best first)", suggested,
                                  [o.name for o in graph.ops if o.name not in suggested])
    can_freeze = entry is not None and entry.complete
    if not can_freeze:
        other = state.other_complete(selection.history, entry)
        chosen = f"The checkpoint chosen in the sidebar ({entry.name})" if entry else "No checkpoint is chosen and it"
        if other is not None:
            st.warning(f"{chosen} is incomplete or missing: choose another one to freeze it, e.g. {other.name}.")
        else:
            st.warning(f"{chosen} is incomplete or missing, and run {selection.run.name} has no complete checkpoint "
                       "to freeze.")
    if st.button("Freeze", type="primary", disabled=not (outputs and can_freeze), key="freeze"):
        with errors_shown(stop=False), st.spinner("Freezing…"):
            state.freeze_clicked(entry, outputs)
    frozen = state.frozen_graph(entry)
    if frozen is not None:
        st.success(f"Froze {os.path.basename(frozen.checkpoint)}: {frozen.num_nodes} nodes, {frozen.bytes:,} bytes, "
                   f"{frozen.num_variables} variables turned into constants; outputs {', '.join(frozen.outputs)}."
                   + (f" Cleared device pins: {', '.join(frozen.cleared_devices)}." if frozen.cleared_devices else ""))
        with open(frozen.output, "rb") as handle:
            st.download_button("Download the .pb", handle.read(), f"{os.path.basename(frozen.checkpoint)}.pb",
                               "application/octet-stream")

st.header("2 · Evaluate a frozen graph or a SavedModel on MNIST", divider="gray")
model = state.graph_picker(selection.run.path, frozen)
if model is None:
    st.info("Freeze a checkpoint above, or upload a .pb." if meta is not None else
            "Upload a frozen .pb here, or choose a SavedModel export (a folder with saved_model.pb) as the run in "
            "the sidebar: its signatures can be evaluated without a .meta.")
else:
    options, mnist_source, feed_text, refused = state.options_form()
    if os.path.isdir(model):  # a SavedModel: run one of its signatures (input and output come from it)
        with errors_shown():
            keys = data.signatures(model)
        signature = url_picker(st.selectbox, "Signature", list(keys), state.SIGNATURE)
        options = tuple(sorted(dict(options, signature=signature).items()))
    else:
        st.query_params.pop(state.SIGNATURE, None)  # a frozen .pb has no signatures: a SavedModel's lapses
    clicked = st.button("Evaluate", type="primary", key="evaluate")
    request = state.evaluation_request(model, options, mnist_source, feed_text, clicked)
    if refused:
        st.error(refused, icon=":material/error:")
        request = None
    result = None
    if request is not None:
        with errors_shown(stop=False):
            result = data.evaluation(*request)
    if result is not None:
        eval_view.show_result(result, data.mnist(request[2]))

st.header("3 · Accuracy over the run", divider="gray")
clicked = False
if meta is None:
    st.info("Accuracy over the run needs a .meta graph to freeze each checkpoint with; this run has none.")
elif not outputs:
    st.info("Pick the output nodes in step 1: every complete checkpoint of the run is frozen with them.")
else:
    clicked = st.button(f"Freeze and evaluate every checkpoint of {selection.run.name}", key="eval_history")
over_run = state.over_run_request(selection.run.path, outputs, clicked) if meta is not None else None
if over_run is not None:
    with errors_shown():
        history = data.accuracy_history(selection.run.path, over_run, (("limit", None),) + state.current_limits(), None)
        trends = data.trends(selection.run.path, False)
    eval_view.show_history(history, trends, selection)
if entry is not None:
    notes_panel(review, "evaluate", "evaluate", Target(selection.history.path, checkpoint=entry.prefix),
                f"Notes on {entry.name} (its accuracy, whether to ship it)")
