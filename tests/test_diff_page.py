"""AppTest of the Diff page: rename rules with their pair counts, add/strip prefix, the variable that moved most,
and every view choice kept in the URL (issue 15, items 2, 3 and 7)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from page_links import assert_rendered, open_page
from streamlit.testing.v1 import AppTest
from test_rename_rules import BACKBONE_RULE, backbone_values, finetune_pair

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN = "mnist_cnn/lr3e-3_bs100"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """pretrained/ and finetuned/ (the backbone moved under model/backbone/), plus a prefix-swapped pair."""
    import cmpbuild

    folder = tmp_path_factory.mktemp("diff_page_root")
    finetune_pair(cmpbuild, folder)
    weights = {k: v for k, v in backbone_values().items() if not k.endswith("/Adam")}
    cmpbuild.save_v1(str(folder / "resnet" / "model.ckpt"), {f"resnet/{k}": v for k, v in weights.items()}, step=1)
    cmpbuild.save_v1(str(folder / "prefixed" / "model.ckpt"),
                     {f"model/backbone/{k}": v + 1 for k, v in weights.items()}, step=2)
    return str(folder)


@pytest.fixture(autouse=True)
def _restore_env(restored_root):
    yield


def _diff_page(folder: str, /, **params) -> AppTest:
    return open_page("diff", folder, params, timeout=60)


def _clean(at: AppTest) -> None:
    assert_rendered(at)


def _metrics(at: AppTest) -> dict[str, int]:
    return {m.label: int(m.value) for m in at.metric}


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _finetune(root: str, **params) -> AppTest:
    return _diff_page(root, run="finetuned", a_run="pretrained", a_ckpt="model.ckpt-100", **params)


def test_the_suggested_rule_says_what_it_pairs_and_applying_it_pairs_only_the_backbone(root):
    at = _finetune(root)
    _clean(at)
    assert _metrics(at)["removed"] == _metrics(at)["added"] == 5
    (shown,) = [m.value for m in at.markdown if BACKBONE_RULE in m.value]
    assert "would pair 5 variable(s); nothing would stay unpaired" in shown
    at.button(key="apply_rule_0").click().run()
    _clean(at)
    assert at.text_area(key="map").value == BACKBONE_RULE and _param(at, "map") == BACKBONE_RULE
    metrics = _metrics(at)
    assert (metrics["added"], metrics["removed"], metrics["unchanged"], metrics["changed"]) == (0, 0, 5, 3)
    table = at.dataframe[0].value  # model weights: the backbone unchanged, the head changed
    status = dict(zip(table["name"], table["status"]))
    assert status["logits/weights"] == status["logits/biases"] == "changed"
    assert {status[f"model/backbone/{k}"] for k in ("conv1/weights", "conv2/biases")} == {"unchanged"}
    assert not any("look renamed" in i.value for i in at.info)  # no inverse rule offered afterwards


def test_a_typed_rule_with_a_back_reference_works(root):
    at = _finetune(root)
    at.text_area(key="map").input(BACKBONE_RULE).run()
    _clean(at)
    assert _metrics(at)["added"] == 0 and _param(at, "map") == BACKBONE_RULE


def test_add_prefix_and_strip_prefix_fields_map_names_and_stay_in_the_url(root):
    at = _diff_page(root, run="prefixed", a_run="resnet", a_ckpt="model.ckpt-1")
    _clean(at)
    assert _metrics(at)["removed"] == 4
    at.text_input(key="strip").input("resnet/").run()
    at.text_input(key="add").input("model/backbone/").run()
    _clean(at)
    metrics = _metrics(at)
    assert (metrics["removed"], metrics["added"], metrics["changed"]) == (0, 0, 4)
    assert (_param(at, "strip"), _param(at, "add")) == ("resnet/", "model/backbone/")
    # The link alone gives the same view in a new session.
    again = _diff_page(root, run="prefixed", a_run="resnet", a_ckpt="model.ckpt-1", strip="resnet/",
                       add="model/backbone/")
    _clean(again)
    assert _metrics(again) == metrics and again.text_input(key="add").value == "model/backbone/"


def test_add_prefix_alone_prefixes_every_name(root):
    at = _diff_page(root, run="finetuned", a_run="pretrained", a_ckpt="model.ckpt-100", add="model/backbone/")
    _clean(at)
    metrics = _metrics(at)
    assert metrics["unchanged"] == 5 and metrics["removed"] == metrics["added"] == 3  # the head moved too


def _expected_top(a: str, b: str) -> str:
    from ckptlib.compare.diff import diff_checkpoints
    from ckptlib.runs.resolve import open_checkpoint

    run = os.path.join(SAMPLES, CNN)
    diff = diff_checkpoints(open_checkpoint(os.path.join(run, a)), open_checkpoint(os.path.join(run, b)))
    return max((r for r in diff.variables if r.kind == "model" and r.status == "changed"),
               key=lambda r: r.rel_change).name


def test_the_variable_picker_starts_at_the_largest_change_of_each_new_pair():
    at = _diff_page(SAMPLES, run=CNN, a_ckpt="model.ckpt-900")
    _clean(at)
    assert at.selectbox(key="dvar").value == _expected_top("model.ckpt-900", "model.ckpt-1000")
    at.selectbox(key="a_ckpt").select("model.ckpt-200").run()
    _clean(at)
    top = _expected_top("model.ckpt-200", "model.ckpt-1000")
    assert top != _expected_top("model.ckpt-900", "model.ckpt-1000")
    assert at.selectbox(key="dvar").value == top and _param(at, "dvar") == top
    assert at.subheader[0].value == top


def test_a_variable_in_the_url_wins_also_when_a_link_changes_the_pair():
    at = _diff_page(SAMPLES, run=CNN, a_ckpt="model.ckpt-200", dvar="conv1/weights")
    assert at.selectbox(key="dvar").value == "conv1/weights"
    # A link from Trends in the same session: another pair, and the variable to show.
    at.switch_page("pages/trends.py").run()
    for key, value in {"a_run": CNN, "b_run": CNN, "a_ckpt": "model.ckpt-700", "b_ckpt": "model.ckpt-800",
                       "dvar": "conv2/weights"}.items():
        at.query_params[key] = value
    at.switch_page("pages/diff.py").run()
    _clean(at)
    assert at.selectbox(key="dvar").value == "conv2/weights"


def test_every_diff_choice_survives_a_shared_link(root):
    at = _finetune(root)
    at.text_area(key="map").input(BACKBONE_RULE).run()
    at.text_input(key="atol").input("0.001").run()
    at.multiselect(key="kinds").set_value(["model", "counter"]).run()
    at.multiselect(key="diff_status").set_value(["changed"]).run()
    at.text_input(key="scope").input("o").run()
    at.selectbox(key="dvar").select("global_step").run()
    _clean(at)
    view = {k: at.query_params[k] for k in at.query_params}
    for key in ("map", "atol", "kinds", "status", "scope", "dvar", "a_run", "a_ckpt", "b_run", "b_ckpt"):
        assert key in view, key
    fresh = _diff_page(root, **view)
    _clean(fresh)
    assert fresh.multiselect(key="diff_status").value == ["changed"]
    assert fresh.multiselect(key="kinds").value == ["model", "counter"]
    assert fresh.selectbox(key="dvar").value == "global_step"
    assert (fresh.text_area(key="map").value, fresh.text_input(key="atol").value) == (BACKBONE_RULE, "0.001")
    assert fresh.dataframe[0].value.equals(at.dataframe[0].value)
    assert set(fresh.dataframe[0].value["name"]) == {"logits/weights", "logits/biases", "global_step"}


def test_the_status_filter_resets_for_a_new_pair_and_leaves_the_url(root):
    at = _finetune(root)
    at.multiselect(key="diff_status").set_value(["added"]).run()
    assert _param(at, "status") == "added"
    at.text_area(key="map").input(BACKBONE_RULE).run()  # new rules: a new diff with other statuses
    _clean(at)
    assert at.multiselect(key="diff_status").value == ["changed", "unchanged"]
    assert "status" not in at.query_params
    assert np.all(at.dataframe[0].value["status"].isin(["changed", "unchanged"]))


def test_two_identical_checkpoints_get_a_sentence_not_an_empty_bar_chart():
    at = _diff_page(SAMPLES, run="mnist_tf2", a_run="mnist_tf2", a_ckpt="ckpt-8", b_run="mnist_tf2", b_ckpt="ckpt-8",
                    )
    _clean(at)
    assert any(i.value.startswith("No variable moved between A and B: all ") for i in at.info), [i.value for i in at.info]
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert not any("Relative change" in t for t in titles)


def test_the_change_bars_name_variables_as_the_table_does():
    at = _diff_page(SAMPLES, run="mnist_tf2", a_run="mnist_tf2", a_ckpt="ckpt-6", b_run="mnist_tf2", b_ckpt="ckpt-8")
    _clean(at)
    bars = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "Relative change" in json.loads(c.proto.spec)["layout"].get("title", {}).get("text", ""))
    names = bars["data"][0]["y"]
    assert names and not any(".ATTRIBUTES" in n for n in names) and "model/hidden/w" in names
    assert set(names) <= set(at.dataframe[0].value["name"])
