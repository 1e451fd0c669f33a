"""Save times from the state file, file times that look copied, and the training step stored in TF2 checkpoints."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from conftest import copy_run

from ckptlib.runs.history import load_history
from ckptlib.runs.statefile import read_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "sample_checkpoints")
SAMPLE_RUNS = ("linear", "mnist_cnn/lr3e-3_bs100", "mnist_cnn/lr5e-3_bs50", "mnist_tf2", "from_cluster")


def _cloned(src: str, dst_parent, name: str | None = None) -> str:
    """Copy a run the way a git clone or a plain `cp -r` does an hour after training: every file dated then,
    within a few milliseconds of each other."""
    dst = os.path.join(str(dst_parent), name or os.path.basename(src))
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    later = time.time() + 3600
    for i, entry in enumerate(sorted(os.listdir(dst))):
        os.utime(os.path.join(dst, entry), (later + i / 1000, later + i / 1000))
    return dst


def _by_name(history):
    return {e.name: e for e in history.checkpoints}


def _add_save_times(run: str, times: dict[str, float]) -> None:
    """What the sample generator does to a v1 Saver's state file: record the save times it lacks."""
    from pathlib import Path

    from ckptlib.samples.clock import record_save_times

    record_save_times(Path(run), times)


# --- the state file's timestamps beat copied file times --------------------------------------------
def test_manager_run_copied_keeps_its_timeline_and_its_preserved_checkpoints(manager_preserved, tmp_path):
    run = _cloned(manager_preserved[0], tmp_path)
    state = read_state(run)
    history = load_history(run)
    entries = _by_name(history)
    listed = [entries[os.path.basename(p)] for p in state.all_model_checkpoint_paths]
    assert [e.mtime for e in listed] == list(state.all_model_checkpoint_timestamps)
    assert all(e.time_source == "state" for e in listed)
    # Before: their copied file times were after last_preserved_timestamp, so they were called orphans.
    for name in ("ckpt-10", "ckpt-20", "ckpt-30"):
        assert entries[name].status == "preserved" and not entries[name].has_problem
        assert entries[name].mtime is None and entries[name].time_source == "unknown"
        assert "file time looks copied" in entries[name].problem
    assert history.file_times_copied
    assert any(n.startswith("File times look copied, not saved") for n in history.notes)


def test_fresh_runs_are_not_called_copied(manager_preserved, manager_plain, saver_rel, restarted_run):
    for run in (manager_preserved[0], manager_plain[0], saver_rel[0], restarted_run):
        history = load_history(run)
        assert not history.file_times_copied
        assert not any("look copied" in n for n in history.notes)
    entries = load_history(manager_preserved[0]).checkpoints
    assert [e.status for e in entries] == ["preserved"] * 3 + ["kept", "latest"]
    assert all(e.problem is None for e in entries)  # preserved by time, not guessed from the name


def test_copy_that_kept_file_times_is_trusted(manager_preserved, tmp_path):
    run = copy_run(manager_preserved[0], tmp_path)  # copytree keeps times, like rsync -a or cp -p
    history = load_history(run)
    assert not history.file_times_copied
    assert all(e.time_source in ("state", "file") and e.mtime is not None for e in history.checkpoints)


def test_v1_run_with_recorded_save_times_survives_a_copy(tmp_path, tfb):
    run = str(tmp_path / "run")
    saved = tfb.saver_run(run, num_saves=4, max_to_keep=2, save_relative_paths=True,
                          keep_checkpoint_every_n_hours=1e-9)
    base = 1_700_000_000.0
    _add_save_times(run, {os.path.basename(p): base + 60.0 * i for i, p in enumerate(saved)})
    copied = _cloned(run, tmp_path, "copied")
    history = load_history(copied)
    entries = _by_name(history)
    assert [entries[n].mtime for n in ("model.ckpt-3", "model.ckpt-4")] == [base + 120.0, base + 180.0]
    # The v1 Saver records no retention: the SaverDef still explains the unlisted ones (before: orphans).
    assert [e.status for e in history.checkpoints] == ["preserved", "preserved", "kept", "latest"]
    assert [e.mtime for e in history.checkpoints[:2]] == [None, None]
    assert history.file_times_copied


def test_v1_run_without_save_times_says_its_file_times_look_copied(tmp_path, tfb):
    run = str(tmp_path / "run")
    tfb.saver_run(run, num_saves=4, max_to_keep=5, steps_per_save=50, save_relative_paths=True)
    copied = _cloned(run, tmp_path, "copied")
    history = load_history(copied)
    assert history.file_times_copied
    note = next(n for n in history.notes if n.startswith("File times look copied"))
    assert "steps run from 50 to 200" in note
    assert all(e.time_source == "file" and e.mtime is not None for e in history.checkpoints)  # nothing better


