"""Checkpoint pickers (sidebar and Diff): newest first, found by whole step numbers, short labels; the
Variables page's filters in the URL, widened for a linked variable they would hide."""

from __future__ import annotations

import os

import pytest
from streamlit.proto.Selectbox_pb2 import Selectbox
from page_links import APP, open_page
from streamlit.testing.v1 import AppTest

from ckptlib.runs.types import CheckpointEntry

SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN = "mnist_cnn/lr3e-3_bs100"
SIDEBAR_LABEL_CHARS = 28  # what the default sidebar's selectbox shows without cutting


pytestmark = pytest.mark.usefixtures("restored_root")  # CKPTLIB_ROOT as it was, after each test


def _app(root: str = SAMPLES, page: str | None = None, **params) -> AppTest:
    return open_page(page, root, params)


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _filter_mode(box) -> str:
    return Selectbox.DESCRIPTOR.fields_by_name["filter_mode"].enum_type.values_by_number[box.proto.filter_mode].name


def _entry(name: str, step: int | None, stored: int | None = None, **kw) -> CheckpointEntry:
    fields = {"prefix": f"/run/{name}", "step": step, "mtime": None, "size_bytes": 10, "in_state": True,
              "latest": False, "complete": True, "has_meta": False, "problem": None, "stored_step": stored}
    return CheckpointEntry(**(fields | kw))


@pytest.fixture(scope="module")
def long_run(tmp_path_factory, tfb):
    root = tmp_path_factory.mktemp("long_root")
    tfb.tiny_saver_run(str(root / "many"), 120)
    return str(root)


# --- pure helpers ------------------------------------------------------------------------------------
def test_find_checkpoint_matches_whole_step_numbers_only():
    from ui.widgets import find_checkpoint

    entries = [_entry(f"model.ckpt-{s}", s) for s in range(1, 121)]
    assert find_checkpoint(entries, "57").step == 57
    assert find_checkpoint(entries, " step 57 ").step == 57
    assert find_checkpoint(entries, "7").step == 7  # not 57, 70 or 117
    assert find_checkpoint(entries, "model.ckpt-75").step == 75
    assert find_checkpoint(entries, "5700") is None and find_checkpoint(entries, "ckpt-5") is None
    tf2 = [_entry(f"ckpt-{n}", n, 50 * n) for n in (2, 4, 8)]
    assert find_checkpoint(tf2, "400").name == "ckpt-8"  # the training step first
    assert find_checkpoint(tf2, "8").name == "ckpt-8"  # else the save number


def test_labels_start_with_the_step_and_stay_short():
    from ui.widgets import checkpoint_label, names_implied

    v1 = [_entry("model.ckpt-200", 200, in_state=False, preserved=True), _entry("model.ckpt-1000", 1000, latest=True)]
    assert names_implied(v1)
    assert [checkpoint_label(e, True) for e in v1] == ["200 · preserved", "1000 ★"]
    tf2 = [_entry("ckpt-8", 8, 400, latest=True)]
    assert not names_implied(tf2)
    assert checkpoint_label(tf2[0], names_implied(tf2)) == "400 · ckpt-8 ★"
    assert not names_implied([_entry("model.ckpt-5", 5), _entry("other-6", 6)])  # two stems: names shown


# --- the sidebar -------------------------------------------------------------------------------------
def test_sidebar_lists_newest_first_filters_by_prefix_and_fits():
    at = _app(run=CNN)
    _clean(at)
    box = at.selectbox(key="ckpt")
    assert box.value == "model.ckpt-1000"
    assert box.options == ["1000 ★", "900", "800", "700", "600", "400 · preserved", "200 · preserved"]
    assert _filter_mode(box) == "FILTER_MODE_PREFIX"  # '57' never matches 75
    assert all(len(o) <= SIDEBAR_LABEL_CHARS for o in box.options)
    assert "model.ckpt-1000 · step 1000 · latest" in [c.value for c in at.sidebar.caption]  # the full name


def test_sidebar_labels_of_every_sample_run_fit():
    for run in ("linear", CNN, "mnist_tf2", "from_cluster"):
        at = _app(run=run)
        _clean(at)
        options = at.selectbox(key="ckpt").options
        assert all(len(o) <= SIDEBAR_LABEL_CHARS for o in options), options


def test_sidebar_shows_the_tf2_training_step_beside_the_save_counter():
    at = _app(run="mnist_tf2")
    _clean(at)
    box = at.selectbox(key="ckpt")
    assert box.options[0] == "400 · ckpt-8 ★" and box.options[-1] == "100 · ckpt-2 · preserved"
    assert "ckpt-8 · save 8, step 400 · latest" in [c.value for c in at.sidebar.caption]
    at.text_input(key="ckpt_step").input("200").run()
    assert at.selectbox(key="ckpt").value == "ckpt-4" and _param(at, "ckpt") == "ckpt-4"


