"""AppTest: every page renders on the bundled sample runs without an exception and shows their rows."""

import os
import subprocess
import sys

import pytest
from page_links import APP
from streamlit.testing.v1 import AppTest

SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")


def _app(run: str | None = None, ckpt: str | None = None, var: str | None = None, root: str = SAMPLES) -> AppTest:
    os.environ["CKPTLIB_ROOT"] = root
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (("run", run), ("ckpt", ckpt), ("var", var)):
        if value is not None:
            at.query_params[key] = value
    return at


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


pytestmark = pytest.mark.usefixtures("restored_root")  # CKPTLIB_ROOT as it was, after each test


def test_history_page_lists_the_sample_run_checkpoints():
    at = _app(run="linear").run()
    _assert_clean(at)
    assert at.title[0].value == "History"
    table = at.dataframe[0].value
    names = set(table["checkpoint"])
    on_disk = {f[: -len(".index")] for f in os.listdir(os.path.join(SAMPLES, "linear")) if f.endswith(".index")}
    assert names == on_disk
    assert list(table["step"]) == sorted(table["step"])
    assert (table["status"] == "latest").sum() == 1


def test_history_page_explains_a_run_copied_from_a_cluster():
    at = _app(run="from_cluster").run()
    assert not at.exception
    text = " ".join(w.value for w in at.warning) + " ".join(i.value for i in at.info)
    assert "orphan" in text and "missing" in text and "incomplete" in text
    assert "another machine" in text
    table = at.dataframe[0].value
    assert set(table["status"]) >= {"orphan", "missing", "incomplete"}


def test_variables_page_shows_every_variable_and_the_chosen_one():
    at = _app(run="linear", var="linear/weights")
    at.switch_page("pages/variables.py")
    at.run()
    _assert_clean(at)
    keys = set(at.dataframe[0].value["key"])
    assert "linear/weights" in keys
    assert at.subheader[0].value == "linear/weights"
    assert at.query_params["var"] == ["linear/weights"] or at.query_params["var"] == "linear/weights"
    assert any(m.label == "l2" for m in at.metric)


def test_variables_page_on_a_cnn_checkpoint_shows_a_kernel_heatmap_and_hides_adam_slots():
    runs = sorted(os.listdir(os.path.join(SAMPLES, "mnist_cnn")))
    run = f"mnist_cnn/{[r for r in runs if os.path.isdir(os.path.join(SAMPLES, 'mnist_cnn', r))][0]}"
    at = _app(run=run)
    at.switch_page("pages/variables.py")
    at.run()
    _assert_clean(at)
    table = at.dataframe[0].value
    assert not table["key"].str.endswith("/Adam").any()
    assert set(table["kind"]) <= {"model", "counter", "metadata"}
    kernel = next(k for k in table["key"] if k.startswith("conv1/") and "bias" not in k)
    at.selectbox(key="var").select(kernel).run()
    _assert_clean(at)
    assert at.subheader[0].value == kernel


def test_a_root_without_checkpoints_says_so(tmp_path):
    at = _app(root=str(tmp_path)).run()
    assert not at.exception
    assert any("No checkpoints" in i.value for i in at.sidebar.info)


CNN = "mnist_cnn/lr3e-3_bs100"


def test_diff_page_ranks_the_changes_between_two_steps_and_keeps_them_in_the_url():
    at = _app(run=CNN)
    at.query_params["a_ckpt"] = "model.ckpt-200"
    at.query_params["b_ckpt"] = "model.ckpt-1000"
    at.switch_page("pages/diff.py")
    at.run()
    _assert_clean(at)
    metrics = {m.label: int(m.value) for m in at.metric}
    from ckptlib.compare.diff import diff_checkpoints
    from ckptlib.runs.resolve import open_checkpoint

    run_dir = os.path.join(SAMPLES, CNN)
    expected = diff_checkpoints(open_checkpoint(os.path.join(run_dir, "model.ckpt-200")),
                                open_checkpoint(os.path.join(run_dir, "model.ckpt-1000"))).summary
    assert metrics == {k.replace("_", " "): v for k, v in expected.items()}
    table = at.dataframe[0].value
    assert set(table["kind"]) == {"model"}  # optimizer slots and counters hidden by default
    changes = list(table["rel_change"])
    assert changes == sorted(changes, reverse=True)
    assert at.query_params["a_ckpt"] in ("model.ckpt-200", ["model.ckpt-200"])
    assert at.subheader[0].value == at.selectbox(key="dvar").value


