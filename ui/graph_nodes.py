"""The Graph page's node navigation and device pins: find a node by part of its name (?gfind=…, the chosen
node in ?op=…), a node_def whose inputs and consumers are buttons that show that node instead, the op table
(filters kept in the URL, a device column, ?gpinned=1 for the pinned ops only) and the device-pin notice
naming the ops that carry each pin."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from ckptlib.graph.scan import node_name
from ckptlib.graph.types import GraphOp, MetaGraphInfo, NodeDefInfo
from ckptlib.runs.types import CheckpointEntry, RunHistory
from ui import data, graph_data
from ui.live import url_toggle
from ui.pickers import text_param, url_multiselect
from ui.review import Review, Target
from ui.review_forms import notes_panel
from ui.widgets import errors_shown

NODE_KEY = "op"  # the Node tab's node; ?op= in the URL
FIND_KEY = "gfind"  # the search box; ?gfind=
PINNED_KEY = "gpinned"  # the op table shows pinned ops only; ?gpinned=1
MAX_HITS = 40  # search results drawn as buttons
MAX_LINKS = 40  # inputs or consumers drawn as buttons
NAMED_OPS = 6  # pinned ops named in the notice, per device


def find_nodes(names: Sequence[str], query: str) -> list[str]:
    """The names containing `query` (case-insensitive), best first: the exact name, then the names whose last
    part is it, then those that start with it, then those with a part that starts with it, then the rest;
    each group in graph order."""
    wanted = query.strip().lower()
    if not wanted:
        return []
    groups: tuple[list[str], ...] = ([], [], [], [], [])
    for name in names:
        low = name.lower()
        if wanted not in low:
            continue
        rank = (0 if low == wanted else 1 if low.endswith(f"/{wanted}") else 2 if low.startswith(wanted)
                else 3 if f"/{wanted}" in low else 4)
        groups[rank].append(name)
    return [name for group in groups for name in group]


def show_node(key: str, name: str) -> None:
    """A button's callback (it runs before the page): `name` becomes the node shown under `key`."""
    st.session_state[key] = name
    st.query_params[key] = name


def node_links(label: str, refs: Sequence[str], key: str, on_pick: Callable[[str], None]) -> None:
    """`refs` ('name', 'name:1', '^name' for a control dependency) as buttons that show that node."""
    st.markdown(f"{label} ({len(refs)}, click one to show it)" if refs else f"{label}: none")
    if not refs:
        return
    with st.container(horizontal=True, gap="small"):
        for i, ref in enumerate(refs[:MAX_LINKS]):
            target = node_name(ref)
            st.button(f"`{ref}`", key=f"{key}:{i}", type="tertiary", on_click=on_pick, args=(target,),
                      help=f"Show {target}" + (" (a control dependency)" if ref.startswith("^") else ""))
    if len(refs) > MAX_LINKS:
        st.caption(f"… and {len(refs) - MAX_LINKS} more.")


def node_def_view(node: NodeDefInfo, key: str, on_pick: Callable[[str], None]) -> None:
    """The node's name, type and device, its inputs and consumers (each a button calling `on_pick` with
    that node's name), then its attributes."""
    st.markdown(f"**{node.name}** · `{node.type}` · device `{node.device or '(none)'}`")
    left, right = st.columns(2)
    with left:
        node_links("Inputs", node.inputs, f"{key}_in", on_pick)
    with right:
        node_links("Consumers", node.consumers, f"{key}_out", on_pick)
    st.json(dict(node.attrs))


def chosen_node(names: Sequence[str], default: str | None, key: str = NODE_KEY) -> str | None:
    """The node kept under `key` (this session's, else the URL's) when the graph has it, else `default`;
    written back to the URL."""
    known = set(names)
    wanted = st.session_state.get(key, st.query_params.get(key))
    if wanted not in known:
        wanted = default if default in known else (names[0] if names else None)
    if wanted is None:
        st.session_state.pop(key, None)
        st.query_params.pop(key, None)
        return None
    st.session_state[key] = wanted
    st.query_params[key] = wanted
    return wanted


def node_search(ops: Sequence[GraphOp], key: str = NODE_KEY) -> None:
    """A text box (?gfind=…) and the ops whose names contain its text, as buttons that show that op."""
    query = text_param(st.text_input, "Find a node", FIND_KEY, placeholder="part of a name: conv1/, logits, Relu…",
                       help="Ops whose name contains this text (any case); click one to show its node_def.")
    if not query.strip():
        st.caption(f"{len(ops)} operations: type part of a name to find one, or follow an input or a consumer below.")
        return
    types = {o.name: o.type for o in ops}
    hits = find_nodes(list(types), query)
    more = f"; the first {MAX_HITS} are shown, type more of the name" if len(hits) > MAX_HITS else ""
    st.caption(f"{len(hits)} of {len(ops)} operations match '{query.strip()}'{more}.")
    with st.container(horizontal=True, gap="small"):
        for name in hits[:MAX_HITS]:
            st.button(f"`{name}` · {types[name]}", key=f"{FIND_KEY}:{name}", type="tertiary",
                      on_click=show_node, args=(key, name))


