"""AppTest of the Trends page: its view round-trips through the URL, every chart point and change-matrix cell
links to the Diff of that step against the one before, and runs with one or no readable checkpoint get a
sentence instead of empty charts."""

import json
import os
from urllib.parse import parse_qs

import pytest
from conftest import copy_run
from page_links import APP, open_page
from streamlit.testing.v1 import AppTest

from ui.trend_links import chosen_link

SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN, OTHER = "mnist_cnn/lr3e-3_bs100", "mnist_cnn/lr5e-3_bs50"


pytestmark = pytest.mark.usefixtures("restored_root")  # CKPTLIB_ROOT as it was, after each test


def _trends(root: str = SAMPLES, page: str = "pages/trends.py", **params) -> AppTest:
    return open_page(page, root, params)


def _param(at: AppTest, key: str) -> list[str]:
    value = at.query_params.get(key, [])
    return [value] if isinstance(value, str) else list(value)


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def one_checkpoint_root(tmp_path_factory, tfb):
    """A root holding one run with a single checkpoint (step 3), written by TensorFlow."""
    root = tmp_path_factory.mktemp("one_ckpt_root")
    tfb.saver_run(str(root / "single"), num_saves=1, save_relative_paths=True, train_steps_before=2)
    return str(root)


def test_the_view_round_trips_through_the_url():
    at = _trends(run=CNN, var="conv2/weights", step="800", opt="1", overlay=OTHER, mscale="step")
    _clean(at)
    assert at.selectbox(key="var").value == "conv2/weights"
    assert at.selectbox(key="step").value == "800"
    assert at.toggle(key="opt").value is True
    assert at.multiselect(key="overlay").value == [OTHER]
    assert at.radio(key="mscale").value == "step"
    assert any(name.endswith("/Adam") for name in at.selectbox(key="var").options)  # slots really included
    for key, value in (("var", "conv2/weights"), ("step", "800"), ("opt", "1"), ("overlay", OTHER),
                       ("mscale", "step"), ("run", CNN)):
        assert _param(at, key) == [value], key
    link = at.get("page_link")[0].proto
    assert parse_qs(link.query_string)["a_ckpt"] == ["model.ckpt-700"]
    assert "step 700 → 800 for conv2/weights" in link.label
    # Both runs are drawn on the line charts.
    assert {t["name"] for t in _charts(at)[1]["data"]} == {CNN, OTHER}


def test_changing_the_view_writes_the_url():
    at = _trends(run=CNN)
    at.selectbox(key="var").select("fc1/weights").run()
    at.selectbox(key="step").select("600").run()
    at.toggle(key="opt").set_value(True).run()
    at.radio(key="mscale").set_value("step").run()
    _clean(at)
    assert _param(at, "var") == ["fc1/weights"] and _param(at, "step") == ["600"]
    assert _param(at, "opt") == ["1"] and _param(at, "mscale") == ["step"]
    at.toggle(key="opt").set_value(False).run()
    assert _param(at, "opt") == [] and _param(at, "step") == ["600"]  # the step survives the toggle


def test_matrix_cells_and_line_points_carry_the_diff_of_their_step():
    at = _trends(run=CNN, var="conv2/weights", overlay=OTHER)
    _clean(at)
    assert list(at.get("plotly_chart")[0].proto.selection_mode), "the change matrix reports clicks"
    matrix = _charts(at)[0]
    cells = next(t for t in matrix["data"] if t["type"] == "scatter")
    at_800 = next(c for x, y, c in zip(cells["x"], cells["y"], cells["customdata"])
                  if x == 800 and y == "conv2/weights")
    query = parse_qs(at_800[0].split("?", 1)[1])
    assert query["a_ckpt"] == ["model.ckpt-700"] and query["b_ckpt"] == ["model.ckpt-800"]
    assert query["dvar"] == ["conv2/weights"] and query["a_run"] == query["b_run"] == [CNN]
    l2 = _charts(at)[1]
    assert l2["layout"]["title"]["text"] == "conv2/weights: l2"
    for trace in l2["data"]:
        links = [c[0] for c in trace["customdata"]]
        assert links[0] == ""  # the first checkpoint has nothing before it
        second = parse_qs(links[1].split("?", 1)[1])
        assert second["a_run"] == [trace["name"]] and (second["a_ckpt"], second["b_ckpt"]) == (
            ["model.ckpt-200"], ["model.ckpt-400"])
    # Following a link shows that Diff, on that variable.
    diff = _trends(page="pages/diff.py", **{k: v[0] for k, v in query.items()})
    _clean(diff)
    assert diff.selectbox(key="a_ckpt").value == "model.ckpt-700"
    assert diff.selectbox(key="b_ckpt").value == "model.ckpt-800"
    assert diff.subheader[0].value == "conv2/weights"


