"""The figure builders on real runs: charts that say something with one, two or 120 checkpoints, readable
log ticks, a change matrix that one early column does not wash out, and a timeline that draws every status."""

import os

import numpy as np
import pytest
from conftest import copy_run

from ckptlib.compare.trends import change_matrix, run_trends
from ckptlib.runs.history import load_history
from ckptlib.runs.verify import verify_history
from ui import figures, figures_compare

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_checkpoints")


def _flip(path: str, every: int = 1) -> None:
    with open(path, "r+b") as handle:
        data = bytearray(handle.read())
        data[::every] = bytes(b ^ 0x5A for b in data[::every])
        handle.seek(0)
        handle.write(data)


def _annotations(fig) -> str:
    return " ".join(a.text.replace("<br>", " ") for a in fig.layout.annotations)


@pytest.fixture(scope="module")
def step_2000(tmp_path_factory, tfb):
    """One checkpoint, at step 2000."""
    run = str(tmp_path_factory.mktemp("step_2000") / "run")
    tfb.saver_run(run, num_saves=1, save_relative_paths=True, train_steps_before=1999)
    return run


@pytest.fixture(scope="module")
def long_run(tmp_path_factory, tfb):
    """120 checkpoints of w += [1, -1]: the change since the previous one is 1/(t-1), large only early."""
    run = str(tmp_path_factory.mktemp("long") / "run")
    tfb.tiny_saver_run(run, 120)
    return run


def _series(trends, stat: str) -> dict:
    trend = trends.variables[0]
    return {"run": ([p.step for p in trend.points],
                    [np.nan if getattr(p, stat) is None else getattr(p, stat) for p in trend.points])}


def test_one_checkpoint_gets_one_whole_step_tick_and_a_tight_value_range(step_2000):
    trends = run_trends(load_history(step_2000))
    kernel = next(t for t in trends.variables if t.name == "dense/kernel")
    value = kernel.points[0].l2
    fig = figures_compare.trend_lines({"run": ([2000], [value])}, "dense/kernel: l2")
    axis = fig.layout.xaxis
    assert list(axis.tickvals) == [2000] and list(axis.ticktext) == ["2000"] and axis.tickformat == "d"
    assert axis.range[0] < 2000 < axis.range[1]
    low, high = fig.layout.yaxis.range
    assert low < value < high and (high - low) <= 0.25 * value  # not plotly's ±50 % around a lone point


def test_the_change_of_a_lone_checkpoint_is_a_sentence_not_empty_axes(step_2000):
    trends = run_trends(load_history(step_2000))
    fig = figures_compare.trend_lines(_series(trends, "rel_change_prev"), "rel_change_prev", log_y=True)
    assert not fig.data
    assert "needs two checkpoints" in _annotations(fig)


def test_two_points_tick_at_both_steps_only():
    fig = figures_compare.trend_lines({"a": ([200, 1000], [0.5, 0.7])}, "two")
    assert list(fig.layout.xaxis.tickvals) == [200, 1000]


def test_log_scale_ticks_are_whole_decades(long_run):
    trends = run_trends(load_history(long_run))
    fig = figures_compare.trend_lines(_series(trends, "rel_change_prev"), "w: rel_change_prev", log_y=True)
    axis = fig.layout.yaxis
    assert axis.type == "log" and axis.dtick == 1 and axis.exponentformat == "power"
    assert list(axis.range) == [-3, 0]  # 1/119 .. 1: from 10^-3 to 10^0, one label per decade
    assert fig.layout.xaxis.tickformat == "d" and fig.layout.xaxis.tickvals is None  # 120 steps: plotly's ticks


def test_the_change_matrix_of_120_checkpoints_is_not_washed_out_by_its_first_column(long_run):
    matrix = change_matrix(run_trends(load_history(long_run), where=lambda v: v.kind == "model"))  # as the page
    assert matrix.variables == ("w",)
    raw = matrix.values[np.isfinite(matrix.values)]
    assert np.median(raw) / raw.max() < 0.02  # the problem: on a linear scale nearly every cell is dark
    fig = figures_compare.change_matrix(matrix)
    heat = fig.data[0]
    colours = np.asarray(heat.z, dtype=float)
    assert 0.4 < np.nanmedian(colours) < 0.6 and np.nanmax(colours) == 1
    assert "rank" in heat.colorbar.title.text
    assert list(heat.x)[:2] == [2, 3]  # the first checkpoint's column (nothing before it) left out
    cells = fig.data[1]
    assert len(cells.x) == 119 and cells.customdata[0][1] == pytest.approx(1.0)  # raw value in the hover


def test_the_per_step_scale_gives_each_step_its_own_range():
    trends = run_trends(load_history(os.path.join(SAMPLES, "mnist_cnn", "lr3e-3_bs100")), where=lambda v:
                        v.kind == "model")
    matrix = change_matrix(trends)
    fig = figures_compare.change_matrix(matrix, "step")
    colours = np.asarray(fig.data[0].z, dtype=float)
    assert np.allclose(np.nanmax(colours, axis=0), 1.0)
    assert "step's" in fig.data[0].colorbar.title.text


