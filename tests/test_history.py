"""history.load_history / find_runs on real runs written by TensorFlow (tf.compat.v1 Saver, CheckpointManager)."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from conftest import copy_run, snapshot

from ckptlib import errors
from ckptlib.runs.history import find_runs, load_history
from ckptlib.runs.resolve import open_checkpoint

DATA = ".data-00000-of-00001"


def _files_of(run: str, name: str) -> list[str]:
    return sorted(f for f in os.listdir(run) if f == name + ".index" or f == name + ".meta"
                  or f.startswith(name + ".data-"))


def _by_name(history):
    return {e.name: e for e in history.checkpoints}


def _tf_state(run: str):
    import tensorflow as tf

    return tf.train.get_checkpoint_state(run)


# --- a healthy v1 run ---------------------------------------------------------------------------
def test_saver_max_to_keep_three_of_six(saver_abs):
    run, saved = saver_abs
    history = load_history(run)
    state = _tf_state(run)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "model.ckpt-4", "model.ckpt-5", "model.ckpt-6"]  # what TF itself says it kept
    assert history.path == run
    assert history.problem is None
    # The Saver's window is full: the SaverDef in the .meta tells which checkpoint the next save deletes.
    assert history.notes == ("max_to_keep=3 (the Saver's setting in model.ckpt-6.meta): "
                             "the next save deletes model.ckpt-4.",)
    assert history.next_deleted == history.checkpoints[0].prefix
    assert [e.step for e in history.checkpoints] == [4, 5, 6]
    assert [e.prefix for e in history.checkpoints] == list(state.all_model_checkpoint_paths)
    assert all(e.in_state and e.complete and e.problem is None for e in history.checkpoints)
    assert [e.latest for e in history.checkpoints] == [False, False, True]
    assert [e.status for e in history.checkpoints] == ["kept", "kept", "latest"]
    assert not any(e.orphan or e.missing or e.preserved for e in history.checkpoints)
    assert history.latest.prefix == state.model_checkpoint_path == saved[-1]


def test_v1_entry_fields_match_the_disk(saver_abs):
    run, _ = saver_abs
    for entry in load_history(run).checkpoints:
        files = _files_of(run, entry.name)
        # v1 Saver writes no timestamps: mtime is the .index file's.
        assert entry.mtime == os.path.getmtime(entry.prefix + ".index")
        assert entry.size_bytes == sum(os.path.getsize(os.path.join(run, f)) for f in files)
        assert entry.has_meta == (entry.name + ".meta" in files)
    entries = _by_name(load_history(run))
    assert entries["model.ckpt-6"].has_meta and not entries["model.ckpt-4"].has_meta  # meta on the last save only


def test_step_from_stored_global_step_without_suffix(nostep_run, tf_reader):
    run, saved = nostep_run
    assert os.path.basename(saved[0]) == "model.ckpt"
    (entry,) = load_history(run).checkpoints
    assert entry.step == int(tf_reader(saved[0]).get_tensor("global_step")) == 7
    assert entry.latest and entry.complete


def test_sorted_by_step_not_by_name(tmp_path, tfb):
    # model.ckpt-10 sorts before model.ckpt-9 as text; history must sort by number.
    run = str(tmp_path / "run")
    tfb.saver_run(run, num_saves=3, max_to_keep=5, steps_per_save=4, save_relative_paths=True)
    steps = [e.step for e in load_history(run).checkpoints]
    assert steps == [4, 8, 12]


# --- moved folders, orphans, missing files ------------------------------------------------------
def test_run_moved_after_saving(tmp_path, tfb):
    before = str(tmp_path / "before")
    tfb.saver_run(before, num_saves=4, max_to_keep=3)  # absolute paths in the state file
    after = str(tmp_path / "after")
    os.rename(before, after)
    with open(os.path.join(after, "checkpoint")) as handle:
        assert before in handle.read()  # TF really wrote the old absolute location
    history = load_history(after)
    assert history.problem is None
    assert [e.step for e in history.checkpoints] == [2, 3, 4]
    assert all(e.prefix.startswith(after + os.sep) for e in history.checkpoints)
    assert all(e.in_state and e.complete and not e.missing and e.problem is None for e in history.checkpoints)
    assert history.latest.step == 4
    assert any(before in note and "moved" in note for note in history.notes), history.notes


def test_orphans_of_a_restarted_job(restarted_run):
    run = restarted_run
    state = _tf_state(run)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-4", "model.ckpt-5"]
    history = load_history(run)
    assert [e.step for e in history.checkpoints] == [2, 3, 4, 5]
    entries = _by_name(history)
    for name in ("model.ckpt-2", "model.ckpt-3"):
        orphan = entries[name]
        assert os.path.exists(orphan.prefix + ".index")
        assert orphan.orphan and orphan.status == "orphan"
        assert not orphan.in_state and not orphan.latest and not orphan.preserved
        assert orphan.complete  # an orphan is still a readable checkpoint
        assert orphan.problem and "state file" in orphan.problem
    for name in ("model.ckpt-4", "model.ckpt-5"):
        assert entries[name].in_state and entries[name].problem is None and not entries[name].orphan
    assert history.latest.step == 5


def test_state_entry_whose_files_are_gone(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    for name in _files_of(run, "model.ckpt-4"):
        os.remove(os.path.join(run, name))
    entries = _by_name(load_history(run))
    gone = entries["model.ckpt-4"]
    assert gone.missing and gone.status == "missing"
    assert gone.in_state and not gone.complete and gone.size_bytes == 0
    assert gone.step == 4 and gone.mtime is None
    assert gone.problem and "state file" in gone.problem
    assert not entries["model.ckpt-5"].missing and entries["model.ckpt-6"].latest


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_damaged_data_shard(saver_rel, tmp_path, tf_reader, damage):
    run = copy_run(saver_rel[0], tmp_path)
    data = os.path.join(run, "model.ckpt-6" + DATA)
    if damage == "missing":
        os.remove(data)
    else:
        os.truncate(data, os.path.getsize(data) // 2)
    with pytest.raises(Exception):  # TensorFlow itself cannot read every tensor any more
        reader = tf_reader(os.path.join(run, "model.ckpt-6"))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    history = load_history(run)
    entry = _by_name(history)["model.ckpt-6"]
    assert not entry.complete and entry.status == "incomplete"
    assert entry.in_state and entry.latest
    assert "model.ckpt-6" + DATA in entry.problem
    assert ("missing" if damage == "missing" else "truncated") in entry.problem
    # The run's usable latest falls back to the newest complete checkpoint.
    assert history.latest.step == 5
    assert all(e.complete for e in history.checkpoints if e.step != 6)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_index_file(saver_rel, tmp_path, tf_reader, damage):
    run = copy_run(saver_rel[0], tmp_path)
    index = os.path.join(run, "model.ckpt-5.index")
    size = os.path.getsize(index)
    if damage == "truncated":
        os.truncate(index, size // 2)
    elif damage == "garbage":
        with open(index, "wb") as handle:
            handle.write(np.random.default_rng(0).bytes(size))
    else:
        os.truncate(index, 0)
    with pytest.raises(Exception):  # the reference reader refuses it too
        tf_reader(os.path.join(run, "model.ckpt-5")).get_tensor("dense/kernel")
    history = load_history(run)  # no exception
    entry = _by_name(history)["model.ckpt-5"]
    assert not entry.complete and entry.status == "incomplete"
    assert "model.ckpt-5.index" in entry.problem
    assert entry.step == 5 and entry.in_state
    assert history.latest.step == 6


def test_garbage_state_file(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    with open(os.path.join(run, "checkpoint"), "wb") as handle:
        handle.write(b"\x00\xffthis is { not a CheckpointState\n")
    history = load_history(run)
    assert history.problem and os.path.join(run, "checkpoint") in history.problem
    assert [e.step for e in history.checkpoints] == [4, 5, 6]
    assert all(e.complete and not e.in_state and not e.latest for e in history.checkpoints)
    assert history.latest.step == 6  # newest complete one


def test_unparsable_text_state_file(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    with open(os.path.join(run, "checkpoint"), "a") as handle:
        handle.write('model_checkpoint_path "no colon"\n')
    history = load_history(run)
    assert history.problem and "checkpoint" in history.problem
    assert len(history.checkpoints) == 3


def test_no_state_file(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    os.remove(os.path.join(run, "checkpoint"))
    history = load_history(run)
    assert history.problem and "state file" in history.problem
    assert [e.step for e in history.checkpoints] == [4, 5, 6]
    assert not any(e.in_state or e.latest for e in history.checkpoints)
    assert history.latest.step == 6


def test_unfinished_save_temp_folder(saver_rel, tmp_path, tfb):
    run = copy_run(saver_rel[0], tmp_path)
    # What a sharded save leaves behind when killed before the merge: '<prefix>_temp/part-…'.
    os.mkdir(os.path.join(run, "model.ckpt-7_temp"))
    part = os.path.join(run, "model.ckpt-7_temp", "part-00000-of-00001")
    tfb.raw_bundle(part, {"global_step": np.array(7, np.int64)})
    history = load_history(run)
    assert [e.step for e in history.checkpoints] == [4, 5, 6, 7]
    unfinished = _by_name(history)["model.ckpt-7"]
    assert not unfinished.complete and not unfinished.in_state and not unfinished.latest
    assert unfinished.status == "incomplete"
    assert "model.ckpt-7_temp" in unfinished.problem
    assert "Listed in the state file" not in unfinished.problem  # it is not listed
    assert history.latest.step == 6
    assert [r.name for r in find_runs(str(tmp_path))] == ["run"]  # the temp folder is no run of its own


# --- TF2 CheckpointManager ----------------------------------------------------------------------
def test_manager_run_uses_state_timestamps(manager_plain):
    run, saved = manager_plain
    state = _tf_state(run)
    history = load_history(run)
    assert [e.step for e in history.checkpoints] == [40, 50]
    assert [e.prefix for e in history.checkpoints] == saved[-2:]
    assert [e.mtime for e in history.checkpoints] == list(state.all_model_checkpoint_timestamps)
    assert not any(os.path.exists(p + ".index") for p in saved[:3])  # TF deleted those
    assert not any(e.has_meta or e.preserved or e.orphan for e in history.checkpoints)
    assert history.latest.prefix == state.model_checkpoint_path == saved[-1]
    assert history.problem is None


def test_manager_keep_every_n_hours_preserves(manager_preserved):
    run, saved = manager_preserved
    state = _tf_state(run)
    # What TF really does: every checkpoint swept out of the 2 kept is preserved (the interval is
    # tiny), left on disk, dropped from the list; last_preserved_timestamp is the last one's time.
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-40", "ckpt-50"]
    assert all(os.path.exists(p + ".index") for p in saved)
    history = load_history(run)
    assert history.last_preserved_timestamp == state.last_preserved_timestamp
    assert [e.step for e in history.checkpoints] == [10, 20, 30, 40, 50]
    entries = _by_name(history)
    for name in ("ckpt-10", "ckpt-20", "ckpt-30"):
        entry = entries[name]
        assert entry.preserved and not entry.orphan and not entry.in_state
        assert entry.status == "preserved" and entry.complete and entry.problem is None
    assert [entries[n].status for n in ("ckpt-40", "ckpt-50")] == ["kept", "latest"]
    assert any("keep_checkpoint_every_n_hours" in note for note in history.notes)


def test_manager_without_retention_still_flags_an_old_orphan(manager_plain, tmp_path):
    # CheckpointManager always writes last_preserved_timestamp (its creation time - 1 s), even without
    # keep_checkpoint_every_n_hours; an older stray checkpoint copied in is an orphan, not 'preserved'.
    run = copy_run(manager_plain[0], tmp_path)
    state = _tf_state(run)
    assert state.last_preserved_timestamp > 0
    old = time.time() - 3 * 3600
    for name in _files_of(run, "ckpt-40"):
        target = os.path.join(run, name.replace("ckpt-40", "pretrained-3"))
        shutil.copyfile(os.path.join(run, name), target)
        os.utime(target, (old, old))
    history = load_history(run)
    stray = _by_name(history)["pretrained-3"]
    assert stray.complete and not stray.in_state
    assert stray.orphan and not stray.preserved and stray.status == "orphan"
    assert not any("keep_checkpoint_every_n_hours" in note for note in history.notes)


def test_v1_saver_keep_every_n_hours_leaves_unrecorded_files(tmp_path, tfb):
    # What TF really does: the v1 Saver keeps the swept checkpoints on disk but records neither
    # timestamps nor last_preserved_timestamp; only the SaverDef in the .meta says it was asked to.
    run = str(tmp_path / "run")
    saved = tfb.saver_run(run, num_saves=4, max_to_keep=2, save_relative_paths=True,
                          keep_checkpoint_every_n_hours=1e-9)
    state = _tf_state(run)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-3", "model.ckpt-4"]
    assert not state.all_model_checkpoint_timestamps and not state.last_preserved_timestamp
    assert all(os.path.exists(p + ".index") for p in saved)
    history = load_history(run)
    assert history.last_preserved_timestamp is None
    statuses = [e.status for e in history.checkpoints]
    assert statuses == ["preserved", "preserved", "kept", "latest"]
    assert all(e.complete for e in history.checkpoints)
    assert all("keep_checkpoint_every_n_hours=1e-09" in e.problem for e in history.checkpoints[:2])
    assert any("max_to_keep=2" in note for note in history.notes)


def test_v1_orphan_newer_than_the_listed_ones_is_not_called_preserved(tmp_path, tfb):
    # The Saver only preserves checkpoints that fell out of its window, so a newer unlisted one
    # (left by another attempt of the job) stays an orphan even with keep_checkpoint_every_n_hours.
    run = str(tmp_path / "run")
    other = str(tmp_path / "other")
    tfb.saver_run(run, num_saves=4, max_to_keep=2, save_relative_paths=True, keep_checkpoint_every_n_hours=1e-9)
    for prefix in tfb.saver_run(other, num_saves=1, max_to_keep=2, save_relative_paths=True):
        for suffix in (".index", ".data-00000-of-00001", ".meta"):
            shutil.copy(prefix + suffix, os.path.join(run, "model.ckpt-99" + suffix))
    by_name = {e.name: e for e in load_history(run).checkpoints}
    assert by_name["model.ckpt-99"].status == "orphan"
    assert by_name["model.ckpt-1"].status == "preserved"


def test_hundred_twenty_checkpoints(tmp_path, tfb):
    run = str(tmp_path / "many")
    saved = tfb.tiny_saver_run(run, 120)
    state = _tf_state(run)
    assert len(state.all_model_checkpoint_paths) == 120
    with open(os.path.join(run, "checkpoint")) as handle:
        assert run not in handle.read()  # save_relative_paths
    history = load_history(run)
    assert [e.step for e in history.checkpoints] == list(range(1, 121))
    assert [e.prefix for e in history.checkpoints] == saved
    assert all(e.in_state and e.complete and e.problem is None for e in history.checkpoints)
    assert [e.step for e in history.checkpoints if e.latest] == [120]
    assert history.notes == () and history.problem is None


# --- find_runs ----------------------------------------------------------------------------------
def test_find_runs_recurses_and_skips_hidden(saver_rel, manager_plain, tmp_path):
    root = tmp_path / "root"
    copy_run(saver_rel[0], root / "a", "run1")
    copy_run(manager_plain[0], root / "b" / "c", "run2")
    copy_run(saver_rel[0], root / ".hidden", "run3")
    copy_run(saver_rel[0], root / "b" / "c" / "run2" / ".snapshots", "old")
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not a run")
    runs = find_runs(str(root))
    assert [(r.name, r.num_checkpoints, r.latest_step) for r in runs] == [
        ("a/run1", 3, 6), ("b/c/run2", 2, 50)]
    assert [r.path for r in runs] == [str(root / "a" / "run1"), str(root / "b" / "c" / "run2")]


def test_find_runs_root_is_a_run(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    (summary,) = find_runs(run)
    assert summary.name == "." and summary.path == run and summary.latest_step == 6


def test_find_runs_missing_root(tmp_path):
    with pytest.raises(errors.NotFound, match="nowhere"):
        find_runs(str(tmp_path / "nowhere"))


def test_load_history_missing_folder(tmp_path):
    with pytest.raises(errors.NotFound) as caught:
        load_history(str(tmp_path / "gone"))
    assert str(tmp_path / "gone") in str(caught.value)


def test_empty_folder_has_no_checkpoints(tmp_path):
    history = load_history(str(tmp_path))
    assert history.checkpoints == () and history.latest is None


# --- read-only ----------------------------------------------------------------------------------
def test_history_never_modifies_the_folder(saver_rel, restarted_run, manager_preserved, tmp_path, tfb):
    root = tmp_path / "root"
    messy = copy_run(saver_rel[0], root, "messy")
    os.truncate(os.path.join(messy, "model.ckpt-5.index"), 10)
    os.remove(os.path.join(messy, "model.ckpt-4" + DATA))
    os.mkdir(os.path.join(messy, "model.ckpt-9_temp"))
    copy_run(restarted_run, root, "restarted")
    copy_run(manager_preserved[0], root, "preserved")
    garbled = copy_run(saver_rel[0], root, "garbled")
    with open(os.path.join(garbled, "checkpoint"), "wb") as handle:
        handle.write(b"\x00garbage")
    before = snapshot(root)
    for run in ("messy", "restarted", "preserved", "garbled"):
        load_history(str(root / run))
    find_runs(str(root))
    for backend in ("native", "tf"):
        ckpt = open_checkpoint(str(root / "restarted"), backend)
        for var in ckpt.variables:
            ckpt.read(var.name)
    assert snapshot(root) == before


def test_without_a_readable_state_file_nothing_is_called_an_orphan(tmp_path, tfb):
    run = str(tmp_path / "run")
    tfb.saver_run(run, num_saves=2, max_to_keep=3, save_relative_paths=True)
    with open(os.path.join(run, "checkpoint"), "w") as handle:
        handle.write("this is not a CheckpointState\n")
    history = load_history(run)
    assert history.problem and "checkpoint" in history.problem
    assert [e.status for e in history.checkpoints] == ["unlisted", "unlisted"]
    assert not any(e.orphan or (e.problem and "orphan" in e.problem) for e in history.checkpoints)
    os.remove(os.path.join(run, "checkpoint"))
    assert [e.status for e in load_history(run).checkpoints] == ["unlisted", "unlisted"]