def test_a_selection_gives_back_the_link_of_its_point():
    link = "diff?a_ckpt=model.ckpt-700&b_ckpt=model.ckpt-800"
    assert chosen_link({"selection": {"points": [{"customdata": [link, 0.1, 0.5]}]}}) == link
    assert chosen_link({"selection": {"points": [{"customdata": link}]}}) == link
    assert chosen_link({"selection": {"points": [], "point_indices": []}}) is None
    assert chosen_link(None) is None


def test_a_one_checkpoint_run_gets_sentences_and_whole_step_ticks(one_checkpoint_root):
    at = _trends(root=one_checkpoint_root, run="single")
    _clean(at)
    said = " ".join(i.value for i in at.info)
    assert "1 readable checkpoint" in said and "change matrix" in said
    assert "rel_change_prev" in said  # that chart is a sentence, not empty axes
    charts = _charts(at)
    assert charts and all(t["type"] == "scatter" for c in charts for t in c["data"])  # no change matrix
    for chart in charts:
        assert any(y is not None for t in chart["data"] for y in t["y"]), chart["layout"]["title"]
        assert chart["layout"]["xaxis"]["tickvals"] == [3], chart["layout"]["xaxis"]
        assert chart["layout"]["xaxis"]["tickformat"] == "d"
    assert not at.get("page_link")  # no pair of steps to diff
    assert _param(at, "step") == []


def test_a_run_whose_checkpoints_are_all_unreadable_says_why(tmp_path):
    run = copy_run(os.path.join(SAMPLES, "linear"), tmp_path)
    for name in os.listdir(run):
        if name.endswith(".index"):
            path = os.path.join(run, name)
            with open(path, "r+b") as handle:
                data = bytearray(handle.read())
                data[::7] = bytes(b ^ 0xFF for b in data[::7])
                handle.seek(0)
                handle.write(data)
    at = _trends(root=str(tmp_path), run="linear")
    assert not at.exception
    warned = " ".join(w.value for w in at.warning)
    assert "None of this run's 5 checkpoint(s) could be read" in warned, warned
    assert "model.ckpt-100" in warned and "index" in warned
    assert not at.get("plotly_chart")


def test_a_tf2_run_is_drawn_at_its_optimizer_steps_with_save_counters_beside():
    from ckptlib.runs.history import load_history

    history = load_history(os.path.join(SAMPLES, "mnist_tf2"))
    trained = {e.name: e.stored_step for e in history.checkpoints}
    at = _trends(run="mnist_tf2")
    _clean(at)
    charts = _charts(at)
    matrix = charts[0]
    assert matrix["layout"]["xaxis"]["title"]["text"] == "training step (optimizer)"
    cells = next(t for t in matrix["data"] if t["type"] == "scatter")
    assert set(cells["x"]) <= set(trained.values()) and max(cells["x"]) == trained["ckpt-8"] != 8
    for line in charts[1:]:
        assert line["layout"]["xaxis"]["title"]["text"] == "training step (optimizer)"
        assert all(x in trained.values() for t in line["data"] for x in t["x"])
    table = at.dataframe[-1].value
    assert list(table.columns[:3]) == ["checkpoint", "training step", "save"]
    assert dict(zip(table["checkpoint"], table["training step"])) == {k: v for k, v in trained.items()
                                                                      if k in set(table["checkpoint"])}
    picker = at.selectbox(key="step")
    assert picker.format_func(picker.value) == f"step {trained['ckpt-8']} (ckpt-8)"


def test_an_orphan_is_left_out_with_a_sentence_and_the_matrix_keeps_step_gaps():
    at = _trends(run="from_cluster")
    _clean(at)
    assert any("Left out: 1 orphan(s) (model.ckpt-1000)" in i.value for i in at.info), [i.value for i in at.info]
    charts = _charts(at)
    matrix = charts[0]
    assert matrix["layout"]["xaxis"].get("type") != "category"  # columns stand at their steps
    cells = next(t for t in matrix["data"] if t["type"] == "scatter")
    assert 1000 not in cells["x"] and 600 in cells["x"]
    assert all(1000 not in t["x"] for chart in charts[1:] for t in chart["data"])


def test_an_overlaid_run_without_the_variable_is_named():
    at = _trends(run=CNN, var="conv1/weights", overlay="mnist_tf2")
    _clean(at)
    assert any(c.value == "Not drawn: mnist_tf2 has no variable conv1/weights." for c in at.caption)
