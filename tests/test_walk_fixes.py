"""What a second new-user walk hit, fixed: no export verdict between two Keras epochs, counts that agree with
the lists below them, names and placeholders a user can read (issue 15)."""

from __future__ import annotations

import json
import os

from page_links import APP, open_page

from ckptlib.cli.main import main

SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")
EPOCHS = os.path.join(SAMPLES, "mnist_keras", "epochs")


def _said(at) -> str:
    return " ".join(m.value for kind in (at.info, at.warning, at.error, at.success) for m in kind)


def test_two_keras_epochs_get_no_export_verdict(capsys, restored_root):
    a, b = (os.path.join(EPOCHS, f"model.0{n}.keras") for n in (4, 5))
    assert main(["diff", a, b, "--json", "--no-cache"]) == 0
    assert "parity" not in json.loads(capsys.readouterr().out)
    assert main(["diff", a, b, "--no-cache"]) == 0
    assert "verdict:" not in capsys.readouterr().out
    at = open_page("diff", SAMPLES, {"run": "mnist_keras/epochs"})
    assert not at.exception and "Export" not in _said(at), _said(at)
    export = os.path.join(SAMPLES, "mnist_keras", "export")
    assert main(["diff", export, b, "--json", "--no-cache"]) == 0  # a SavedModel against its .keras: a verdict
    assert json.loads(capsys.readouterr().out)["parity"]["export"] == "a"


def _problem_count(at) -> int:
    return int(next(m for m in at.metric if m.label == "With problems").value)


def test_history_counts_and_lists_agree_and_names_what_its_numbers_count(restored_root):
    for run, number in (("mnist_tf2", "save"), ("mnist_keras/epochs", "epoch"), ("from_cluster", "step"),
                        ("mnist_cnn/lr3e-3_bs100", "step")):
        at = open_page("history", SAMPLES, {"run": run})
        assert not at.exception and not at.error, run
        table = at.dataframe[0].value
        assert number in table.columns and ("training step" in table.columns) == (number != "step"), run
        assert "None" not in set(map(str, table["saved (UTC)"])), run
        listed = [e.label for e in at.expander if e.label.startswith("Problems in full")]
        count = _problem_count(at)
        assert listed == ([f"Problems in full ({count})"] if count else []), (run, listed, count)
    at = open_page("history", SAMPLES, {"run": "mnist_tf2"})
    assert "unknown" in set(at.dataframe[0].value["saved (UTC)"])  # preserved: no known save time
    assert any(e.label.startswith("About the other checkpoints (2)") for e in at.expander)


def test_the_diff_of_an_export_starts_against_its_training_run_and_names_both_runs(restored_root):
    at = open_page("diff", SAMPLES, {"run": "mnist_keras/export"})
    assert not at.exception and not at.error
    assert at.selectbox(key="a_run").value == "mnist_keras/manager"
    assert at.selectbox(key="b_run").value == "mnist_keras/export"
    assert any(s.value.startswith("Export holds the weights of ckpt-5") for s in at.success), _said(at)
    assert any("mnist_keras/manager ckpt-5 → mnist_keras/export export" in e.label.replace("\\_", "_") for e in at.expander)


def test_the_diff_caption_names_a_keras_variable_by_its_path_with_keys_last(restored_root):
    at = open_page("diff", SAMPLES, {"run": "mnist_keras/epochs"})
    assert not at.exception and not at.error
    heading = at.subheader[0].value
    assert "/" in heading and not heading.startswith("layers/"), heading
    caption = next(c.value for c in at.caption if c.value.startswith("A: ["))
    assert "keys: A layers/" in caption, caption


def test_an_export_without_a_step_is_labelled_by_its_name_alone(restored_root):
    at = open_page(None, SAMPLES, {"run": "mnist_keras/export"})
    assert not at.exception
    box = at.selectbox(key="ckpt")
    assert box.format_func(box.value) == "export ★"
    assert not [t for t in at.text_input if t.key == "ckpt_step"]  # nothing to go to


def test_trends_takes_a_note_on_the_variable_at_the_chosen_step(restored_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CKPTLIB_DB", f"sqlite:///{tmp_path / 'review.sqlite3'}")  # this test's own notes
    at = open_page("trends", SAMPLES, {"run": "mnist_cnn/lr3e-3_bs100", "var": "conv2/weights", "step": "800"})
    assert not at.exception and not at.error
    assert any(e.label.startswith("Notes on conv2/weights at model.ckpt-800") for e in at.expander)
    at.text_area(key="trends_text_0").input("Norm jumps here.")
    at.text_input(key="trends_name").input("Ana")
    at.button(key="trends_submit").click().run()
    assert not at.exception
    assert any(s.value.startswith("Note ") and "conv2/weights" in s.value for s in at.success), _said(at)


def test_a_link_to_a_checkpoint_that_is_not_there_says_so(restored_root):
    at = open_page("diff", SAMPLES, {"run": "linear", "a_run": "linear", "a_ckpt": "model.ckpt-999"})
    assert not at.exception
    assert any("'model.ckpt-999' is not here" in t.value for t in at.toast), [t.value for t in at.toast]
    plain = open_page("diff", SAMPLES, {"run": "linear"})
    assert not plain.toast  # nothing asked for, nothing to say


def test_a_broken_sidebar_checkpoint_starts_the_diff_at_the_runs_latest_and_evaluate_skips_the_orphan(
        restored_root):
    at = open_page("diff", SAMPLES, {"run": "from_cluster", "ckpt": "model.ckpt-500"})
    assert not at.exception
    assert (at.selectbox(key="a_ckpt").value, at.selectbox(key="b_ckpt").value) == ("model.ckpt-400",
                                                                                   "model.ckpt-600")
    evaluate = open_page("evaluate", SAMPLES, {"run": "from_cluster", "ckpt": "model.ckpt-500"})
    warned = " ".join(w.value for w in evaluate.warning)
    assert "e.g. model.ckpt-600" in warned and "1000" not in warned, warned


def test_nothing_moved_is_coloured_as_nothing_in_the_change_matrix():
    import numpy as np

    from ui.figures_compare import scaled_changes

    values = np.array([[0.0, 0.0, 3e-5], [0.0, 0.2, np.nan]])
    colours = scaled_changes(values, "rank")
    assert colours[0, 0] == colours[0, 1] == colours[1, 0] == 0.0 and colours[1, 1] == 1.0
    assert np.isnan(colours[1, 2])
