"""The Graph page's compare mode: graph A (the page's) against graph B of this run or another, op by op; or
two library functions' bodies (?gfn=…&gfn_b=…), what a TF2 SavedModel's signatures really compute."""

from __future__ import annotations

import json
import os

import pandas as pd
import streamlit as st

from ckptlib.compare.mapping import parse_rule
from ckptlib.graph.graphdiff import graph_diff_doc
from ckptlib.graph.picture_types import DIFF_STATUSES, GraphDiff
from ckptlib.runs.types import RunSummary
from ui import data, graph_data
from ui.graph_picture import function_picker, picture_view
from ui.pickers import reset_when_changed, text_param
from ui.widgets import errors_shown, url_picker


def default_b(labels: list[str], label_a: str | None) -> str | None:
    """The graph B starts on: the one listed after A (the next .meta, then the .pb files), else the one before."""
    if label_a not in labels or len(labels) < 2:
        return labels[0] if labels else None
    at = labels.index(label_a)
    return labels[at + 1] if at + 1 < len(labels) else labels[at - 1]


def pick_b(runs: tuple[RunSummary, ...], run_a: RunSummary, label_a: str) -> str | None:
    """Run and graph file of B, kept in ?gb_run=…&gb_graph=…; None (with a note) when that run has none."""
    left, right = st.columns(2)
    by_name = {r.name: r for r in runs}
    run_name = url_picker(left.selectbox, "B: run", list(by_name), "gb_run", default=run_a.name)
    if run_name is None:
        return None
    graphs = graph_data.graph_files(by_name[run_name].path)
    if not graphs:
        right.warning(f"Run {run_name} has no .meta, .pb or SavedModel graph.")
        return None
    default = default_b(list(graphs), label_a) if run_name == run_a.name else list(graphs)[-1]
    label = url_picker(right.selectbox, "B: graph", list(graphs), "gb_graph", default=default)
    return graphs[label]


def matching_function(function_a: str | None, by_key_a: dict[str, str], by_key_b: dict[str, str],
                      names_b) -> str | None:
    """B's function to start on: A's own name when B has it, else the function behind the signature that
    A's is behind (exports name their functions apart: __inference___call___112 and …_420), else none."""
    if function_a is None or function_a in names_b:
        return function_a
    return next((by_key_b[k] for k, name in by_key_a.items() if name == function_a and k in by_key_b), None)


def pick_functions(path_a: str, path_b: str, clear_devices: bool) -> tuple[str | None, str | None]:
    """A's and B's function (None: the top-level graph), kept in ?gfn=…&gfn_b=…; B follows A's choice
    until it is picked by hand (and again after A's choice changes)."""
    left, right = st.columns(2)
    function_a = function_picker(left, path_a, clear_devices, "gfn", "A: function")
    reset_when_changed("gfn_b_follows", (path_b, function_a), ("gfn_b",))
    with errors_shown():
        names_b = {f.name for f in graph_data.functions(path_b, clear_devices)}
        default = matching_function(function_a, graph_data.signature_functions(path_a, clear_devices),
                                    graph_data.signature_functions(path_b, clear_devices), names_b)
    function_b = function_picker(right, path_b, clear_devices, "gfn_b", "B: function", default=default)
    return function_a, function_b


def mapping_inputs() -> tuple[tuple[tuple[str, str], ...], str]:
    """Rules (REGEX=REPL lines, applied to A's op names) and a prefix to strip, kept in ?gmap=…&gstrip=…"""
    with st.expander("Name mapping", expanded=bool(st.query_params.get("gmap") or st.query_params.get("gstrip"))):
        rules_text = text_param(st.text_area, "Rules applied to A's op names, one REGEX=REPL per line", "gmap",
                                placeholder="^resnet/=model/backbone/")
        strip = text_param(st.text_input, "Strip this prefix from A's op names", "gstrip")
    with errors_shown():
        rules = tuple(parse_rule(line.strip()) for line in rules_text.splitlines() if line.strip())
    return rules, strip


def changes_table(result: GraphDiff, statuses: list[str]) -> pd.DataFrame:
    rank = {status: i for i, status in enumerate(("changed", "added", "removed", "unchanged"))}
    rows = sorted((op for op in result.ops if op.status in statuses), key=lambda op: rank[op.status])
    return pd.DataFrame({
        "name": [op.name for op in rows],
        "status": [op.status for op in rows],
        "type A": [op.type_a for op in rows],
        "type B": [op.type_b for op in rows],
        "changes": ["; ".join(op.changes) for op in rows],
        "name A": [op.name_a for op in rows],
    }, columns=["name", "status", "type A", "type B", "changes", "name A"])


def scopes_table(result: GraphDiff) -> pd.DataFrame:
    return pd.DataFrame([{"scope": s.scope, **{k: getattr(s, k) for k in DIFF_STATUSES}} for s in result.scopes],
                        columns=["scope", *DIFF_STATUSES])


def compare_view(root: str, run_a: RunSummary, label_a: str, path_a: str, clear_devices: bool) -> None:
    """B's pickers, the functions, the mapping, the summary, the picture coloured by status, the changes
    and the scopes."""
    runs = data.runs(root)
    st.caption(f"A: **{label_a}** of run {run_a.name}. B: pick below (another graph of this run, or of another).")
    path_b = pick_b(runs, run_a, label_a)
    if path_b is None:
        st.stop()
    function_a, function_b = pick_functions(path_a, path_b, clear_devices)
    rules, strip = mapping_inputs()
    with st.spinner("Reading and comparing both graphs…"), errors_shown():
        result = graph_data.graph_diff(path_a, path_b, clear_devices, rules, strip, function_a, function_b)
    summary = result.summary
    for col, (status, count) in zip(st.columns(len(summary)), summary.items()):
        col.metric(status, count)
    if result.identical:
        st.success(f"The graphs are the same op for op ({os.path.basename(result.a)} and {os.path.basename(result.b)}).")
    side = url_picker(st.radio, "Picture of", ["B", "A"], "gside", horizontal=True,
                      help="B shows added and changed ops; A shows removed and changed ones.")
    drawn, function = (path_b, function_b) if side == "B" else (path_a, function_a)
    picture_view(drawn, clear_devices, function=function,
                 against=(path_a, path_b, clear_devices, rules, strip, side.lower(), function_a, function_b))

    new_pair = reset_when_changed("gdiff_pair", (path_a, path_b, rules, strip, function_a, function_b), ())
    if new_pair or "gdiff_status" not in st.session_state:
        st.session_state["gdiff_status"] = [s for s in DIFF_STATUSES if summary[s] and s != "unchanged"] or ["unchanged"]
    statuses = st.multiselect("Status", list(DIFF_STATUSES), key="gdiff_status")
    table = changes_table(result, statuses)
    st.markdown(f"**Ops** ({len(table)} of {len(result.ops)})")
    st.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * max(len(table), 2), 460))
    st.markdown("**Per top-level scope** (most differences first)")
    st.dataframe(scopes_table(result), hide_index=True, width="stretch",
                 height=min(38 + 35 * max(len(result.scopes), 2), 360))
    d1, d2, _ = st.columns([1, 1, 4])
    d1.download_button("CSV (rows shown)", table.to_csv(index=False), "graph-diff.csv", "text/csv")
    doc = graph_diff_doc(result)
    if function_a or function_b:  # as `graph-diff --function` writes it
        doc.update(function_a=function_a, function_b=function_b)
    d2.download_button("JSON (every op)", json.dumps(doc, indent=2), "graph-diff.json", "application/json")