def test_diff_page_applies_a_mapping_rule():
    at = _app(run=CNN)
    at.query_params["a_ckpt"] = "model.ckpt-900"
    at.query_params["map"] = "^conv1/=nope/"
    at.switch_page("pages/diff.py")
    at.run()
    _assert_clean(at)
    metrics = {m.label: int(m.value) for m in at.metric}
    assert metrics["added"] == metrics["removed"] > 0  # conv1 renamed away on A's side only
    assert any("look renamed" in i.value for i in at.info)


def test_diff_page_reports_a_bad_rule_as_an_error():
    at = _app(run=CNN)
    at.query_params["map"] = "([=x"
    at.switch_page("pages/diff.py")
    at.run()
    assert not at.exception
    assert at.error and "rule" in at.error[0].value.lower()


def test_trends_page_shows_the_change_matrix_and_the_chosen_variable():
    at = _app(run=CNN, var="conv2/weights")
    at.switch_page("pages/trends.py")
    at.run()
    _assert_clean(at)
    table = at.dataframe[-1].value
    from ckptlib.runs.history import load_history

    complete = [e.step for e in load_history(os.path.join(SAMPLES, CNN)).checkpoints if e.complete]
    assert list(table["step"]) == complete
    assert at.selectbox(key="var").value == "conv2/weights"
    assert any("No health flags" in s.value for s in at.success)


def test_graph_page_lists_collections_ops_and_suggests_the_logits():
    at = _app(run=CNN)
    at.switch_page("pages/graph.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    from ckptlib.graph.metagraph import read_meta_graph

    info = read_meta_graph(os.path.join(SAMPLES, CNN, "model.ckpt-1000.meta"))
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Operations"]) == info.num_ops
    outputs = at.dataframe[1].value
    assert outputs["name"].iloc[0] == "logits/logits"
    at.selectbox(key="collection").select("outputs").run()
    assert list(at.dataframe[2].value["item"]) == ["logits/logits:0"]
    at.toggle(key="clear_devices").set_value(True).run()
    assert not at.exception and not any("Device pins" in w.value for w in at.warning)


def test_evaluate_page_freezes_evaluates_and_plots_accuracy_over_the_run():
    at = _app(run=CNN)
    at.switch_page("pages/evaluate.py")
    at.run()
    _assert_clean(at)
    at.number_input(key="eval_limit").set_value(1000)
    at.button(key="freeze").click().run()
    _assert_clean(at)
    frozen = at.session_state["frozen"]
    assert not frozen.output.startswith(SAMPLES)  # never written inside a checkpoint folder
    at.button(key="evaluate").click().run()
    _assert_clean(at)
    accuracy = next(m.value for m in at.metric if m.label == "Accuracy")
    from ckptlib.evaluate.evaluation import evaluate

    direct = evaluate(frozen.output, limit=1000)
    assert accuracy == f"{direct.accuracy:.2%}"
    assert at.image, "the misclassified gallery shows digits"
    at.button(key="eval_history").click().run()
    _assert_clean(at)
    assert any(s.value.startswith("Best: step") for s in at.success)


def test_diff_filters_live_in_the_url():
    at = _app(run=CNN)
    at.query_params["kinds"] = ["model", "optimizer"]
    at.query_params["scope"] = "conv1"
    at.switch_page("pages/diff.py")
    at.run()
    _assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["kind"]) == {"model", "optimizer"}
    assert table["name"].str.contains("conv1").all() and len(table) > 2


def test_diff_status_filter_follows_a_new_pair_of_checkpoints():
    at = _app(run=CNN)
    at.query_params["a_ckpt"] = "model.ckpt-900"
    at.switch_page("pages/diff.py")
    at.run()
    at.multiselect(key="diff_status").set_value(["unchanged"]).run()
    assert at.dataframe[0].value.empty  # model weights all changed between 900 and 1000
    at.selectbox(key="a_ckpt").select("model.ckpt-200").run()
    _assert_clean(at)
    shown = at.multiselect(key="diff_status").value
    assert shown == ["changed"] and set(at.dataframe[0].value["status"]) == {"changed"}


def test_history_and_variables_pages_render_without_importing_tensorflow():
    # A separate interpreter: this one has TensorFlow loaded by other tests.
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60)\n"
        f"at.query_params['run'] = {CNN!r}\n"
        "at.run()\n"
        "at.switch_page('pages/variables.py')\n"
        "at.run()\n"
        "assert not at.exception and at.dataframe, 'pages did not render'\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ, CKPTLIB_ROOT=SAMPLES)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
