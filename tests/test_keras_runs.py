"""Folders of Keras ModelCheckpoint files (and TF saves without a state file) as runs: runs, history, trend, diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import snapshot

from ckptlib.compare.diff import diff_checkpoints
from ckptlib.formats import open_checkpoint
from ckptlib.runs.history import find_runs, load_history

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS, BATCHES = 2, 2  # 16 rows in batches of 8: the optimizer's iteration count is 2 per epoch


def run_json(*args: str):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "ckptlib", *args, "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One model trained two epochs with a frozen first layer, saved by three ModelCheckpoint callbacks (whole
    model, weights, sharded weights) and by tf.train.Checkpoint.write; Keras' own values at each epoch."""
    import keras
    import tensorflow as tf

    root = tmp_path_factory.mktemp("keras_runs")
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
                              keras.layers.Dense(2, name="head")], name="sequential")
    model.get_layer("hidden").trainable = False
    model.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mse")
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch + 1] = {v.path: np.array(v.numpy()) for v in self.model.weights}
            tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer).write(
                str(root / "tfwrite" / f"cp-{5 * (epoch + 1):04d}.ckpt"))

    callbacks = [keras.callbacks.ModelCheckpoint(str(root / "full" / "model.{epoch:02d}.keras")),
                 keras.callbacks.ModelCheckpoint(str(root / "weights" / "w.{epoch:02d}-{loss:.2f}.weights.h5"),
                                                 save_weights_only=True),
                 Record()]
    model.fit(np.random.rand(16, 4), np.random.rand(16, 2), epochs=EPOCHS, batch_size=8, verbose=0,
              callbacks=callbacks)
    (root / "sharded").mkdir()
    model.save_weights(str(root / "sharded" / "model.02.weights.json"), max_shard_size=1e-7)  # ~107 B

    # Checkpoint.save() three times, then a CheckpointManager (max_to_keep=2) saves three more.
    step = tf.Variable(1.0)
    ckpt = tf.train.Checkpoint(step=step)
    for _ in range(3):
        ckpt.save(str(root / "takeover" / "ckpt"))
    manager = tf.train.CheckpointManager(ckpt, str(root / "takeover"), max_to_keep=2)
    for _ in range(3):
        manager.save()
    return {"root": str(root), "seen": seen}


def _dir(runs, name: str) -> str:
    return os.path.join(runs["root"], name)


def test_runs_finds_every_keras_run(runs):
    found = {r.name: r for r in find_runs(runs["root"])}
    assert {name: (r.num_checkpoints, r.latest_step) for name, r in found.items()} == {
        "full": (2, 2), "weights": (2, 2), "sharded": (1, 2), "tfwrite": (2, 10), "takeover": (5, 6)}


def test_history_of_model_checkpoint_files(runs):
    run = _dir(runs, "full")
    doc = run_json("history", run)
    assert doc["problem"] is None  # ModelCheckpoint never writes a state file: none is missing
    assert any("model.{epoch:02d}.keras" in note for note in doc["notes"])
    rows = doc["checkpoints"]
    assert [os.path.basename(r["prefix"]) for r in rows] == ["model.01.keras", "model.02.keras"]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["complete"] and not row["in_state"] and not row["latest"] and row["problem"] is None
        assert row["status"] == "unlisted"
        assert row["mtime"] == pytest.approx(os.path.getmtime(row["prefix"]), abs=1e-3)
        assert row["size_bytes"] == os.path.getsize(row["prefix"])
    assert [r["stored_step"] for r in rows] == [BATCHES, 2 * BATCHES]  # the optimizer's iterations inside
    assert load_history(run).latest.name == "model.02.keras"


def test_weights_and_sharded_runs(runs):
    history = load_history(_dir(runs, "weights"))
    assert [(e.name, e.step, e.status) for e in history.checkpoints] == [
        (name, step, "unlisted") for step, name in enumerate(sorted(os.listdir(_dir(runs, "weights"))), start=1)]
    assert any("w.{epoch:02d}-{:.2f}.weights.h5" in note for note in history.notes)
    (entry,) = load_history(_dir(runs, "sharded")).checkpoints  # the map and its shards: one checkpoint
    folder = _dir(runs, "sharded")
    assert entry.name == "model.02.weights.json" and entry.step == 2 and entry.complete
    assert len(os.listdir(folder)) > 2 and entry.size_bytes == sum(
        os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))


def test_tf_format_saves_without_a_state_file_take_their_step_from_the_name(runs):
    history = load_history(_dir(runs, "tfwrite"))
    assert [(e.name, e.step, e.status) for e in history.checkpoints] == [
        ("cp-0005.ckpt", 5, "unlisted"), ("cp-0010.ckpt", 10, "unlisted")]
    assert [e.stored_step for e in history.checkpoints] == [BATCHES, 2 * BATCHES]
    assert any("cp-{epoch:04d}.ckpt" in note for note in history.notes)
    assert not any(e.orphan for e in history.checkpoints)


