"""SavedModel exports as runs: one export is a run of one checkpoint; numbered exports are a run by number."""

from __future__ import annotations

import numpy as np
import pytest

from ckptlib.compare.diff import diff_checkpoints
from ckptlib.formats import open_checkpoint
from ckptlib.runs.history import find_runs, load_history

tf = pytest.importorskip("tensorflow")


def _export(path, scale: float):
    module = tf.Module()
    module.w = tf.Variable(np.full((3, 2), scale, np.float32), name="w")
    module.f = tf.function(lambda x: tf.matmul(x, module.w), input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    tf.saved_model.save(module, str(path), signatures=module.f)


def test_numbered_exports_are_one_run_stepped_by_number(tmp_path):
    for version, scale in ((1, 1.0), (2, 2.0), (10, 3.0)):
        _export(tmp_path / "serving" / str(version), scale)
    _export(tmp_path / "single", 5.0)
    runs = {r.name: r for r in find_runs(str(tmp_path))}
    assert set(runs) == {"serving", "single"}  # not serving/1/variables, nor single/variables
    history = load_history(str(tmp_path / "serving"))
    assert [e.step for e in history.checkpoints] == [1, 2, 10] and runs["serving"].latest_step == 10
    assert all(e.complete and e.status != "orphan" for e in history.checkpoints)
    assert history.latest.prefix.endswith("/serving/10")
    first, last = (open_checkpoint(e.prefix) for e in (history.checkpoints[0], history.checkpoints[-1]))
    assert first.format_name == "saved-model"
    rows = [r for r in diff_checkpoints(first, last).variables if r.kind == "model"]
    assert rows and all(r.status == "changed" for r in rows)
    single = load_history(str(tmp_path / "single"))
    assert len(single.checkpoints) == 1 and single.checkpoints[0].complete and single.problem is None
