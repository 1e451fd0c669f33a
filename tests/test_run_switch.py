"""AppTest: switching run in the sidebar and back leaves no stale message, blank picker or unselected radio."""

from __future__ import annotations

import os

import pytest
from page_links import APP, open_page

SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
CNN, TF2 = "mnist_cnn/lr3e-3_bs100", "mnist_tf2"


def _said(at) -> str:
    return " ".join(m.value for kind in (at.info, at.warning, at.error) for m in kind)


def _radios_chosen(at) -> None:
    for radio in at.radio:
        assert radio.value is not None and radio.index is not None, (radio.label, radio.value)


def test_variables_forgets_a_variable_the_new_run_lacks_without_a_word(restored_root):
    at = open_page("variables", SAMPLES, {"run": CNN, "var": "conv1/weights"})
    assert not at.exception and at.selectbox(key="var").value == "conv1/weights"
    at.selectbox(key="run").select(TF2).run()
    assert not at.exception and "has no variable" not in _said(at), _said(at)
    assert at.selectbox(key="var").value is not None and at.selectbox(key="var").index is not None
    _radios_chosen(at)
    at.selectbox(key="run").select(CNN).run()
    assert not at.exception and "has no variable" not in _said(at)
    assert at.selectbox(key="var").value is not None and at.selectbox(key="var").index is not None
    _radios_chosen(at)


def test_a_link_to_a_missing_variable_still_says_so(restored_root):
    at = open_page("variables", SAMPLES, {"run": CNN, "var": "no/such/variable"})
    assert "This checkpoint has no variable 'no/such/variable'." in _said(at)


@pytest.mark.parametrize("page", ["history", "diff", "trends"])
def test_pages_survive_a_run_switch_and_back(restored_root, page):
    at = open_page(page, SAMPLES, {"run": CNN})
    assert not at.exception and not at.error
    for run in (TF2, "mnist_keras/epochs", CNN):
        at.selectbox(key="run").select(run).run()
        assert not at.exception, (run, [e.value for e in at.exception])
        assert not at.error, (run, [e.value for e in at.error])
        _radios_chosen(at)
        for box in at.selectbox:
            assert box.value is None or box.index is not None, (run, box.label)


@pytest.mark.parametrize(("run", "says", "never"), [
    (TF2, "TF2 object-based checkpoints carry no graph", "Freeze a checkpoint above"),
    ("mnist_keras/epochs", "Keras files hold weights and a model config", "Freeze a checkpoint above"),
])
def test_evaluate_explains_a_run_without_a_graph_for_its_kind(restored_root, run, says, never):
    at = open_page("evaluate", SAMPLES, {"run": run})
    assert not at.exception and not at.error
    assert says in _said(at) and never not in _said(at), _said(at)


def test_evaluate_on_a_tf1_run_that_lost_its_meta_does_not_blame_tf2(restored_root, tmp_path):
    from conftest import copy_run

    run = copy_run(os.path.join(SAMPLES, "linear"), tmp_path)
    for name in os.listdir(run):
        if name.endswith(".meta"):
            os.remove(os.path.join(run, name))
    at = open_page("evaluate", str(tmp_path), {"run": "linear"})
    assert not at.exception and "no .meta file beside its checkpoints" in _said(at) and "TF2" not in _said(at)
