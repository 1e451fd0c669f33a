"""A run of V1 checkpoints (TF <= 0.11 single files) is listed by history like any other run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckptlib.runs.history import find_runs, load_history

tf = pytest.importorskip("tensorflow")
v1 = tf.compat.v1
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _v1_run(folder: Path, steps=(100, 200, 300)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default():
        w = v1.get_variable("dense/w", initializer=tf.ones([3, 2]))
        bump = w.assign_add(tf.ones([3, 2]))
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1, max_to_keep=5)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            prefixes = []
            for step in steps:
                sess.run(bump)
                prefixes.append(saver.save(sess, str(folder / "model.ckpt"), global_step=step))
    return prefixes


def test_v1_run_lists_every_checkpoint_complete(tmp_path):
    prefixes = _v1_run(tmp_path / "run")
    history = load_history(str(tmp_path / "run"))
    assert [e.prefix for e in history.checkpoints] == prefixes
    assert all(e.complete and e.in_state and e.has_meta and e.size_bytes > 0 for e in history.checkpoints)
    assert [e.status for e in history.checkpoints][-1] == "latest"
    assert [r.latest_step for r in find_runs(str(tmp_path))] == [300]
    doc = json.loads(subprocess.run([sys.executable, "-m", "ckptlib", "diff", prefixes[0], prefixes[-1], "--json",
                                     "--no-cache"], capture_output=True, text=True, cwd=REPO, check=True).stdout)
    assert {r["name"]: r["status"] for r in doc["variables"]}["dense/w"] == "changed"


def test_an_unlisted_v1_file_is_found_and_a_garbled_one_is_incomplete(tmp_path):
    prefixes = _v1_run(tmp_path / "run", (100,))
    os.remove(tmp_path / "run" / "checkpoint")
    data = Path(prefixes[0]).read_bytes()
    (tmp_path / "run" / "model.ckpt-200").write_bytes(data[:20] + b"\x00" * 40 + data[60:])
    entries = {e.name: e for e in load_history(str(tmp_path / "run")).checkpoints}
    assert entries["model.ckpt-100"].complete and entries["model.ckpt-100"].status != "orphan"
    broken = entries.get("model.ckpt-200")
    assert broken is None or (not broken.complete and broken.problem)