def node_tab(info: MetaGraphInfo, path: str, clear_devices: bool) -> None:
    """The Node tab: the search, then the node_def of the chosen op (?op=…, the best suggested output at
    first) with clickable inputs and consumers."""
    names = [o.name for o in info.ops]
    node_search(info.ops)
    default = info.suggested_outputs[0].name if info.suggested_outputs else None
    op = chosen_node(names, default)
    if op is None:
        st.caption("This graph has no operations.")
        return
    with errors_shown():
        node = graph_data.node(path, clear_devices, op)
    node_def_view(node, "gnode_tab", functools.partial(show_node, NODE_KEY))


# --- device pins --------------------------------------------------------------------------------------


def pinned_ops(ops: Sequence[GraphOp]) -> dict[str, list[str]]:
    """Device pin -> the ops carrying it, in graph order (pins sorted by name)."""
    found: dict[str, list[str]] = {}
    for op in ops:
        if op.device:
            found.setdefault(op.device, []).append(op.name)
    return dict(sorted(found.items()))


def _on_ops(device: str, names: list[str]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:NAMED_OPS])
    more = f" and {len(names) - NAMED_OPS} more" if len(names) > NAMED_OPS else ""
    return f"`{device}` on {len(names)} op{'s' if len(names) != 1 else ''} ({shown}{more})"


def device_notice(info: MetaGraphInfo, path: str) -> None:
    """Which device pins the graph carries and on which ops; with clear_devices, which were dropped."""
    if info.devices:
        pins = pinned_ops(info.ops)
    elif info.cleared_devices:
        with errors_shown(stop=False):
            pins = pinned_ops(data.meta_graph(path, False).ops)
            st.info(f"Cleared device pins: {'; '.join(_on_ops(d, n) for d, n in pins.items())}.")
        return
    else:
        return
    listed = "; ".join(_on_ops(d, n) for d, n in pins.items())
    where = "The Operations tab lists them all (its 'Only pinned ops' switch and device column)."
    if any("GPU" in d.upper() or "TPU" in d.upper() for d in pins):
        st.warning(f"Device pins: {listed}. A graph pinned to an accelerator fails on a machine without one unless "
                   f"it is imported with clear_devices=True (toggle above) or soft placement. {where}")
    else:
        st.info(f"Device pins: {listed}. CPU only: harmless on any machine. {where}")


def ops_tab(info: MetaGraphInfo) -> None:
    """The op table, filtered by type, by name and to the pinned ops, every filter kept in the URL."""
    types = [t for t, _ in info.op_type_counts]
    if "op_types" in st.session_state:  # another graph: keep only the types it has
        st.session_state["op_types"] = [t for t in st.session_state["op_types"] if t in types]
    f1, f2, f3 = st.columns([2, 2, 1])
    wanted = url_multiselect(f1.multiselect, "Op types", types, "op_types", default=[])
    scope = text_param(f2.text_input, "Name contains (scope)", "op_scope", placeholder="e.g. conv1/")
    with f3:
        pinned = url_toggle("Only pinned ops", PINNED_KEY, "Only the ops that carry a device pin.")
    ops = [o for o in info.ops if (not wanted or o.type in wanted) and scope in o.name and (o.device or not pinned)]
    pins = sum(1 for o in info.ops if o.device)
    st.caption(f"{len(ops)} of {info.num_ops} operations; {pins} with a device pin"
               + (" (cleared: clear_devices is on)" if info.cleared_devices else "") + ".")
    st.dataframe(pd.DataFrame({"name": [o.name for o in ops], "type": [o.type for o in ops],
                               "device": [o.device for o in ops], "inputs": [", ".join(o.inputs) for o in ops]},
                              columns=["name", "type", "device", "inputs"]),
                 hide_index=True, width="stretch", height=420)


def signatures_view(info: MetaGraphInfo) -> None:
    """A meta graph's signatures (the loader's own `__…` ones left out) and, for a SavedModel, its tag sets."""
    if len(info.meta_graphs) > 1:
        st.caption("Meta graphs (tag sets): " + "; ".join(", ".join(tags) or "(none)" for tags in info.meta_graphs))
    for sig in [sig for sig in info.signatures if not sig.key.startswith("__")]:
        st.markdown(f"Signature **{sig.key}** ({sig.method_name})")
        sides = (("input", sig.inputs), ("output", sig.outputs))
        st.dataframe(pd.DataFrame([{"side": side, "key": t.key, "tensor": t.name, "dtype": t.dtype,
                                    "shape": str(t.shape)} for side, ts in sides for t in ts]),
                     hide_index=True, width="stretch")


def graph_notes(review: Review, history: RunHistory, checkpoint: CheckpointEntry | None, chosen: str) -> None:
    """The notes on the checkpoint whose graph is shown (the chosen .meta's, else the sidebar's) and a form adding one."""
    by_name = {e.name: e for e in history.checkpoints}
    entry = by_name.get(chosen.removesuffix(".meta")) if chosen.endswith(".meta") else None
    entry = entry or checkpoint
    if entry is not None:
        notes_panel(review, "graph", "graph", Target(history.path, checkpoint=entry.prefix),
                    f"Notes on {entry.name} and its graph")
