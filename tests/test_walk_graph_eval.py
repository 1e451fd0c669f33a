"""AppTest: what a new user's walk through the Graph and Evaluate pages found (words that fit the run's kind, a
run switch forgetting the previous run's view, the accuracy table and chart, the uploader's place, notes)."""

import json
import os
import shutil

import pytest
from page_links import assert_rendered, open_page
from streamlit.testing.v1 import AppTest

from ckptlib.review.store import ReviewStore

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_checkpoints")
CNN, TF2, KERAS, EXPORT = "mnist_cnn/lr3e-3_bs100", "mnist_tf2", "mnist_keras/epochs", "mnist_keras/export"
OTHER_CNN = "mnist_cnn/lr5e-3_bs50"
GRAPH_VIEW = {"meta": "model.ckpt-600.meta", "op": "logits/logits", "collection": "global_step"}


@pytest.fixture(autouse=True)
def _env(restored_root):
    yield


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    monkeypatch.setenv("CKPTLIB_DB", url)
    return ReviewStore(url)


def _said(at: AppTest) -> str:
    return " ".join(e.value for kind in ("info", "caption", "warning", "markdown") for e in getattr(at, kind))


def _url(at: AppTest) -> dict:
    return {k: at.query_params[k] for k in at.query_params}


def _one(value):
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _elements(node):
    """Every element of the page, in the order drawn."""
    kids = getattr(node, "children", None)
    if not isinstance(kids, dict):
        yield node
        return
    for index in sorted(kids):
        yield from _elements(kids[index])


def _chart(at: AppTest, title: str) -> dict:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s for s in specs if (s["layout"].get("title") or {}).get("text") == title)


# --- 1, 2: the words fit the run's kind -------------------------------------------------------------------------


def test_graph_page_on_a_keras_run_does_not_give_the_saver_advice():
    at = assert_rendered(open_page("graph", SAMPLES, {"run": KERAS}, timeout=90))
    text = " ".join(i.value for i in at.info)
    assert "Keras files" in text and "model config, not a TensorFlow graph" in text, text
    assert "write_meta_graph" not in text and "Saver" not in text


def test_graph_page_on_a_tf2_run_still_says_object_based():
    at = assert_rendered(open_page("graph", SAMPLES, {"run": TF2}, timeout=90))
    text = " ".join(i.value for i in at.info)
    assert "TF2 object-based" in text and "write_meta_graph" not in text


def test_evaluate_on_a_saved_model_says_it_runs_through_its_signatures():
    at = assert_rendered(open_page("evaluate", SAMPLES, {"run": EXPORT}, timeout=120))
    text = " ".join(i.value for i in at.info)
    assert "is a SavedModel" in text and "signatures in step 2" in text, text
    assert "TF2 object-based" not in text and "no graph to freeze" not in text


# --- 3: a run switch forgets the previous run's view; a shared link keeps its own ------------------------------


def test_graph_view_of_one_run_is_dropped_when_the_sidebar_moves_to_another():
    at = assert_rendered(open_page("graph", SAMPLES, {"run": CNN, **GRAPH_VIEW}, timeout=90))
    url = _url(at)
    assert {k: _one(url.get(k)) for k in GRAPH_VIEW} == GRAPH_VIEW  # the link's first run keeps everything
    assert at.selectbox(key="meta").value == "model.ckpt-600.meta"
    at.selectbox(key="run").select(TF2).run()
    assert not at.exception
    assert not set(GRAPH_VIEW) & set(_url(at)), _url(at)
    # Straight to a run with the same file names: its own default graph (its latest's .meta), not the one chosen before.
    at = assert_rendered(open_page("graph", SAMPLES, {"run": CNN, **GRAPH_VIEW}, timeout=90))
    at.selectbox(key="run").select(OTHER_CNN).run()
    assert_rendered(at)
    latest = f"{at.selectbox(key='ckpt').value}.meta"
    assert latest != "model.ckpt-600.meta" and at.selectbox(key="meta").value == latest


def test_evaluate_forgets_a_saved_models_signature_on_a_tf1_run():
    at = assert_rendered(open_page("evaluate", SAMPLES, {"run": EXPORT, "sig": "serving_default"}, timeout=120))
    assert _one(_url(at)["sig"]) == "serving_default"
    at.selectbox(key="run").select(CNN).run()
    assert_rendered(at)
    assert "sig" not in _url(at), _url(at)
    assert "sig" not in at.session_state


