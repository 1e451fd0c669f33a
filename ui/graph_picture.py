"""The Graph page's picture: a GraphPicture drawn with plotly, clickable, its state kept in the URL.

A click on a scope box opens it (?expand=a,a/b), a click on an op box shows its node_def (?gnode=name); the
"Open scopes" chooser and the op selectbox do the same from the keyboard; an input or consumer of the node_def
shown is a button that shows that op and opens its scope. The side-ops toggle (?side=1)
shows training, saving, init and summary ops. Data flows left to right (x is the box's layer). The Function
chooser (?gfn=name, or a signature key such as serving_default) draws a library function's body instead of
the top-level graph: where a TF2 SavedModel keeps its real ops.
"""

from __future__ import annotations

import functools
import math

import plotly.graph_objects as go
import streamlit as st

from ckptlib.graph.picture_types import DIFF_STATUSES, Box, GraphPicture
from ckptlib.graph.scopetree import OVERFLOW  # the id suffix of a box holding what a cut-short scope left out
from ui import graph_data
from ui.graph_nodes import NODE_KEY as OP_KEY
from ui.graph_nodes import node_def_view, show_node
from ui.pickers import reset_when_changed
from ui.widgets import errors_shown

CHART_KEY = "graph_picture"
EXPAND_KEY = "graph_expand"  # the chooser's session key; ?expand= in the URL
SIDE_KEY = "graph_side_ops"  # ?side=1
NODE_KEY = "gnode"  # the op whose node_def is shown; ?gnode= in the URL
FUNCTION_KEY = "gfn"  # the function whose body is drawn; ?gfn= in the URL (absent: the top-level graph)
TOP = "(top-level graph)"  # the chooser's first option: no function name holds a space or a parenthesis

# One run's graph view: the graph, its ops, scopes and functions, the compare partner and the name mapping; the tab,
# the mode, clear_devices and the toggles are preferences that outlive a run switch.
RUN_KEYS = ("meta", OP_KEY, NODE_KEY, "collection", EXPAND_KEY, "expand", FUNCTION_KEY, "gfn_b", "gfn_b_follows",
            "gb_run", "gb_graph", "gmap", "gstrip", "gdiff_status")
STATUS_COLOURS = {"added": "#2e7d32", "removed": "#c62828", "changed": "#ef6c00", "unchanged": "#b0bec5"}
KIND_COLOURS = {"scope": "#64b5f6", "op": "#cfd8dc"}
PATH_COLOUR = "#ad1457"
EDGE_COLOUR = "#90a4ae"


# --- the figure -----------------------------------------------------------------------------------


def _size(box: Box) -> float:
    if box.kind == "op":
        return 11.0
    return min(42.0, 16.0 + 4.0 * math.log2(max(box.op_count, 1)))


def _hover(box: Box) -> str:
    if box.kind == "op":
        text = f"<b>{box.id}</b><br>{box.op_type}<br>click: its node_def"
    elif box.id.endswith(OVERFLOW):
        text = f"<b>{box.label}</b><br>in {box.scope or 'the top level'}: left out to stay under the box cap"
    else:
        text = f"<b>{box.scope}/</b><br>{box.op_count} ops<br>click: open it"
    if box.status:
        text += f"<br>status: {box.status}"
    return text + ("<br>on the inference path" if box.on_path else "")


def _label(box: Box, opened: frozenset[str]) -> str:
    """Box.label, with the open scope it sits in written in front (its last part), so that the boxes of an
    opened scope still say where they come from: 'fc1/dense (2)', '…/unit_1/conv1 (5)'."""
    inside = box.scope if box.kind == "op" else box.scope.rpartition("/")[0]
    if box.id.endswith(OVERFLOW) or not inside or inside not in opened:
        return box.label
    head, _, last = inside.rpartition("/")
    return f"{'…/' if head else ''}{last}/{box.label}"


def _edge_width(count: int) -> float:
    return float(min(8, 1 + round(1.5 * math.log2(max(count, 1)))))


def _group(box: Box, coloured: bool) -> str | None:
    """The legend entry a box is drawn under: its diff status (coloured), else its kind."""
    if coloured:
        return box.status if box.status in DIFF_STATUSES else None
    return box.kind


