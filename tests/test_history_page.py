"""AppTest of the History page on the TF2 and Keras samples: the timeline stands at the optimizer's steps, and
Keras files (no state file by design) are explained once, not warned about."""

from __future__ import annotations

import json
import os

from page_links import APP, open_page

from ckptlib.runs.history import load_history

SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")


def _timeline(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_a_tf2_run_is_drawn_at_its_optimizer_steps(restored_root):
    at = open_page("history", SAMPLES, {"run": "mnist_tf2"})
    assert not at.exception and not at.error
    figure = _timeline(at)
    assert figure["layout"]["yaxis"]["title"]["text"] == "training step (optimizer)"
    drawn = {y for trace in figure["data"] for y in trace["y"]}
    history = load_history(os.path.join(SAMPLES, "mnist_tf2"))
    assert drawn == {e.stored_step for e in history.checkpoints if e.mtime} and 400 in drawn and 8 not in drawn
    notes = " ".join(a["text"] for a in figure["layout"].get("annotations", []))
    assert "Not placed in time (no known save time): ckpt-2, ckpt-4" in notes  # preserved: no trusted time
    assert next(m for m in at.metric if m.label == "Latest step").value == "400"
    table = at.dataframe[0].value
    assert dict(zip(table["checkpoint"], table["training step"]))["ckpt-8"] == 400


def test_keras_epoch_files_are_explained_once_without_a_contradicting_warning(restored_root):
    at = open_page("history", SAMPLES, {"run": "mnist_keras/epochs"})
    assert not at.exception and not at.error
    assert any("Keras writes no state file" in i.value for i in at.info)
    assert not any("unlisted" in w.value for w in at.warning), [w.value for w in at.warning]
    assert next(m for m in at.metric if m.label == "With problems").value == "0"
    figure = _timeline(at)
    assert {y for trace in figure["data"] for y in trace["y"]} == {120, 240, 360, 480, 600}  # not epochs 1..5
