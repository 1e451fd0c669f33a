"""A layered (Sugiyama-style) layout in pure Python: x by topological depth, y ordered by barycenter."""

# No graphviz: the picture has at most a few hundred boxes, which this lays out in milliseconds, and the
# dashboard then draws the coordinates with plotly.

from __future__ import annotations

from collections.abc import Iterable, Sequence

SWEEPS = 4  # down and up passes of barycenter ordering; more rarely changes anything at this size


def layered_layout(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """node -> (x, y): x is the node's layer (longest path from a source; a source sits just before its
    first consumer), y its row in that layer, rows 1.0 apart and centred on 0. `nodes` gives the order
    that breaks ties (graph order); edges closing a cycle are ignored for the layering."""
    order = {n: i for i, n in enumerate(nodes)}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in _acyclic(nodes, edges, order):
        succ[src].append(dst)
        pred[dst].append(src)
    layer = _layers(nodes, succ, pred, order)
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(layer[n], []).append(n)
    columns = [rows[k] for k in sorted(rows)]
    rank = {n: i - (len(c) - 1) / 2 for c in columns for i, n in enumerate(c)}
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        for column in (columns if downward else reversed(columns)):
            _reorder(column, pred if downward else succ, rank, layer)
    position = {}
    for column in columns:
        middle = (len(column) - 1) / 2
        for row, n in enumerate(column):
            position[n] = (float(layer[n]), float(row - middle))
    return position


def _acyclic(nodes: Sequence[str], edges: Iterable[tuple[str, str]], order: dict[str, int]) -> list[tuple[str, str]]:
    """The edges minus those a depth-first search meets as back edges (and self loops, duplicates)."""
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in dict.fromkeys(edges):
        if src != dst and src in out and dst in out:
            out[src].append(dst)
    for targets in out.values():
        targets.sort(key=order.get)
    state: dict[str, int] = {}  # 1 on the stack, 2 finished
    kept = []
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:  # iterative: a deep chain of boxes must not hit Python's recursion limit
            node, targets = stack[-1]
            nxt = next(targets, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                continue  # a back edge: it would close a cycle
            else:
                kept.append((node, nxt))
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(out[nxt])))
    return kept


def _layers(nodes, succ, pred, order) -> dict[str, int]:
    waiting = {n: len(pred[n]) for n in nodes}
    ready = sorted((n for n in nodes if not waiting[n]), key=order.get, reverse=True)
    layer = dict.fromkeys(nodes, 0)
    topo = []
    while ready:
        n = ready.pop()
        topo.append(n)
        for m in succ[n]:
            layer[m] = max(layer[m], layer[n] + 1)
            waiting[m] -= 1
            if not waiting[m]:
                ready.append(m)
    # Sources (constants, variables) would all pile up in the first column: put each beside its reader.
    for n in reversed(topo):
        if not pred[n] and succ[n]:
            layer[n] = max(0, min(layer[m] for m in succ[n]) - 1)
    return layer


def _reorder(column: list[str], neighbours: dict[str, list[str]], rank: dict[str, float], layer) -> None:
    """Sort `column` by the mean row of each node's neighbours in the other columns (its barycenter); a node
    without any keeps its place. `rank` (node -> centred row) is updated for the column's new order."""
    keys = {}
    for n in column:
        others = [rank[m] for m in neighbours[n] if layer[m] != layer[n]]
        keys[n] = sum(others) / len(others) if others else rank[n]
    column.sort(key=lambda n: keys[n])
    middle = (len(column) - 1) / 2
    for i, n in enumerate(column):
        rank[n] = i - middle
