"""run_trends and change_matrix on a real six-checkpoint run, compared with numpy float64."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ckptlib import errors
from ckptlib.compare.trends import change_matrix, run_trends
from ckptlib.runs.history import load_history

STEP_STATS = ("l2", "mean", "std", "min", "max")


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


@pytest.fixture(scope="module")
def run(tmp_path_factory, cb):
    folder = str(tmp_path_factory.mktemp("trend") / "run")
    return folder, cb.trend_run(folder)


def _expected(cb, prefixes: list[str], name: str) -> list[dict]:
    """Per checkpoint holding `name`: its statistics and relative changes, by numpy on TF's tensors."""
    points, first, prev = [], None, None
    for prefix in prefixes:
        values = cb.read_all(prefix)
        if name not in values:
            continue
        x = values[name].astype(np.float64)
        point = {"l2": np.linalg.norm(x), "mean": x.mean(), "std": x.std(), "min": x.min(), "max": x.max(),
                 "rel_change_prev": None, "rel_change_first": None}
        if prev is not None:
            point["rel_change_prev"] = np.linalg.norm(x - prev) / np.linalg.norm(prev)
            point["rel_change_first"] = np.linalg.norm(x - first) / np.linalg.norm(first)
        points.append({k: (float(v) if v is not None else None) for k, v in point.items()})
        first = x if first is None else first
        prev = x
    return points


@pytest.mark.parametrize("backend", ["native", "tf"])
def test_points_match_numpy(run, cb, backend):
    folder, saved = run
    trends = run_trends(load_history(folder), ["dense/kernel", "dense/bias", "dense/kernel/Adam"], backend=backend)
    assert [e.step for e in trends.checkpoints] == [1, 2, 3, 4, 5, 6]
    assert trends.skipped == ()
    for trend in trends.variables:
        expected = _expected(cb, saved, trend.name)
        assert len(trend.points) == len(expected)
        for point, want in zip(trend.points, expected):
            for stat in STEP_STATS + ("rel_change_prev", "rel_change_first"):
                assert cb.close(getattr(point, stat), want[stat]), (trend.name, point.step, stat)
            assert (point.nan, point.inf) == (0, 0)
    kernel = trends.get("dense/kernel")
    assert (kernel.kind, kernel.dtype, kernel.shape) == ("model", "float32", (4, 3))
    assert all(p.frac_changed_prev == 1.0 for p in kernel.points[1:])
    assert trends.get("dense/kernel/Adam").kind == "optimizer"


def test_checkpoint_lacking_the_variable_is_skipped_with_a_reason(run):
    folder, saved = run
    bias = run_trends(load_history(folder), ["dense/bias"]).variables[0]
    assert [p.step for p in bias.points] == [1, 2, 3, 4, 5]
    (skip,) = bias.skipped
    assert (skip.prefix, skip.step, skip.variable, skip.error) == (saved[-1], 6, "dense/bias", False)
    assert "has no variable 'dense/bias'" in skip.reason


def test_incomplete_checkpoint_is_skipped_and_changes_span_the_gap(run, cb, tmp_path):
    folder, saved = run
    copy = shutil.copytree(folder, tmp_path / "run")
    os.remove(os.path.join(copy, "model.ckpt-3.data-00000-of-00001"))
    prefixes = [os.path.join(copy, os.path.basename(p)) for p in saved]
    trends = run_trends(load_history(copy), ["dense/kernel"])
    (skip,) = trends.skipped
    assert skip.step == 3 and "model.ckpt-3.data-00000-of-00001 is missing" in skip.reason
    points = trends.variables[0].points
    assert [p.step for p in points] == [1, 2, 4, 5, 6]
    expected = _expected(cb, [p for p in prefixes if not p.endswith("-3")], "dense/kernel")
    assert cb.close(points[2].rel_change_prev, expected[2]["rel_change_prev"])  # step 4 against step 2


def test_default_names_are_every_non_string_variable(run):
    folder, _ = run
    trends = run_trends(load_history(folder))
    names = [t.name for t in trends.variables]
    assert names == sorted(names)
    assert {"global_step", "beta1_power", "dense/kernel", "dense/bias/Adam_1"} <= set(names)
    only_model = run_trends(load_history(folder), where=lambda info: info.kind == "model")
    assert [t.name for t in only_model.variables] == ["dense/bias", "dense/kernel"]


def test_unknown_variable_is_a_clean_error(run):
    with pytest.raises(errors.VariableNotFound, match="no-such-var"):
        run_trends(load_history(run[0]), ["no-such-var"])


def test_change_matrix(run):
    folder, _ = run
    trends = run_trends(load_history(folder), ["dense/bias", "dense/kernel"])
    matrix = change_matrix(trends)
    assert matrix.values.shape == (2, 6) and matrix.values.dtype == np.float64
    assert matrix.variables == ("dense/bias", "dense/kernel") and matrix.steps == (1, 2, 3, 4, 5, 6)
    assert np.isnan(matrix.values[:, 0]).all()  # nothing before the first checkpoint
    assert np.isnan(matrix.values[0, 5])  # the last checkpoint has no bias
    for row, trend in zip(matrix.values, trends.variables):
        for point in trend.points[1:]:
            assert row[matrix.prefixes.index(point.prefix)] == point.rel_change_prev


def test_tf2_run_excludes_the_object_graph_string(cb, tmp_path):
    prefixes = [cb.save_tf2(str(tmp_path / f"ckpt-{i}"), {"net": {"w": np.full(3, float(i), np.float32)}})
                for i in (1, 2, 3)]
    trends = run_trends(load_history(str(tmp_path)))
    assert [(t.name, t.key) for t in trends.variables] == [("net/w", "net/w/.ATTRIBUTES/VARIABLE_VALUE")]
    points = trends.variables[0].points
    assert [p.prefix for p in points] == prefixes
    assert [p.rel_change_prev for p in points] == [None, pytest.approx(1.0), pytest.approx(0.5)]
    assert points[2].rel_change_first == pytest.approx(2.0)
    graph = run_trends(load_history(str(tmp_path)), ["_CHECKPOINTABLE_OBJECT_GRAPH"]).variables[0]
    assert graph.kind == "metadata" and graph.points[1].l2 is None and graph.points[1].frac_changed_prev == 0.0