def test_go_to_step_jumps_to_the_exact_step_in_a_long_run(long_run):
    at = _app(root=long_run)
    _clean(at)
    box = at.selectbox(key="ckpt")
    assert box.value == "model.ckpt-120" and box.options[:3] == ["120 ★", "119", "118"]
    assert [o for o in box.options if o.lower().startswith("57")] == ["57"]  # what the prefix filter keeps
    assert at.text_input(key="ckpt_step").value == "120"
    at.text_input(key="ckpt_step").input("57").run()
    _clean(at)
    assert at.selectbox(key="ckpt").value == "model.ckpt-57"
    assert _param(at, "ckpt") == "model.ckpt-57"  # the link keeps it
    assert at.text_input(key="ckpt_step").value == "57"
    at.text_input(key="ckpt_step").input("575").run()
    assert at.selectbox(key="ckpt").value == "model.ckpt-57"
    assert any("No checkpoint at step 575" in c.value for c in at.sidebar.caption)
    at.selectbox(key="ckpt").select("model.ckpt-75").run()
    assert at.text_input(key="ckpt_step").value == "75"  # the box follows the choice


def test_a_link_to_a_step_opens_it(long_run):
    at = _app(root=long_run, ckpt="model.ckpt-57")
    _clean(at)
    assert at.selectbox(key="ckpt").value == "model.ckpt-57" and at.text_input(key="ckpt_step").value == "57"


# --- Diff's pickers ------------------------------------------------------------------------------------
def test_diff_pickers_list_newest_first_and_jump_to_a_step():
    at = _app(run=CNN, page="pages/diff.py")
    _clean(at)
    a, b = at.selectbox(key="a_ckpt"), at.selectbox(key="b_ckpt")
    assert a.options[0] == b.options[0] == "1000 ★" and a.options[-1] == "200 · preserved"
    assert _filter_mode(a) == _filter_mode(b) == "FILTER_MODE_PREFIX"
    assert (a.value, b.value) == ("model.ckpt-900", "model.ckpt-1000")
    at.text_input(key="a_ckpt_step").input("200").run()
    _clean(at)
    assert at.selectbox(key="a_ckpt").value == "model.ckpt-200" and _param(at, "a_ckpt") == "model.ckpt-200"


def test_diff_pickers_offer_only_usable_checkpoints():
    at = _app(run="from_cluster", page="pages/diff.py")
    assert not at.exception
    assert at.selectbox(key="a_ckpt").options == ["1000 · orphan", "600", "400", "300", "200 · preserved"]


# --- Variables: filters in the URL -------------------------------------------------------------------
def test_a_link_to_an_optimizer_slot_opens_that_slot():
    at = _app(run=CNN, var="conv1/weights/Adam", page="pages/variables.py")
    _clean(at)
    # Before: the kind filter hid optimizer slots, and the page silently opened conv1/biases.
    assert at.subheader[0].value == "conv1/weights/Adam"
    assert "optimizer" in at.multiselect(key="vkinds").value
    assert "optimizer" in at.query_params["vkinds"]
    assert any("optimizer variables too" in i.value for i in at.info)
    at.multiselect(key="vkinds").unselect("optimizer").run()  # the person's choice wins from then on
    _clean(at)
    assert "optimizer" not in at.multiselect(key="vkinds").value
    assert at.subheader[0].value != "conv1/weights/Adam" and "vkinds" not in at.query_params


def test_variables_filters_round_trip_through_the_url():
    at = _app(run=CNN, page="pages/variables.py")
    _clean(at)
    at.text_input(key="vfilter").input("conv2").run()
    at.multiselect(key="vkinds").select("optimizer").run()
    at.selectbox(key="var").select("conv2/weights/Adam_1").run()
    _clean(at)
    link = {k: at.query_params[k] for k in ("run", "ckpt", "vfilter", "vkinds", "var")}
    assert _param(at, "vfilter") == "conv2" and "optimizer" in link["vkinds"]
    shown = list(at.dataframe[0].value["key"])
    teammate = _app(page="pages/variables.py", **link)
    _clean(teammate)
    assert teammate.text_input(key="vfilter").value == "conv2"
    assert teammate.multiselect(key="vkinds").value == at.multiselect(key="vkinds").value
    assert list(teammate.dataframe[0].value["key"]) == shown
    assert teammate.subheader[0].value == "conv2/weights/Adam_1"
    assert not teammate.info  # nothing had to be widened


def test_a_link_whose_name_filter_hides_its_variable_clears_the_filter():
    at = _app(run=CNN, var="conv1/weights", vfilter="logits", page="pages/variables.py")
    _clean(at)
    assert at.subheader[0].value == "conv1/weights"
    assert at.text_input(key="vfilter").value == "" and "vfilter" not in at.query_params


def test_a_link_may_name_a_tf2_variable_by_its_display_name():
    at = _app(run="mnist_tf2", var="optimizer/_variables/4", page="pages/variables.py")
    _clean(at)
    assert _param(at, "var") == "optimizer/_variables/4"  # the URL keeps the real name, not the key
    assert at.subheader[0].value == "optimizer/_variables/4"
    keyed = _app(run="mnist_tf2", var="optimizer/_variables/4/.ATTRIBUTES/VARIABLE_VALUE", page="pages/variables.py")
    assert keyed.subheader[0].value == "optimizer/_variables/4" and _param(keyed, "var") == "optimizer/_variables/4"