def test_checkpoint_save_before_a_manager_is_not_an_orphan(runs):
    run = _dir(runs, "takeover")
    history = load_history(run)
    entries = {e.name: e for e in history.checkpoints}
    assert sorted(entries) == ["ckpt-1", "ckpt-2", "ckpt-3", "ckpt-5", "ckpt-6"]  # the manager deleted its ckpt-4
    for name in ("ckpt-1", "ckpt-2", "ckpt-3"):
        assert not entries[name].orphan and entries[name].status == "unlisted"
        assert "Checkpoint.save()" in entries[name].problem and not entries[name].has_problem
    assert [entries[n].status for n in ("ckpt-5", "ckpt-6")] == ["kept", "latest"]
    assert any("before a CheckpointManager took over" in note for note in history.notes)


def test_trend_over_epochs_matches_keras(runs):
    doc = run_json("trend", _dir(runs, "full"), "--var", "sequential/head/kernel")
    assert [p["step"] for p in doc["points"]] == [1, 2]
    for point in doc["points"]:
        value = runs["seen"][point["step"]]["sequential/head/kernel"].astype(np.float64)
        assert point["l2"] == pytest.approx(np.sqrt((value ** 2).sum()), abs=1e-6)
        assert point["mean"] == pytest.approx(value.mean(), abs=1e-6)


def test_diff_between_epochs_shows_the_frozen_layer_unchanged(runs):
    one, two = (os.path.join(_dir(runs, "full"), f"model.0{e}.keras") for e in (1, 2))
    rows = {r.display_name: r for r in diff_checkpoints(open_checkpoint(one), open_checkpoint(two)).variables}
    assert rows["sequential/hidden/kernel"].status == rows["sequential/hidden/bias"].status == "unchanged"
    assert rows["sequential/head/kernel"].status == rows["sequential/head/bias"].status == "changed"
    for path, value in runs["seen"][2].items():
        assert open_checkpoint(two).read(path).tobytes() == value.tobytes()
    # The frozen layer has no optimizer slots: Adam's are named for the head alone.
    slots = [v.display_name for v in open_checkpoint(two).variables if v.slot_of]
    assert slots and all("head" in name for name in slots)


def test_keras_file_and_tf_write_of_the_same_epoch_pair_every_weight(runs):
    keras_file = os.path.join(_dir(runs, "full"), "model.02.keras")
    tf_save = os.path.join(_dir(runs, "tfwrite"), "cp-0010.ckpt")
    diff = diff_checkpoints(open_checkpoint(keras_file), open_checkpoint(tf_save))
    model_rows = [r for r in diff.variables if r.kind == "model"]
    assert {r.display_name for r in model_rows} == set(runs["seen"][2])
    assert {r.status for r in model_rows} == {"unchanged"}


def test_reading_runs_writes_nothing(runs):
    before = snapshot(runs["root"])
    run_json("runs", runs["root"])
    for name in ("full", "weights", "sharded", "tfwrite", "takeover"):
        load_history(_dir(runs, name))
    run_json("trend", _dir(runs, "weights"), "--var", "sequential/head/bias")
    assert snapshot(runs["root"]) == before


def test_a_truncated_keras_file_is_incomplete(runs, tmp_path):
    raw = open(os.path.join(_dir(runs, "full"), "model.02.keras"), "rb").read()
    (tmp_path / "model.03.keras").write_bytes(raw[: len(raw) // 3])
    (tmp_path / "model.02.keras").write_bytes(raw)
    history = load_history(str(tmp_path))
    entries = {e.name: e for e in history.checkpoints}
    broken = entries["model.03.keras"]
    assert not broken.complete and broken.status == "incomplete" and "\n" not in broken.problem
    assert "not a complete zip archive" in broken.problem and "model.03.keras" in broken.problem
    assert history.latest.name == "model.02.keras"


def test_live_listing_sees_keras_files_stable_over_two_polls(runs, tmp_path):
    from ckptlib.live.listing import list_run

    folder = _dir(runs, "sharded")
    first, second = list_run(folder), list_run(folder)
    assert second.stable_keras(None) == []  # nothing is stable before a second look
    assert second.stable_keras(first) == ["model.02.weights.json"]  # its shards are part of it, not files of their own
    (found,) = second.prefixes.values()
    assert found.keras and found.index is None and len(found.files) == len(os.listdir(folder))
    raw = open(os.path.join(_dir(runs, "full"), "model.01.keras"), "rb").read()
    target = tmp_path / "model.01.keras"
    target.write_bytes(raw[:100])  # ModelCheckpoint still writing it
    before = list_run(str(tmp_path))
    target.write_bytes(raw)
    after = list_run(str(tmp_path))
    assert after.stable_keras(before) == []  # grew between the polls: not yet
    assert list_run(str(tmp_path)).stable_keras(after) == ["model.01.keras"]
    assert open_checkpoint(str(target)).format_name == "keras"  # and it opens: complete
