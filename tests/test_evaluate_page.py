"""AppTest: the Evaluate page follows the sidebar, keeps every choice in the URL, links accuracy points to
the Diff, and adapts its charts and words to runs with one checkpoint or no complete one."""

import json
import os
import shutil
from urllib.parse import parse_qsl

import pytest
from page_links import assert_rendered, open_page
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard.py")
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN = "mnist_cnn/lr3e-3_bs100"


@pytest.fixture(autouse=True)
def _restore_env(restored_root):
    yield


def _evaluate(params: dict, root: str = SAMPLES) -> AppTest:
    """The Evaluate page opened from a link with these query parameters (lists repeat the key)."""
    return open_page("evaluate", root, params, timeout=120)


def _clean(at: AppTest) -> AppTest:
    return assert_rendered(at)


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures by title."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"].get("title", {}).get("text", ""): spec for spec in specs}


def _accuracy_chart(at: AppTest) -> dict:
    return next(spec for title, spec in _charts(at).items() if title.startswith("Test accuracy by step"))


def _url(at: AppTest) -> dict:
    return {key: at.query_params[key] for key in at.query_params}


def _all(value) -> list:
    """A query parameter's values (AppTest gives a repeated key as a list, a single one as a string)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def test_output_picker_shows_each_runs_suggestions_after_switching_run():
    at = _clean(_evaluate({"run": "linear"}))
    seen = []
    for run in ("linear", CNN, "mnist_cnn/lr5e-3_bs50", "linear"):
        if at.selectbox(key="run").value != run:
            at.selectbox(key="run").select(run).run()
            _clean(at)
        picker = at.multiselect(key="freeze_outputs")
        seen.append(picker.value)
        assert picker.value, f"blank output picker after switching to {run}"
        assert picker.value == picker.options[:1]
        assert not at.button(key="freeze").disabled
    assert seen == [["linear/prediction"], ["logits/logits"], ["logits/logits"], ["linear/prediction"]]


def test_a_changed_output_choice_is_kept_in_the_url_and_reset_by_another_run():
    at = _clean(_evaluate({"run": CNN}))
    at.multiselect(key="freeze_outputs").set_value(["prediction/probabilities"]).run()
    assert _all(at.query_params["freeze_outputs"]) == ["prediction/probabilities"]
    linked = _clean(_evaluate(_url(at)))
    assert linked.multiselect(key="freeze_outputs").value == ["prediction/probabilities"]
    at.selectbox(key="run").select("mnist_cnn/lr5e-3_bs50").run()
    assert at.multiselect(key="freeze_outputs").value == ["logits/logits"]
    assert "freeze_outputs" not in at.query_params


def test_every_evaluate_choice_and_result_round_trips_through_the_url():
    at = _clean(_evaluate({"run": CNN}))
    at.selectbox(key="eval_device").select("cpu")
    at.number_input(key="eval_limit").set_value(500)
    at.checkbox(key="eval_raw").check()
    at.checkbox(key="eval_raw").uncheck()
    at.text_area(key="eval_feeds").input("keep_prob=1.0")
    at.text_input(key="eval_input").input("input:0")
    at.button(key="evaluate").click().run()
    _clean(at)
    accuracy = next(m.value for m in at.metric if m.label == "Accuracy")
    url = _url(at)
    assert url["eval_model"] == "run:frozen.pb" and url["eval_device"] == "cpu" and url["eval_limit"] == "500"
    assert url["eval_feeds"] == "keep_prob=1.0" and url["eval_input"] == "input:0" and url["evaluated"] == "1"

    linked = _clean(_evaluate(url))  # a teammate opens the link: same choices, same result, no click
    assert linked.selectbox(key="eval_model").value == "run:frozen.pb"
    assert linked.selectbox(key="eval_device").value == "cpu"
    assert linked.number_input(key="eval_limit").value == 500
    assert linked.text_area(key="eval_feeds").value == "keep_prob=1.0"
    assert linked.text_input(key="eval_input").value == "input:0"
    assert next(m.value for m in linked.metric if m.label == "Accuracy") == accuracy
    assert next(m.value for m in linked.metric if m.label == "Test images") == "500"

    # Changing an option after evaluating: the old result is not shown as if it were the new one.
    linked.number_input(key="eval_limit").set_value(600).run()
    assert not any(m.label == "Accuracy" for m in linked.metric)
    assert "evaluated" not in linked.query_params


def test_what_was_frozen_and_accuracy_over_the_run_round_trip_through_the_url():
    at = _clean(_evaluate({"run": CNN}))
    at.number_input(key="eval_limit").set_value(300)
    at.button(key="freeze").click().run()
    _clean(at)
    assert at.selectbox(key="eval_model").value == "frozen"
    at.button(key="evaluate").click().run()
    at.button(key="eval_history").click().run()
    _clean(at)
    url = _url(at)
    assert _all(url["frozen"]) == ["logits/logits"] and _all(url["eval_over_run"]) == ["logits/logits"]
    best = next(s.value for s in at.success if s.value.startswith("Best: step"))

    linked = _clean(_evaluate(url))
    assert any(s.value.startswith("Froze model.ckpt-1000") for s in linked.success)
    assert linked.selectbox(key="eval_model").value == "frozen"
    assert next(m.value for m in linked.metric if m.label == "Test images") == "300"
    assert best in [s.value for s in linked.success]

    # Freezing again with other outputs: the new graph is the one shown, kept and evaluated.
    linked.multiselect(key="freeze_outputs").set_value(["prediction/probabilities"]).run()
    linked.button(key="freeze").click().run()
    _clean(linked)
    assert any("outputs prediction/probabilities" in s.value for s in linked.success)
    assert _all(linked.query_params["frozen"]) == ["prediction/probabilities"]
    assert "prediction/probabilities" in linked.session_state["frozen"].outputs


def _history_page(root: str = SAMPLES, run: str = CNN) -> AppTest:
    return _clean(_evaluate({"run": run, "eval_over_run": "logits/logits"}, root))


def test_accuracy_points_link_to_the_diff_against_the_previous_checkpoint():
    at = _history_page()
    table = at.dataframe[-1].value
    links = dict(zip(table["step"], table["diff against"]))
    assert links[200] == ""  # the first checkpoint has none before it (an empty cell, not None)
    params = dict(parse_qsl(links[800].split("?", 1)[1]))
    assert params == {"root": SAMPLES, "run": CNN, "ckpt": "model.ckpt-800", "a_run": CNN,
                      "a_ckpt": "model.ckpt-700", "b_run": CNN, "b_ckpt": "model.ckpt-800"}
    chart = _accuracy_chart(at)
    assert chart["data"][0]["customdata"][list(chart["data"][0]["x"]).index(800)] == links[800]

    # The link opens the Diff of 700 → 800 in a fresh session.
    os.environ["CKPTLIB_ROOT"] = SAMPLES
    diff = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        diff.query_params[key] = value
    diff.switch_page("pages/diff.py")
    _clean(diff.run())
    assert diff.selectbox(key="a_ckpt").value == "model.ckpt-700"
    assert diff.selectbox(key="b_ckpt").value == "model.ckpt-800"

    # A click on the chart (its on_select callback) moves the sidebar and switches to that Diff.
    from ui.evaluate_state import GOTO_DIFF

    at.session_state["ckpt"] = "model.ckpt-800"
    at.session_state[GOTO_DIFF] = params
    at.run()
    _clean(at)
    assert at.title[0].value == "Diff"
    assert at.selectbox(key="a_ckpt").value == "model.ckpt-700"
    assert at.selectbox(key="b_ckpt").value == "model.ckpt-800"


def _one_checkpoint_root(tmp_path) -> str:
    run = tmp_path / "root" / "single"
    run.mkdir(parents=True)
    for name in os.listdir(os.path.join(SAMPLES, CNN)):
        if name.startswith("model.ckpt-1000."):
            shutil.copy2(os.path.join(SAMPLES, CNN, name), run / name)
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1000"\n'
                                    'all_model_checkpoint_paths: "model.ckpt-1000"\n')
    return str(tmp_path / "root")


def test_a_one_checkpoint_run_gets_sensible_charts(tmp_path):
    at = _clean(_evaluate({"run": "single"}, _one_checkpoint_root(tmp_path)))
    at.button(key="eval_history").click().run()
    _clean(at)
    charts = _charts(at)
    accuracy = _accuracy_chart(at)["layout"]
    low, high = accuracy["yaxis"]["range"]
    assert 0 <= low < high <= 1  # never an axis of 0–150 %
    assert accuracy["xaxis"]["tickvals"] == [1000] and accuracy["xaxis"]["tickformat"] == "d"
    assert "Weight norms (L2) by step" not in charts  # no empty plot: a sentence instead
    assert any("Weight norms by step need two readable checkpoints" in i.value for i in at.info)
    assert at.dataframe[-1].value["diff against"].tolist() == [""]


def test_choose_another_one_only_when_the_run_has_another_complete_checkpoint(tmp_path):
    at = _clean(_evaluate({"run": "from_cluster", "ckpt": "model.ckpt-500"}))  # its data shard is missing
    warning = next(w.value for w in at.warning if "incomplete or missing" in w.value)
    assert "choose another one" in warning and "model.ckpt-600" in warning  # the newest kept one, not the orphan
    assert at.button(key="freeze").disabled

    run = tmp_path / "root" / "broken"
    run.mkdir(parents=True)
    for name in ("model.ckpt-500.index", "model.ckpt-500.meta"):
        shutil.copy2(os.path.join(SAMPLES, "from_cluster", name), run / name)
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-500"\n'
                                    'all_model_checkpoint_paths: "model.ckpt-500"\n')
    at = _clean(_evaluate({"run": "broken"}, str(tmp_path / "root")))
    warning = next(w.value for w in at.warning if "incomplete or missing" in w.value)
    assert "choose another" not in warning and "no complete checkpoint" in warning


def _root_with_links(tmp_path) -> str:
    """A root holding one run whose folder has its frozen.pb, a link to it, and a link to a .pb elsewhere."""
    run = tmp_path / "root" / "cnn"
    run.mkdir(parents=True)
    for name in os.listdir(os.path.join(SAMPLES, CNN)):
        if name.startswith("model.ckpt-1000.") or name == "frozen.pb":
            shutil.copy2(os.path.join(SAMPLES, CNN, name), run / name)
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1000"\n')
    (tmp_path / "elsewhere").mkdir()
    shutil.copy2(run / "frozen.pb", tmp_path / "elsewhere" / "secret.pb")
    os.symlink(tmp_path / "elsewhere" / "secret.pb", run / "outside.pb")
    os.symlink(run / "frozen.pb", run / "inside.pb")
    return str(tmp_path / "root")


def test_the_page_reads_only_inside_its_roots(tmp_path, monkeypatch):
    from graph_fixtures import MNIST_DIR

    monkeypatch.delenv("CKPTLIB_MNIST_DIR", raising=False)
    at = _clean(_evaluate({"run": "cnn", "eval_model": "run:frozen.pb", "eval_limit": "200"}, _root_with_links(tmp_path)))
    offered = at.selectbox(key="eval_model").options
    assert "in the run folder: inside.pb" in offered and not [o for o in offered if "outside.pb" in o]
    assert any("outside.pb is a link to a file outside the run folder" in c.value for c in at.caption)
    refusals = []
    for path in (str(tmp_path / "elsewhere"), str(tmp_path / "no_such_folder"), "/etc"):
        at.text_input(key="eval_mnist").input(path)
        at.button(key="evaluate").click().run()
        assert not at.exception and not any(m.label == "Accuracy" for m in at.metric)
        refusals.append(at.error[0].value.replace(path, "PATH"))
    assert len(set(refusals)) == 1 and "outside the folders this dashboard may read" in refusals[0]  # exists or not
    monkeypatch.setenv("CKPTLIB_MNIST_DIR", MNIST_DIR)  # the data folder the dashboard was started with
    at.text_input(key="eval_mnist").input(MNIST_DIR)
    at.button(key="evaluate").click().run()
    _clean(at)
    assert next(m.value for m in at.metric if m.label == "Test images") == "200"


def test_the_limits_live_in_the_url_and_reach_the_evaluation(tmp_path):
    at = _clean(_evaluate({"run": "cnn", "eval_model": "run:frozen.pb", "eval_limit": "100",
                           "eval_memory_limit": "1"}, _root_with_links(tmp_path)))
    assert at.number_input(key="eval_time_limit").value == 120
    assert at.number_input(key="eval_memory_limit").value == 256  # the lowest the form offers
    at.number_input(key="eval_time_limit").set_value(60)
    at.number_input(key="eval_memory_limit").set_value(2048)
    at.button(key="evaluate").click().run()
    _clean(at)
    assert at.query_params["eval_time_limit"] == "60" and at.query_params["eval_memory_limit"] == "2048"
    request = at.session_state["eval_done"]
    assert ("memory_limit", 2048) in request[1] and ("time_limit", 60) in request[1]
    assert next(m.value for m in at.metric if m.label == "Test images") == "100"


def test_a_saved_model_run_is_evaluated_by_its_signature():
    import numpy as np
    import tensorflow as tf

    from ckptlib.evaluate.mnist import load_mnist_test

    at = _clean(_evaluate({"run": "mnist_keras/export"}))
    assert at.selectbox(key="eval_model").value == "run:export"
    assert at.selectbox(key="sig").options[0] == "serving_default"
    at.number_input(key="eval_limit").set_value(500)
    at.button(key="evaluate").click().run()
    _clean(at)
    shown = next(m.value for m in at.metric if m.label == "Accuracy")
    assert _url(at)["sig"] == "serving_default"
    data = load_mnist_test(os.path.join(SAMPLES, "mnist_test"))
    signature = tf.saved_model.load(os.path.join(SAMPLES, "mnist_keras", "export")).signatures["serving_default"]
    images = data.images[:500].reshape(500, -1).astype(np.float32) / 255.0
    (logits,) = signature(tf.constant(images)).values()
    expected = float(np.mean(np.argmax(logits.numpy(), axis=1) == data.labels[:500]))
    assert shown == f"{expected:.2%}"
