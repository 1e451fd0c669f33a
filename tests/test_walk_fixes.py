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
