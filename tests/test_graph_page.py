"""AppTest: the Graph page's picture (a .meta, a frozen .pb; scopes opened through the URL) and compare mode."""

import json
import os
import shutil

import pytest
from page_links import assert_rendered, open_page
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN = "mnist_cnn/lr3e-3_bs100"
META = os.path.join(SAMPLES, CNN, "model.ckpt-1000.meta")


@pytest.fixture(autouse=True)
def _restore_env(restored_root):
    yield


def _graph_page(root: str = SAMPLES, **params) -> AppTest:
    return open_page("graph", root, params, timeout=90)


def _assert_clean(at: AppTest) -> None:
    assert_rendered(at)


def _boxes(at: AppTest) -> dict[str, str]:
    """Box id -> the name of the trace (legend entry) it is drawn in, read from the picture's plotly spec."""
    charts = at.get("plotly_chart")
    assert charts, "no picture"
    spec = json.loads(charts[0].proto.spec)
    return {box_id: trace["name"] for trace in spec["data"] for box_id in trace.get("customdata") or ()}


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_the_picture_of_a_meta_shows_its_top_level_scopes_and_the_inference_path():
    at = _graph_page(run=CNN)
    _assert_clean(at)
    from ckptlib.graph.load import load_graph
    from ckptlib.graph.scopetree import scope_picture

    expected = scope_picture(load_graph(META))
    boxes = _boxes(at)
    assert set(boxes) == {b.id for b in expected.boxes}
    assert {"conv1/", "fc1/", "logits/", "input"} <= set(boxes)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any(t["name"] == "inference path" for t in spec["data"])
    assert any(f"{expected.hidden_ops} training/saving/init/summary ops hidden" in c.value for c in at.caption)
    # The existing tabs still work behind the new Picture tab.
    assert at.dataframe[1].value["name"].iloc[0] == "logits/logits"


def test_the_picture_of_a_frozen_pb(tmp_path):
    from ckptlib.evaluate.freeze import freeze

    root = tmp_path / "root"
    run = shutil.copytree(os.path.join(SAMPLES, CNN), root / "cnn")
    os.remove(os.path.join(run, "frozen.pb"))
    (tmp_path / "out").mkdir()
    frozen = freeze(os.path.join(run, "model.ckpt-1000"), ["logits/logits"], str(tmp_path / "out" / "exported.pb"))
    shutil.copy(frozen.output, os.path.join(run, "exported.pb"))
    at = _graph_page(root=str(root), run="cnn", meta="exported.pb")
    _assert_clean(at)
    assert at.selectbox(key="meta").value == "exported.pb"
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Operations"]) == frozen.num_nodes
    assert metrics["Kind"] == "frozen"
    boxes = _boxes(at)
    assert {"conv1/", "fc1/", "logits/", "input"} <= set(boxes)
    assert not any(b.startswith(("loss", "gradients", "save")) for b in boxes)  # freezing dropped them


def test_opening_a_scope_through_the_url_shows_its_children_and_the_chooser_says_so():
    at = _graph_page(run=CNN, expand="conv1")
    _assert_clean(at)
    boxes = _boxes(at)
    assert "conv1/" not in boxes
    children = {b for b in boxes if b.startswith("conv1/")}
    assert {"conv1/weights", "conv1/biases"} <= children and len(children) >= 4, children
    assert at.multiselect(key="graph_expand").value == ["conv1"]
    # Closing it from the keyboard (the chooser) puts the scope back and the URL forgets it.
    at.multiselect(key="graph_expand").set_value([]).run()
    _assert_clean(at)
    assert "conv1/" in _boxes(at) and _param(at, "expand") is None
    # Opening another scope through the chooser: the URL keeps it.
    at.multiselect(key="graph_expand").set_value(["fc1"]).run()
    assert _param(at, "expand") == "fc1"
    assert any(b.startswith("fc1/") for b in _boxes(at))


def test_side_ops_and_the_node_def_of_an_op_live_in_the_url():
    at = _graph_page(run=CNN, side="1", gnode="input")
    _assert_clean(at)
    boxes = _boxes(at)
    assert {"gradients/", "save/"} <= set(boxes)
    assert at.toggle(key="graph_side_ops").value is True
    assert at.selectbox(key="gnode").value == "input"
    assert any("**input** · `Placeholder`" in m.value for m in at.markdown)
    at.toggle(key="graph_side_ops").set_value(False).run()
    assert "gradients/" not in _boxes(at) and _param(at, "side") is None