# --- 4, 5: the accuracy table and the per-class chart ----------------------------------------------------------


def _two_checkpoint_root(tmp_path) -> str:
    run = tmp_path / "root" / "pair"
    run.mkdir(parents=True)
    for name in os.listdir(os.path.join(SAMPLES, CNN)):
        if name.startswith(("model.ckpt-900.", "model.ckpt-1000.")):
            shutil.copy2(os.path.join(SAMPLES, CNN, name), run / name)
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1000"\n'
                                    'all_model_checkpoint_paths: "model.ckpt-900"\n'
                                    'all_model_checkpoint_paths: "model.ckpt-1000"\n')
    return str(tmp_path / "root")


def test_accuracy_over_the_run_table_reads_like_the_chart(tmp_path):
    at = assert_rendered(open_page("evaluate", _two_checkpoint_root(tmp_path), {"run": "pair"}, timeout=180))
    at.button(key="eval_history").click().run()
    assert_rendered(at)
    table = at.dataframe[-1]
    frame = table.value
    assert list(frame["step"]) == [900, 1000]
    assert frame["diff against"].tolist()[0] in ("", "—")  # nothing before the first: not "None"
    assert frame["diff against"].tolist()[1].startswith("diff?")
    chart = _chart(at, "Test accuracy by step (click a point to diff it with the one before)")
    assert [round(100 * y, 6) for y in chart["data"][0]["y"]] == [round(a, 6) for a in frame["accuracy"]]
    config = json.loads(table.proto.columns)
    assert "%" in config["accuracy"]["type_config"]["format"]
    assert config["note"]["width"] == "large" or isinstance(config["note"]["width"], int) and config["note"]["width"] >= 300


def test_accuracy_per_class_labels_every_digit():
    at = assert_rendered(open_page("evaluate", SAMPLES, {"run": EXPORT, "eval_limit": "200"}, timeout=180))
    at.button(key="evaluate").click().run()
    assert_rendered(at)
    axis = _chart(at, "Accuracy per class")["layout"]["xaxis"]
    assert axis.get("dtick") == 1 or [str(v) for v in axis.get("tickvals", ())] == [str(i) for i in range(10)], axis


# --- 6: the uploader sits below the picker it is the alternative to -------------------------------------------


def test_the_upload_comes_after_the_graph_to_evaluate_picker():
    at = assert_rendered(open_page("evaluate", SAMPLES, {"run": CNN}, timeout=120))
    order = [(e.type, getattr(e, "key", None)) for e in _elements(at.main)]
    picker = order.index(("selectbox", "eval_model"))
    upload = next(i for i, (kind, _) in enumerate(order) if kind == "file_uploader")
    assert picker < upload < order.index(("selectbox", "eval_device"))


# --- 7: notes on the Evaluate and Graph pages ------------------------------------------------------------------


def _add_note(at: AppTest, key: str, text: str) -> AppTest:
    at.text_area(key=f"{key}_text_0").input(text)
    at.text_input(key=f"{key}_name").input("ana")
    return at.button(key=f"{key}_submit").click().run()


@pytest.mark.parametrize(("page", "key", "params", "checkpoint"), [
    ("evaluate", "evaluate", {"run": CNN, "ckpt": "model.ckpt-900"}, "model.ckpt-900"),
    ("graph", "graph", {"run": CNN, "meta": "model.ckpt-600.meta"}, "model.ckpt-600"),
])
def test_a_note_about_the_checkpoint_is_added_at_the_bottom(store, page, key, params, checkpoint):
    at = assert_rendered(open_page(page, SAMPLES, params, timeout=120))
    order = [(e.type, getattr(e, "key", None)) for e in _elements(at.main)]
    assert order[-1] == ("button", f"{key}_submit"), order[-3:]
    at = assert_rendered(_add_note(at, key, "98.9% on the test set: candidate to ship."))
    notes = store.notes(run=os.path.join(SAMPLES, CNN))
    assert [(n.text, os.path.basename(n.target.checkpoint)) for n in notes] == [
        ("98.9% on the test set: candidate to ship.", checkpoint)]
    assert any(s.value.startswith("Note ") for s in at.success)
    assert "98.9% on the test set" in _said(at)
