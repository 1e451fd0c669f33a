"""Trends of a growing run come from the cache plus the new checkpoints, equal to a run from scratch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ckptlib.cache import incremental
from ckptlib.cache.results import cached_trends, checkpoint_parts
from ckptlib.cache.store import ResultCache
from ckptlib.compare.trends import run_trends
from ckptlib.runs.history import load_history


def _save(tfb, run, step: int, frozen: bool = False):
    rng = np.random.default_rng(step)
    values = {"dense/kernel": rng.normal(size=(40, 30)).astype(np.float32),
              "dense/bias": np.full(30, step, np.float32),
              "backbone/w": np.ones((8, 8), np.float32) if frozen else rng.normal(size=(8, 8)).astype(np.float32),
              "global_step": np.array(step, np.int64)}
    tfb.raw_bundle(os.path.join(run, f"model.ckpt-{step}"), values)


def _remove(run, step: int):
    for name in os.listdir(run):
        if name.startswith(f"model.ckpt-{step}."):
            os.remove(os.path.join(run, name))


@pytest.fixture
def cache(tmp_path):
    return ResultCache(str(tmp_path / "cache.sqlite"))


def _recording():
    asked = []

    def compute(sub):
        asked.append([e.step for e in sub.checkpoints])
        return run_trends(sub)

    return asked, compute


def test_new_checkpoints_are_read_alone_and_the_answer_equals_a_full_run(tfb, tmp_path, cache):
    run = str(tmp_path / "run")
    for step in (100, 200, 300):
        _save(tfb, run, step)
    first = cached_trends(cache, load_history(run))
    for step in (400, 500):
        _save(tfb, run, step, frozen=True)
    history = load_history(run)
    assert cached_trends(cache, history) == run_trends(history)
    ids = {e.prefix: checkpoint_parts(e.prefix) for e in history.checkpoints}
    old_ids = {p: v for p, v in ids.items() if not p.endswith(("-400", "-500"))}
    asked, compute = _recording()
    assert incremental.extend(first, old_ids, history, ids, compute) == run_trends(history)
    assert asked == [[100, 300, 400, 500]]  # the first, the last known one and the new ones, nothing else


def test_max_to_keep_deleting_the_middle_rereads_only_its_successor(tfb, tmp_path, cache):
    run = str(tmp_path / "run")
    for step in (100, 200, 300, 400):
        _save(tfb, run, step)
    old_history = load_history(run)
    old = run_trends(old_history)
    old_ids = {e.prefix: checkpoint_parts(e.prefix) for e in old_history.checkpoints}
    _remove(run, 200)
    _save(tfb, run, 500)
    history = load_history(run)
    ids = {e.prefix: checkpoint_parts(e.prefix) for e in history.checkpoints}
    asked, compute = _recording()
    assert incremental.extend(old, old_ids, history, ids, compute) == run_trends(history)
    assert asked == [[100, 300, 400, 500]]


@pytest.mark.parametrize("change", ["first removed", "rewritten", "new variable"])
def test_what_the_shortcut_cannot_vouch_for_is_computed_from_scratch(tfb, tmp_path, cache, change):
    run = str(tmp_path / "run")
    for step in (100, 200, 300):
        _save(tfb, run, step)
    old_history = load_history(run)
    old = run_trends(old_history)
    old_ids = {e.prefix: checkpoint_parts(e.prefix) for e in old_history.checkpoints}
    if change == "first removed":
        _remove(run, 100)
    elif change == "rewritten":
        _remove(run, 200)
        _save(tfb, run, 200, frozen=True)
    else:
        tfb.raw_bundle(os.path.join(run, "model.ckpt-400"), {"extra": np.ones(3, np.float32)})
    history = load_history(run)
    ids = {e.prefix: checkpoint_parts(e.prefix) for e in history.checkpoints}
    asked, compute = _recording()
    assert incremental.extend(old, old_ids, history, ids, compute) is None
    assert cached_trends(cache, history) == run_trends(history)