def picture_figure(picture: GraphPicture, coloured: bool = False) -> go.Figure:
    """Boxes as markers (squares: scopes, sized by their op count; circles: ops) labelled with Box.label
    (prefixed by the open scope they sit in), edges as lines as wide as their count, the inference path in one colour (boxes outlined, edges drawn
    over the rest); `coloured` fills the boxes by diff status, one legend entry per status."""
    where = {b.id: (b.x, b.y) for b in picture.boxes}
    opened = frozenset(picture.expanded)
    fig = go.Figure()
    groups: dict[tuple[bool, float], list] = {}
    for edge in picture.edges:
        if edge.src in where and edge.dst in where:
            groups.setdefault((edge.on_path, _edge_width(edge.count)), []).append(edge)
    path_in_legend = False
    for (on_path, width), edges in sorted(groups.items()):
        xs, ys = [], []
        for edge in edges:
            (x0, y0), (x1, y1) = where[edge.src], where[edge.dst]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        first = on_path and not path_in_legend
        path_in_legend = path_in_legend or on_path
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", legendgroup="path" if on_path else "edges",
                                 name="inference path" if on_path else "data edges", showlegend=first,
                                 line={"width": width, "color": PATH_COLOUR if on_path else EDGE_COLOUR},
                                 opacity=0.9 if on_path else 0.6))
    if coloured:
        order = [(s, s) for s in DIFF_STATUSES] + [(None, "no status")]
    else:
        order = [("scope", "scopes · click to open"), ("op", "ops · click for the node_def")]
    for value, name in order:
        boxes = [b for b in picture.boxes if _group(b, coloured) == value]
        if not boxes:
            continue
        colour = STATUS_COLOURS.get(value, "#eeeeee") if coloured else KIND_COLOURS[value]
        fig.add_trace(go.Scatter(
            x=[b.x for b in boxes], y=[b.y for b in boxes], mode="markers+text", name=f"{name} ({len(boxes)})",
            text=[_label(b, opened) for b in boxes], textposition="top center", textfont={"size": 10},
            customdata=[b.id for b in boxes], hovertext=[_hover(b) for b in boxes], hoverinfo="text",
            marker={"symbol": ["square" if b.kind == "scope" else "circle" for b in boxes],
                    "size": [_size(b) for b in boxes], "color": colour, "opacity": 1.0,
                    "line": {"width": [3 if b.on_path else 1 for b in boxes],
                             "color": [PATH_COLOUR if b.on_path else "#546e7a" for b in boxes]}},
            selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 1.0}}))
    rows = max((sum(1 for b in picture.boxes if b.x == x) for x in {b.x for b in picture.boxes}), default=1)
    fig.update_layout(
        height=int(min(1600, max(460, 140 + 70 * rows))), margin={"t": 30, "b": 10, "l": 10, "r": 10},
        xaxis={"visible": False}, yaxis={"visible": False, "autorange": "reversed"}, dragmode="pan",
        hovermode="closest", legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        plot_bgcolor="rgba(0,0,0,0)")
    return fig


# --- URL-kept state and the click ------------------------------------------------------------------


def picked(points) -> tuple[str, str] | None:
    """('scope', path) or ('op', name) for the box a selection event points at; None for an edge, an
    overflow box or nothing."""
    for point in points or ():
        box_id = point.get("customdata")
        if isinstance(box_id, (list, tuple)):
            box_id = box_id[0] if box_id else None
        if not isinstance(box_id, str) or box_id.endswith(OVERFLOW):
            continue
        return ("scope", box_id[:-1]) if box_id.endswith("/") else ("op", box_id)
    return None


def _on_pick() -> None:
    """The chart's on_select callback: runs before the page, so it may set the chooser's value."""
    state = st.session_state.get(CHART_KEY) or {}
    hit = picked((state.get("selection") or {}).get("points"))
    if hit is None:
        return
    kind, name = hit
    if kind == "scope":
        _open(name)
    else:
        show_node(NODE_KEY, name)


def _open(scope: str) -> None:
    opened = list(st.session_state.get(EXPAND_KEY) or _url_expanded())
    if scope not in opened:
        opened.append(scope)
    st.session_state[EXPAND_KEY] = opened
    st.query_params["expand"] = ",".join(opened)


def _reveal(scopes: frozenset[str], name: str) -> None:
    """An input or consumer button's callback: show that op's node_def and open the scope it sits in."""
    show_node(NODE_KEY, name)
    home = name if name in scopes else name.rpartition("/")[0]
    if home in scopes:
        _open(home)


def _url_expanded() -> list[str]:
    return [s for s in st.query_params.get("expand", "").split(",") if s]


def scope_chooser(column, scopes: tuple[tuple[str, int], ...]) -> list[str]:
    """The open scopes, a multiselect kept in ?expand=a,b (the keyboard way to open or close a scope)."""
    counts = dict(scopes)
    wanted = st.session_state[EXPAND_KEY] if EXPAND_KEY in st.session_state else _url_expanded()
    usable = [s for s in wanted if s in counts]
    if st.session_state.get(EXPAND_KEY) != usable:
        st.session_state[EXPAND_KEY] = usable  # another graph: keep only the scopes it has
    value = column.multiselect("Open scopes", list(counts), key=EXPAND_KEY, placeholder="click a square, or pick here",
                               format_func=lambda s: f"{s} ({counts[s]} ops)")
    if value:
        st.query_params["expand"] = ",".join(value)
    else:
        st.query_params.pop("expand", None)
    return value