def test_a_click_on_a_box_opens_the_scope_or_picks_the_op():
    from ui.graph_picture import picked

    assert picked([{"curve_number": 4, "point_index": 1, "customdata": "conv1/"}]) == ("scope", "conv1")
    assert picked([{"customdata": ["fc1/dense/"]}]) == ("scope", "fc1/dense")
    assert picked([{"customdata": "conv1/weights"}]) == ("op", "conv1/weights")
    assert picked([{"customdata": "fc1/…"}, {"x": 1}]) is None  # an overflow box, a point without an id
    assert picked([]) is None and picked(None) is None


def test_a_damaged_graph_file_is_an_error_line_not_a_traceback(tmp_path):
    root = tmp_path / "root"
    run = shutil.copytree(os.path.join(SAMPLES, "linear"), root / "linear")
    with open(os.path.join(run, "broken.pb"), "wb") as handle:
        handle.write(b"\x0a\x05hello-not-a-graph" * 3)
    at = _graph_page(root=str(root), run="linear", meta="broken.pb")
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and "broken.pb" in at.error[0].value


# --- compare mode -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tfb):
    """Two small v1 runs whose dense layers differ in width (3 vs 4): same ops, some attrs changed."""
    root = tmp_path_factory.mktemp("graph_compare")
    tfb.saver_run(str(root / "narrow"), num_saves=1, save_relative_paths=True, hidden=3)
    tfb.saver_run(str(root / "wide"), num_saves=1, save_relative_paths=True, hidden=4)
    return root


def _meta_of(run_dir) -> str:
    return next(os.path.join(run_dir, n) for n in sorted(os.listdir(run_dir)) if n.endswith(".meta"))


def test_compare_mode_lists_the_changes_between_two_graphs(two_runs):
    from ckptlib.graph.graphdiff import diff_graphs
    from ckptlib.graph.load import load_graph

    narrow, wide = _meta_of(two_runs / "narrow"), _meta_of(two_runs / "wide")
    # side=1: these tiny graphs have no input or output, so every op counts as a training op.
    at = _graph_page(root=str(two_runs), run="narrow", gmode="Compare", gb_run="wide",
                     gb_graph=os.path.basename(wide), side="1")
    _assert_clean(at)
    expected = diff_graphs(load_graph(narrow), load_graph(wide))
    metrics = {m.label: int(m.value) for m in at.metric}
    assert metrics == expected.summary and metrics["changed"] > 0
    table = at.dataframe[0].value
    changed = {op.name for op in expected.ops if op.status == "changed"}
    assert set(table["name"]) == changed  # unchanged ops are filtered out by default
    assert set(table["status"]) == {"changed"}
    assert table["changes"].str.contains("attr").all()
    scopes = at.dataframe[1].value
    assert "dense" in set(scopes["scope"]) and scopes.loc[scopes["scope"] == "dense", "changed"].iloc[0] > 0
    boxes = _boxes(at)
    assert boxes["dense/"].startswith("changed")  # the picture is coloured by status, with a legend
    # Status filter: every op, unchanged ones included.
    at.multiselect(key="gdiff_status").set_value(["changed", "unchanged"]).run()
    assert len(at.dataframe[0].value) == expected.summary["changed"] + expected.summary["unchanged"]


def test_compare_mode_applies_mapping_rules_and_reports_a_bad_one(two_runs):
    wide = os.path.basename(_meta_of(two_runs / "wide"))
    at = _graph_page(root=str(two_runs), run="narrow", gmode="Compare", gb_run="wide", gb_graph=wide,
                     gmap="^dense/=layer/", side="1")
    _assert_clean(at)
    metrics = {m.label: int(m.value) for m in at.metric}
    assert metrics["added"] > 0 and metrics["removed"] > 0  # dense/ renamed away on A's side only
    at.radio(key="gside").set_value("A").run()
    _assert_clean(at)
    assert _boxes(at)["dense/"].startswith("removed")  # A's picture, in A's names: what B lacks
    at.text_area(key="gmap").input("([=x").run()
    assert not at.exception
    assert at.error and "rule" in at.error[0].value.lower()


def test_compare_mode_defaults_b_to_another_graph_of_the_same_run():
    at = _graph_page(run=CNN, gmode="Compare")
    _assert_clean(at)
    assert at.selectbox(key="gb_run").value == CNN
    assert at.selectbox(key="gb_graph").value != at.selectbox(key="meta").value


def test_a_saved_model_run_shows_its_signatures():
    samples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_checkpoints")
    at = assert_rendered(open_page("graph", samples, {"run": "mnist_keras/export"}, timeout=120))
    shown = [m.value for m in at.markdown if m.value.startswith("Signature ")]
    assert shown == ["Signature **serve** (tensorflow/serving/predict)",
                     "Signature **serving_default** (tensorflow/serving/predict)"]
    assert not any("object-based" in c.value for c in at.caption)  # the export is its graph, nothing is missing
    table = at.dataframe[-1].value
    assert {"input", "output"} == set(table["side"]) and "float32" in set(table["dtype"])