def test_generator_writes_save_times_tensorflow_reads(tmp_path, tfb):
    import tensorflow as tf

    run = str(tmp_path / "run")
    saved = tfb.saver_run(run, num_saves=3, max_to_keep=5, save_relative_paths=True)
    assert not tf.train.get_checkpoint_state(run).all_model_checkpoint_timestamps  # the v1 Saver writes none
    times = {os.path.basename(p): 1_709_283_600.0 + 10 * i for i, p in enumerate(saved)}
    _add_save_times(run, times)
    state = tf.train.get_checkpoint_state(run)
    assert list(state.all_model_checkpoint_timestamps) == list(times.values())
    assert list(state.all_model_checkpoint_paths) == saved
    assert os.path.getmtime(os.path.join(run, "checkpoint")) == max(times.values())


# --- the bundled samples after a git clone ----------------------------------------------------------
@pytest.mark.parametrize("run", SAMPLE_RUNS)
def test_every_sample_state_file_records_save_times(run):
    state = read_state(os.path.join(SAMPLES, run))
    assert len(state.all_model_checkpoint_timestamps) == len(state.all_model_checkpoint_paths) > 0
    assert list(state.all_model_checkpoint_timestamps) == sorted(state.all_model_checkpoint_timestamps)


@pytest.mark.parametrize("run", SAMPLE_RUNS)
def test_cloned_samples_show_a_true_timeline(run, tmp_path):
    history = load_history(_cloned(os.path.join(SAMPLES, run), tmp_path))
    dated = [e for e in history.checkpoints if e.mtime is not None]
    assert len(dated) >= 3
    assert all(e.time_source == "state" for e in dated)  # no clone time mixed in
    assert [e.mtime for e in dated] == sorted(e.mtime for e in dated)  # later steps saved later
    assert dated[-1].mtime - dated[0].mtime >= 40  # simulated minutes (linear: 10 s a save), not milliseconds
    assert not any(e.orphan for e in history.checkpoints if run != "from_cluster")


def test_cloned_tf2_sample_calls_its_preserved_checkpoints_preserved(tmp_path):
    history = load_history(_cloned(os.path.join(SAMPLES, "mnist_tf2"), tmp_path))
    assert [(e.name, e.status) for e in history.checkpoints] == [
        ("ckpt-2", "preserved"), ("ckpt-4", "preserved"), ("ckpt-6", "kept"), ("ckpt-7", "kept"), ("ckpt-8", "latest")]
    assert sum(e.has_problem for e in history.checkpoints) == 0


def test_cloned_cluster_sample_does_not_date_its_unlisted_checkpoints(tmp_path):
    entries = _by_name(load_history(_cloned(os.path.join(SAMPLES, "from_cluster"), tmp_path)))
    # Before: both carried the clone's time, 1000 (an earlier attempt) 'saved before' 200.
    assert entries["model.ckpt-1000"].mtime is None and entries["model.ckpt-200"].mtime is None
    assert entries["model.ckpt-1000"].status == "orphan" and entries["model.ckpt-200"].status == "preserved"
    assert entries["model.ckpt-700"].mtime is not None  # missing, but the state file recorded its save


# --- the training step stored in TF2 checkpoints ----------------------------------------------------
def test_tf2_sample_shows_the_optimizer_step_beside_the_save_counter():
    entries = load_history(os.path.join(SAMPLES, "mnist_tf2")).checkpoints
    assert [e.step for e in entries] == [2, 4, 6, 7, 8]  # save counters, as named
    assert [e.stored_step for e in entries] == [100, 200, 300, 350, 400]  # optimizer/_iterations
    assert [e.training_step for e in entries] == [100, 200, 300, 350, 400]


def test_manager_run_prefers_its_own_step_variable(manager_plain, tf_reader):
    run, saved = manager_plain
    entries = load_history(run).checkpoints
    assert [e.stored_step for e in entries] == [int(tf_reader(p).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
                                                for p in saved[-2:]] == [40, 50]


def test_manager_run_without_a_step_variable_uses_the_optimizer_iterations(tmp_path, tfb):
    import keras
    import tensorflow as tf

    net = tf.Module()
    net.w = tf.Variable([1.0, 2.0])
    optimizer = keras.optimizers.Adam(0.1)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(net=net, optimizer=optimizer), str(tmp_path), 3)
    for _ in range(2):
        for _ in range(5):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(net.w))
            optimizer.apply_gradients([(tape.gradient(loss, net.w), net.w)])
        manager.save()
    entries = load_history(str(tmp_path)).checkpoints
    assert [(e.name, e.step, e.stored_step) for e in entries] == [("ckpt-1", 1, 5), ("ckpt-2", 2, 10)]


def test_v1_checkpoints_named_by_step_read_nothing_more(saver_rel, nostep_run):
    assert all(e.stored_step is None for e in load_history(saver_rel[0]).checkpoints)
    (entry,) = load_history(nostep_run[0]).checkpoints
    assert entry.step == entry.stored_step == 7  # no '-N': the stored global_step is the step
