"""The Trends page's links and URL-kept choices: every chart point and change-matrix cell opens the Diff of
that step against the variable's previous point; the step to diff is kept in the URL (?step=…).

A click on a chart (st.plotly_chart(..., on_select=…)) carries a "diff?…" link in its point's customdata[0];
the callback keeps it, and the next run switches to the Diff page with those query parameters (only a
script run, not a callback, may switch pages).
"""

from __future__ import annotations

from itertools import pairwise
from urllib.parse import parse_qsl, urlencode

import numpy as np
import streamlit as st

from ckptlib.compare.types import ChangeMatrix, RunTrends, TrendPoint, VariableTrend
from ui.steps import shown
from ui.widgets import url_picker

GOTO_DIFF, FIRST_POINT = "_trends_goto_diff", "_trends_first_point"
STEP_KEY = "step"


def name_of(prefix: str) -> str:
    return prefix.rsplit("/", 1)[-1]


def step_label(point: TrendPoint) -> str:
    """How a point is named in the URL: its step, or its checkpoint's name when it has none."""
    return str(point.step) if point.step is not None else name_of(point.prefix)


def diff_params(root: str, run: str, variable: str, before: TrendPoint, after: TrendPoint) -> dict[str, str]:
    """The Diff page's query parameters for `before` → `after` of `variable` in `run` (a run name)."""
    return {"root": root, "run": run, "ckpt": name_of(after.prefix), "a_run": run, "a_ckpt": name_of(before.prefix),
            "b_run": run, "b_ckpt": name_of(after.prefix), "dvar": variable}


def diff_link(params: dict[str, str]) -> str:
    """A link relative to the page (it works under a base URL path too)."""
    return "diff?" + urlencode(params)


def point_links(root: str, run: str, trend: VariableTrend | None) -> list[str]:
    """For each point of `trend`, the link to its Diff against the previous point ("" for the first one)."""
    if trend is None:
        return []
    points = trend.points
    return [""] + [diff_link(diff_params(root, run, trend.name, before, after))
                   for before, after in pairwise(points)]


def matrix_links(root: str, run: str, trends: RunTrends, matrix: ChangeMatrix) -> list[list[str]]:
    """links[i][j]: the Diff behind cell (variable i, checkpoint j) of the change matrix ("" where none)."""
    column = {prefix: j for j, prefix in enumerate(matrix.prefixes)}
    links = [[""] * len(matrix.prefixes) for _ in matrix.variables]
    for i, name in enumerate(matrix.variables):
        trend = trends.get(name)
        for point, link in zip(trend.points if trend else (), point_links(root, run, trend)):
            if point.prefix in column:
                links[i][column[point.prefix]] = link
    return links


def line_series(runs: dict[str, RunTrends], name: str, stat: str, root: str,
                steps: dict[str, dict[str, int | None]] | None = None) -> tuple[dict, dict]:
    """({run: (steps, values)}, {run: links}) of one statistic of variable `name` in each run that has it; a
    point is drawn at its checkpoint's training step where `steps[run]` knows it (ui/steps.py)."""
    series, links = {}, {}
    for label, run_trends in runs.items():
        trend = run_trends.get(name)
        if trend is not None:
            known = (steps or {}).get(label, {})
            series[label] = ([shown(p.step, p.prefix, known) for p in trend.points],
                             [np.nan if getattr(p, stat) is None else getattr(p, stat) for p in trend.points])
            links[label] = point_links(root, label, trend)
    return series, links


def chosen_link(state) -> str | None:
    """The "diff?…" link of the first selected point of a plotly selection state, or None."""
    points = ((state or {}).get("selection") or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
    return data if isinstance(data, str) else None


def on_chart_select(key: str, sidebar_run: str):
    """The on_select callback of chart `key`: remember the Diff to open (or say why there is none)."""
    def chosen() -> None:
        link = chosen_link(st.session_state.get(key))
        if link is None:
            return
        if not link.startswith("diff?"):
            st.session_state[FIRST_POINT] = True
            return
        query = dict(parse_qsl(link[len("diff?"):]))
        if query.get("b_run") == sidebar_run:
            # The sidebar (a widget: only a callback may move it) follows to B, so that the Diff's defaults
            # are this very pair even where the Diff page forgets its own choices for a new sidebar choice.
            st.session_state["ckpt"] = query["b_ckpt"]
        st.session_state[GOTO_DIFF] = query
    return chosen


def switch_to_chosen_diff() -> None:
    """Go to the Diff clicked on a chart in the previous run, if any (call before drawing the page)."""
    query = st.session_state.pop(GOTO_DIFF, None)
    if query:
        st.switch_page("pages/diff.py", query_params=query)
    if st.session_state.pop(FIRST_POINT, False):
        st.toast("That is the first checkpoint holding this variable: there is no step before it to diff against.")


def chart(column, figure, key: str, sidebar_run: str) -> None:
    """A figure whose points (or cells) open their Diff when clicked."""
    column.plotly_chart(figure, width="stretch", key=key, on_select=on_chart_select(key, sidebar_run),
                        selection_mode="points")


def step_picker(column, trend: VariableTrend, steps: dict[str, int | None] | None = None
                ) -> tuple[TrendPoint, TrendPoint] | None:
    """The step to diff against the one before, kept in the URL (?step=800); None with fewer than 2 points.
    Where a checkpoint's number is not its training step (`steps`), the choice names both."""
    pairs = {step_label(after): (before, after) for before, after in pairwise(trend.points)}
    if not pairs:
        st.query_params.pop(STEP_KEY, None)
        return None
    labels = list(pairs)
    trained = {label: shown(None, after.prefix, steps or {}) for label, (_, after) in pairs.items()}

    def named(label: str) -> str:
        plain = f"step {label}" if label.lstrip("-").isdigit() else label
        step = trained.get(label)
        return plain if step is None or str(step) == label else f"step {step} ({name_of(pairs[label][1].prefix)})"

    chosen = url_picker(column.selectbox, "Diff the step before and", labels, STEP_KEY, default=labels[-1],
                        format_func=named)
    return pairs[chosen]


def nothing_read(trends: RunTrends) -> str:
    """Why the page has nothing to show, in words."""
    if not trends.skipped:
        return "This run has no complete checkpoint with numeric variables."
    shown = "; ".join(f"{name_of(s.prefix)}: {s.reason}" for s in trends.skipped[:3])
    more = f" and {len(trends.skipped) - 3} more" if len(trends.skipped) > 3 else ""
    return (f"None of this run's {len(trends.skipped)} checkpoint(s) could be read, so there is no trend to draw "
            f"({shown}{more}). History says more about each one.")


def single_note(trends: RunTrends) -> str:
    """The sentence shown instead of a change matrix for a run with one readable checkpoint."""
    count = len(trends.checkpoints)
    return (f"This run has {count} readable checkpoint{'s' if count != 1 else ''}: the change matrix and the "
            "change since the previous checkpoint need two that hold the same variable.")