def test_rank_scaling_shares_ties():
    ranks = figures_compare.scaled_changes(np.array([[1.0, 1.0, 2.0, np.nan]]))
    assert ranks[0, :3].tolist() == [0.25, 0.25, 1.0] and np.isnan(ranks[0, 3])


def test_a_matrix_with_nothing_to_colour_says_so(step_2000):
    fig = figures_compare.change_matrix(change_matrix(run_trends(load_history(step_2000))))
    assert not fig.data and "two complete checkpoints" in _annotations(fig)


def test_the_timeline_draws_checkpoints_found_damaged(tmp_path):
    run = copy_run(os.path.join(SAMPLES, "linear"), tmp_path)
    for name in os.listdir(run):
        if ".data-" in name:
            _flip(os.path.join(run, name))
    history = verify_history(load_history(run))
    assert {e.status for e in history.checkpoints} == {"damaged"}
    fig = figures.timeline(history)
    damaged = [t for t in fig.data if t.name == "damaged"]
    assert damaged and list(damaged[0].y) == [100, 200, 300, 400, 500]


def test_a_timeline_with_no_step_to_draw_says_why(tmp_path, nostep_run):
    run = copy_run(nostep_run[0], tmp_path)
    _flip(os.path.join(run, "model.ckpt.index"), every=7)
    history = load_history(run)
    assert [e.step for e in history.checkpoints] == [None]
    fig = figures.timeline(history)
    assert not fig.data and "step number" in _annotations(fig)


def test_copied_file_times_put_the_checkpoints_in_step_order(tmp_path):
    run = copy_run(os.path.join(SAMPLES, "linear"), tmp_path)
    state = os.path.join(run, "checkpoint")
    with open(state) as handle:  # a state file without save times (written by hand, or an old TF)
        kept = [line for line in handle if "timestamp" not in line]
    with open(state, "w") as handle:
        handle.writelines(kept)
    # Like a git clone: every file arrives within a few milliseconds, in no particular order.
    for i, name in enumerate(sorted(os.listdir(run), reverse=True)):
        os.utime(os.path.join(run, name), (1_700_000_000 + i / 1000, 1_700_000_000 + i / 1000))
    history = load_history(run)
    fig = figures.timeline(history, verdicts={history.checkpoints[0].prefix: "ship"})
    assert fig.layout.xaxis.type == "category"
    assert list(fig.layout.xaxis.categoryarray) == [f"model.ckpt-{s}" for s in (100, 200, 300, 400, 500)]
    assert any(t.name == "verdict: ship" for t in fig.data)
    assert list(fig.layout.yaxis.tickvals) == [100, 200, 300, 400, 500]


def test_a_one_checkpoint_timeline_has_one_step_tick_and_an_hour_of_time(step_2000):
    fig = figures.timeline(load_history(step_2000))
    assert list(fig.layout.yaxis.tickvals) == [2000]
    start, end = (np.datetime64(t) for t in fig.layout.xaxis.range)
    assert end - start == np.timedelta64(60, "m")


def test_count_axes_tick_whole_counts():
    from ckptlib.tensors.types import Histogram
    from ui import figures

    few = figures.histogram(Histogram(edges=(0.0, 0.5, 1.0), counts=(1, 3)), "h")
    assert few.layout.yaxis.dtick == 1 and few.layout.yaxis.tickformat == "d"
    many = figures.histogram(Histogram(edges=(0.0, 0.5, 1.0), counts=(100, 3000)), "h")
    assert many.layout.yaxis.dtick is None and many.layout.yaxis.tickformat == "d"
    both = figures_compare.overlaid_histograms(np.array([0.0, 1.0]), np.array([0.5, 1.0, 1.0]))
    assert both.layout.yaxis.dtick == 1


def test_copied_file_times_give_way_to_the_state_files_save_times(tmp_path):
    run = copy_run(os.path.join(SAMPLES, "from_cluster"), tmp_path)
    for i, name in enumerate(sorted(os.listdir(run), reverse=True)):
        os.utime(os.path.join(run, name), (1_700_000_000 + i / 1000, 1_700_000_000 + i / 1000))
    history = load_history(run)
    fig = figures.timeline(history)
    assert fig.layout.xaxis.title.text == "time saved"
    placed = sorted((x, y) for t in fig.data for x, y in zip(t.x, t.y))
    assert [y for _, y in placed] == sorted(y for _, y in placed)  # later steps saved later: a true timeline
    assert "Not placed in time (no known save time): model.ckpt-200" in _annotations(fig)
    assert "model.ckpt-1000" in _annotations(fig)  # the orphan has no trusted time either