def side_ops_toggle(column) -> bool:
    if SIDE_KEY not in st.session_state:
        st.session_state[SIDE_KEY] = st.query_params.get("side") == "1"
    value = column.toggle("Show training/saving/init/summary ops", key=SIDE_KEY)
    if value:
        st.query_params["side"] = "1"
    else:
        st.query_params.pop("side", None)
    return value


def _op_picker(picture: GraphPicture, known) -> str | None:
    """The op whose node_def is shown (?gnode=): a drawn op, or one reached through an input or consumer."""
    ops = sorted(b.id for b in picture.boxes if b.kind == "op")
    wanted = st.session_state.get(NODE_KEY, st.query_params.get(NODE_KEY))
    if wanted not in known:
        wanted = None
    st.session_state[NODE_KEY] = wanted
    value = st.selectbox("Op whose node_def to show (or click a circle)", ops if wanted in (None, *ops) else
                         sorted([*ops, wanted]), key=NODE_KEY, index=None, placeholder="no op chosen")
    if value:
        st.query_params[NODE_KEY] = value
    else:
        st.query_params.pop(NODE_KEY, None)
    return value


def function_picker(column, path: str, clear_devices: bool, key: str = FUNCTION_KEY, label: str = "Function",
                    default: str | None = None) -> str | None:
    """The library function whose body to draw (None: the top-level graph), a selectbox kept in ?{key}=…
    listing the signatures' functions first; nothing is shown for a graph without a function library. A
    signature key in the URL means the function behind it; an unknown name in it is reported (one error
    line naming the file and close names) and the top-level graph shown."""
    with errors_shown():
        infos = {f.name: f for f in graph_data.functions(path, clear_devices)}
    if not infos:
        st.session_state.pop(key, None)
        st.query_params.pop(key, None)
        return None
    fallback = default if default in infos else TOP
    from_url = key not in st.session_state
    wanted = (st.query_params.get(key) if from_url else st.session_state[key]) or fallback
    if wanted != TOP and wanted not in infos:
        behind = graph_data.signature_functions(path, clear_devices).get(wanted)
        if behind in infos:
            wanted = behind
        else:
            if from_url:  # a link naming a function this graph lacks: say so, draw the top-level graph
                with errors_shown(stop=False):
                    graph_data.loaded(path, clear_devices, wanted)
            wanted = fallback
    st.session_state[key] = wanted
    value = column.selectbox(label, [TOP, *infos], key=key, help="Draw a library function's body: a TF2 "
                             "SavedModel's ops live in the functions its signatures call.",
                             format_func=lambda n: n if n == TOP else f"{infos[n].label} · {infos[n].num_nodes} node_defs")
    if value == TOP:
        st.query_params.pop(key, None)
        return None
    st.query_params[key] = value
    return value


# --- the view -------------------------------------------------------------------------------------


def follow_run(run_dir: str) -> None:
    """Forget the previous run's graph view (RUN_KEYS, session and URL) when the sidebar's run changes; the first
    run of a session only records the run, so a shared link keeps every parameter."""
    reset_when_changed("_graph_run", run_dir, RUN_KEYS)


def picture_view(path: str, clear_devices: bool, against: tuple | None = None,
                 function: str | None = None) -> GraphPicture:
    """Chooser, toggle, the picture and the node_def of the op clicked, of the graph at `path` or of its
    `function`'s body. `against` (see graph_data.picture) colours the boxes by a diff's statuses."""
    c1, c2 = st.columns([2, 1])
    side = side_ops_toggle(c2)
    with errors_shown():
        scopes = graph_data.scopes(path, clear_devices, side, function)
    expanded = scope_chooser(c1, scopes)
    with errors_shown():
        picture = graph_data.picture(path, clear_devices, tuple(expanded), side, against, function)
    notes = [f"{len(picture.boxes)} boxes, {len(picture.edges)} edges; data flows left to right"]
    if picture.hidden_ops:
        notes.append(f"{picture.hidden_ops} training/saving/init/summary ops hidden (toggle above to show them)")
    st.caption("; ".join(notes) + ".")
    if picture.capped_note:
        st.info(f"Boxes are capped at {graph_data.MAX_BOXES}: {picture.capped_note}.")
    st.plotly_chart(picture_figure(picture, coloured=against is not None), width="stretch", key=CHART_KEY,
                    on_select=_on_pick, selection_mode="points", config={"scrollZoom": True})
    op = _op_picker(picture, graph_data.loaded(path, clear_devices, function).index.nodes)
    if op is not None:
        with errors_shown(stop=False):
            node_def_view(graph_data.node(path, clear_devices, op, function), "gpic",
                          functools.partial(_reveal, frozenset(s for s, _ in scopes)))
            if not any(b.id == op for b in picture.boxes):
                st.caption(f"{op} is not drawn in the picture now: it sits in a collapsed scope, among the hidden "
                           "training/saving ops or beyond the box cap.")
    return picture
