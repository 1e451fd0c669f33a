"""The Evaluate page's choices, kept in the URL so that a shared link reproduces the view.

Every widget the page shows is made here. The URL holds the output nodes (?freeze_outputs=…, repeated),
the outputs the sidebar's checkpoint was frozen with (?frozen=…), the graph evaluated (?eval_model=frozen,
run:NAME.pb or upload:HASH/NAME.pb), the options (?eval_device, eval_limit, eval_raw, eval_input,
eval_output, eval_mnist, eval_feeds, eval_labels, eval_metric), the limits when not the defaults
(?eval_time_limit, eval_memory_limit), whether those were evaluated (?evaluated=1) and the outputs
accuracy over the run was computed with (?eval_over_run=…). A link recomputes the results through
ui/data.py, whose caches make a repeat cheap. The page reads only inside the dashboard's roots: a typed
MNIST path elsewhere is refused, and a .pb in the run folder that links out of it is not offered.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode

import streamlit as st

from ckptlib import storage
from ckptlib.errors import CkptError
from ckptlib.evaluate.mnist import ENV_VAR as MNIST_ENV
from ckptlib.evaluate.types import DEFAULT_MEMORY_MB, DEFAULT_TIME_S, FreezeResult
from ckptlib.runs.types import CheckpointEntry, RunHistory
from ui import backend, data
from ui.config import allowed_roots, inside
from ui.pickers import reset_when_changed, text_param
from ui.widgets import Selection, url_picker

OUTPUTS, FROZEN, MODEL, EVALUATED, OVER_RUN = "freeze_outputs", "frozen", "eval_model", "evaluated", "eval_over_run"
TEXTS = (("eval_input", "Input tensor (blank: automatic)", {}),
         ("eval_output", "Output tensor (blank: automatic)", {}),
         ("eval_mnist", "MNIST folder or mnist.npz (blank: default)", {}),
         ("eval_feeds", "Feeds, NAME=VALUE per line", {"placeholder": "keep_prob=1.0"}),
         ("eval_labels", "Labels placeholder (optional)", {}),
         ("eval_metric", "Graph's own accuracy tensor (optional)", {}))
CHART_KEY, GOTO_DIFF = "eval_accuracy_chart", "_eval_goto_diff"
SIGNATURE = "sig"  # a SavedModel's signature to evaluate
_UPLOAD_ID = re.compile(r"upload:([0-9a-f]{32})/([^/\\]+\.pb)")


def follow_sidebar(selection: Selection) -> None:
    """Forget what belongs to another run or checkpoint (a shared link's first run keeps everything)."""
    reset_when_changed("_eval_run", selection.run.path, (OUTPUTS, FROZEN, MODEL, EVALUATED, OVER_RUN, SIGNATURE))
    entry = selection.checkpoint
    reset_when_changed("_eval_ckpt", entry.prefix if entry else "", (FROZEN,))


def output_picker(label: str, suggested: list[str], others: list[str]) -> tuple[str, ...]:
    """The output nodes: the URL's or the session's choice where the graph still has them, else the best
    suggestion. Set through the session state every run: a multiselect keeps its old value when its options
    change, which dropped every choice (a blank picker) after switching run."""
    options, default = suggested + others, suggested[:1]
    wanted = st.session_state[OUTPUTS] if OUTPUTS in st.session_state else st.query_params.get_all(OUTPUTS)
    kept = [name for name in wanted if name in options]
    st.session_state[OUTPUTS] = kept if kept or (OUTPUTS in st.session_state and not wanted) else default
    chosen = st.multiselect(label, options, key=OUTPUTS)
    if chosen == default:
        st.query_params.pop(OUTPUTS, None)
    else:
        st.query_params[OUTPUTS] = chosen
    return tuple(chosen)


def other_complete(history: RunHistory, entry: CheckpointEntry | None) -> CheckpointEntry | None:
    """The newest complete checkpoint other than `entry`, one the state file keeps before an orphan (often another
    run's); None when the run has no other one."""
    others = [e for e in reversed(history.checkpoints) if e.complete and e != entry]
    return next((e for e in others if e.status != "orphan"), others[0] if others else None)


def freeze_clicked(entry: CheckpointEntry, outputs: tuple[str, ...]) -> None:
    frozen = data.freeze(entry.prefix, outputs)
    st.session_state["frozen"] = frozen
    st.query_params[FROZEN] = list(frozen.outputs)  # before frozen_graph reads it: the link's is older
    st.session_state["pick_frozen"] = True  # evaluate what was just frozen, not the previous pick


def frozen_graph(entry: CheckpointEntry | None) -> FreezeResult | None:
    """The graph frozen from the sidebar's checkpoint: this session's, or the link's frozen again (cached)."""
    frozen = st.session_state.get("frozen")
    linked = tuple(st.query_params.get_all(FROZEN))
    if entry is None or not entry.complete:
        frozen = None
    elif linked and (frozen is None or frozen.checkpoint != entry.prefix or frozen.outputs != linked):
        try:
            frozen = data.freeze(entry.prefix, linked)
            st.session_state["frozen"] = frozen
        except (CkptError, OSError) as exc:
            st.error(f"The link's frozen graph could not be made again: {exc}", icon=":material/error:")
            frozen = None
    if frozen is not None and frozen.checkpoint != entry.prefix:
        frozen = None  # frozen from another checkpoint: not offered under this one
    if frozen is None:
        st.query_params.pop(FROZEN, None)
    else:
        st.query_params[FROZEN] = list(frozen.outputs)
    return frozen


def graph_picker(run_dir: str, frozen: FreezeResult | None) -> str | None:
    """The frozen graph to evaluate (its path), by an id that the URL keeps; the .pb uploader, its
    alternative, is drawn below it (the picker, which needs the upload, fills a container made before)."""
    above = st.container()
    upload = st.file_uploader("…or upload a frozen GraphDef (.pb)", type=["pb"])  # SavedModels: from the run folder
    with above:
        return _pick_graph(run_dir, frozen, upload)


def _pick_graph(run_dir: str, frozen: FreezeResult | None, upload) -> str | None:
    found = {}
    for label, path in data.frozen_candidates(run_dir, frozen).items():
        if _stays_in(path, run_dir):
            found[label] = path
        else:
            st.caption(f"Not offered: {os.path.basename(path)} is a link to a file outside the run folder.")
    options = {}  # id -> (label, path)
    uploaded = data.store_upload(upload.name, upload.getvalue()) if upload is not None else None
    linked = _UPLOAD_ID.fullmatch(st.session_state.get(MODEL, st.query_params.get(MODEL, "")))
    if uploaded is None and linked:  # a link to a graph uploaded earlier on this server
        uploaded = data.stored_upload(*linked.groups())
    if uploaded is not None:
        ident = f"upload:{os.path.basename(os.path.dirname(uploaded))}/{os.path.basename(uploaded)}"
        options[ident] = (f"uploaded: {os.path.basename(uploaded)}", uploaded)
        if st.session_state.get("_eval_upload") != ident and upload is not None:
            st.session_state["pick_upload"] = ident  # a new upload: evaluate it
        st.session_state["_eval_upload"] = ident
    for label, path in found.items():
        ident = "frozen" if frozen is not None and path == frozen.output else f"run:{os.path.basename(path)}"
        options[ident] = (label, path)
    if not options:
        st.query_params.pop(MODEL, None)
        return None
    if st.session_state.pop("pick_frozen", False) and "frozen" in options:
        st.session_state[MODEL] = "frozen"  # through the session state, so the browser's selectbox follows
    elif st.session_state.get("pick_upload") in options:
        st.session_state[MODEL] = st.session_state.pop("pick_upload")
    chosen = url_picker(st.selectbox, "Graph to evaluate", list(options), MODEL, format_func=lambda i: options[i][0])
    return options[chosen][1]


def _stays_in(path: str, run_dir: str) -> bool:
    """False for a symlink in the run folder that points out of it: the page reads only inside its roots."""
    if storage.is_url(path) or not os.path.islink(path):
        return True
    return inside(path, (os.path.realpath(run_dir),))


def _int_param(key: str, low: int, high: int, default: int | None = None) -> None:
    if key not in st.session_state:
        text = st.query_params.get(key, "")
        fallback = low if default is None else default
        st.session_state[key] = min(max(int(text), low), high) if text.isdigit() else fallback


def _url_number(key: str, value: int, default: int) -> int:
    if value == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(value)
    return value


def limits_form() -> tuple[int, int]:
    """(seconds per graph, megabytes): the bounds of the child process that runs the graph (URL-kept)."""
    with st.expander("Limits"):
        c1, c2 = st.columns(2)
        _int_param("eval_time_limit", 1, 3600, DEFAULT_TIME_S)
        seconds = int(c1.number_input("Time limit per graph (s)", 1, 3600, step=30, key="eval_time_limit",
                                      help="The graph is stopped after this long (an endless loop, a huge model)"))
        _int_param("eval_memory_limit", 256, 1 << 20, DEFAULT_MEMORY_MB)
        megabytes = int(c2.number_input("Memory limit (MB)", 256, 1 << 20, step=1024, key="eval_memory_limit",
                                        help="Graphs that need more are refused, or stopped when they try"))
    return (_url_number("eval_time_limit", seconds, DEFAULT_TIME_S),
            _url_number("eval_memory_limit", megabytes, DEFAULT_MEMORY_MB))


def current_limits() -> tuple[tuple[str, int], ...]:
    """The limits chosen in the form (or the link's, or the defaults), as option pairs."""
    seconds = st.session_state.get("eval_time_limit", DEFAULT_TIME_S)
    megabytes = st.session_state.get("eval_memory_limit", DEFAULT_MEMORY_MB)
    return (("memory_limit", int(megabytes)), ("time_limit", int(seconds)))


def mnist_problem(source: str | None) -> str | None:
    """Why the page will not read the MNIST path typed in, or None: only inside the dashboard's roots and
    $CKPTLIB_MNIST_DIR. The same words whether the path exists or not, so the box cannot probe the server."""
    if not source:
        return None
    allowed = allowed_roots()
    if os.environ.get(MNIST_ENV):
        allowed += (os.path.realpath(os.path.expanduser(os.environ[MNIST_ENV])),)
    if inside(os.path.expanduser(source), allowed):
        return None
    return (f"The MNIST path '{source}' is outside the folders this dashboard may read (its roots and "
            f"${MNIST_ENV}): put the test set under a root, or leave the box blank for the default.")


def options_form() -> tuple[tuple, str | None, str, str | None]:
    """The evaluation options (URL-kept): (sorted option pairs without feeds, MNIST source, feeds text, why
    the MNIST source is refused or None)."""
    with st.expander("Options"):
        c1, c2, c3 = st.columns(3)
        device = url_picker(c1.selectbox, "Device", ["auto", "cpu", "gpu"], "eval_device",
                            help="auto: the first GPU TensorFlow sees, else the CPU")
        _int_param("eval_limit", 0, 10000)
        limit = int(c2.number_input("Images (0 = all 10,000)", 0, 10000, step=1000, key="eval_limit"))
        if limit:
            st.query_params["eval_limit"] = str(limit)
        else:
            st.query_params.pop("eval_limit", None)
        if "eval_raw" not in st.session_state:
            st.session_state["eval_raw"] = st.query_params.get("eval_raw") == "1"
        raw = c3.checkbox("Raw 0–255 pixels", key="eval_raw", help="Default: pixels scaled to [0, 1]")
        if raw:
            st.query_params["eval_raw"] = "1"
        else:
            st.query_params.pop("eval_raw", None)
        columns = st.columns(3) + st.columns(3)
        texts = {key: text_param(col.text_area if key == "eval_feeds" else col.text_input, label, key, **kwargs)
                 for col, (key, label, kwargs) in zip(columns, TEXTS)}
    seconds, megabytes = limits_form()
    options = {"device": device, "limit": limit or None, "raw_pixels": raw, "input_tensor": texts["eval_input"] or None,
               "output_tensor": texts["eval_output"] or None, "labels": texts["eval_labels"] or None,
               "metric": texts["eval_metric"] or None, "time_limit": seconds, "memory_limit": megabytes}
    source = texts["eval_mnist"] or None
    return tuple(sorted(options.items())), source, texts["eval_feeds"], mnist_problem(source)


def evaluation_request(model: str, options: tuple, source: str | None, feed_text: str, clicked: bool):
    """The evaluation to show: the one asked for by the button or by the link (?evaluated=1), when it was
    asked with the options shown now; None otherwise (then the URL drops ?evaluated)."""
    try:
        feeds = backend.parse_feeds([line for line in feed_text.splitlines() if line.strip()])
    except CkptError as exc:
        if clicked or st.query_params.get(EVALUATED):
            st.error(str(exc), icon=":material/error:")
        st.query_params.pop(EVALUATED, None)
        return None
    request = (model, tuple(sorted(dict(options, feeds=tuple(sorted(feeds.items())) or None).items())), source)
    if clicked or ("eval_done" not in st.session_state and st.query_params.get(EVALUATED) == "1"):
        st.session_state["eval_done"] = request
    if st.session_state.get("eval_done") != request:
        if st.session_state.get("eval_done", (None,))[0] == model:
            st.caption("The options changed since the last evaluation: press Evaluate to run with these.")
        st.query_params.pop(EVALUATED, None)
        return None
    st.query_params[EVALUATED] = "1"
    return request


def over_run_request(run_dir: str, outputs: tuple[str, ...], clicked: bool) -> tuple[str, ...] | None:
    """The outputs accuracy over the run was computed with (the button's, or the link's), or None."""
    if clicked:
        st.session_state["history_request"] = (run_dir, outputs)
    elif "history_request" not in st.session_state and st.query_params.get_all(OVER_RUN):
        st.session_state["history_request"] = (run_dir, tuple(st.query_params.get_all(OVER_RUN)))
    request = st.session_state.get("history_request")
    if request is None or request[0] != run_dir:
        st.query_params.pop(OVER_RUN, None)
        return None
    st.query_params[OVER_RUN] = list(request[1])
    return request[1]


def diff_params(selection: Selection, name: str) -> dict[str, str] | None:
    """The Diff page's URL for checkpoint `name` against the complete one before it (None for the first)."""
    complete = [e.name for e in selection.history.checkpoints if e.complete]
    if name not in complete or complete.index(name) == 0:
        return None
    run = selection.run.name
    return {"root": selection.root, "run": run, "ckpt": name, "a_run": run, "a_ckpt": complete[complete.index(name) - 1],
            "b_run": run, "b_ckpt": name}


def diff_link(params: dict[str, str] | None) -> str | None:
    """A link relative to this page (so it works under a base URL path) that opens that Diff."""
    return None if params is None else "diff?" + urlencode(params)


def open_chosen_diff() -> None:
    """on_select of the accuracy chart: the sidebar moves to the clicked checkpoint (only a callback may
    change its widget), and the page then switches to the Diff against the previous checkpoint."""
    points = st.session_state[CHART_KEY]["selection"]["points"]
    params = points[0].get("customdata") if points else None
    if isinstance(params, (list, tuple)):
        params = params[0]
    if isinstance(params, str) and params.startswith("diff?"):
        query = dict(parse_qsl(params[len("diff?"):]))
        st.session_state["ckpt"] = query["ckpt"]
        st.session_state[GOTO_DIFF] = query


def switch_to_chosen_diff() -> None:
    """Go to the Diff picked on the chart in the previous run, if any (call first thing on the page)."""
    query = st.session_state.pop(GOTO_DIFF, None)
    if query:
        st.switch_page("pages/diff.py", query_params=query)
