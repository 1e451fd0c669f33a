"""Evaluations through the result cache: the same result again without running the graph; hostile graphs still refused."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
from graph_fixtures import frozen_softmax, gb, mnist_data, softmax  # noqa: F401

from ckptlib.cache.evaluations import cached_eval_history, cached_evaluate
from ckptlib.cache.store import ResultCache
from ckptlib.errors import ForbiddenOps
from ckptlib.evaluate.evaluation import evaluate
from ckptlib.runs.history import load_history


def _same(a, b) -> bool:
    """Equal results but for the measured speed (a cache hit reports the speed of the run it stored)."""
    return dataclasses.replace(a, images_per_second=0.0) == dataclasses.replace(b, images_per_second=0.0)


def test_an_evaluation_is_run_once_then_served(frozen_softmax, mnist_data, tmp_path):  # noqa: F811
    cache = ResultCache(str(tmp_path / "cache.sqlite3"))
    model = frozen_softmax.output
    first = cached_evaluate(cache, model, mnist=mnist_data, limit=2000)
    again = cached_evaluate(cache, model, mnist=mnist_data, limit=2000)
    assert (cache.misses, cache.hits) == (1, 1) and again == first
    assert _same(first, evaluate(model, mnist=mnist_data, limit=2000))  # the cache returns what TF computed
    cached_evaluate(cache, model, mnist=mnist_data, limit=1000)  # another option: another entry
    assert cache.misses == 2
    copy = tmp_path / "copy.pb"
    shutil.copy(model, copy)
    cached_evaluate(cache, str(copy), mnist=mnist_data, limit=2000)
    cached_evaluate(cache, str(copy), mnist=mnist_data, limit=2000)
    assert (cache.misses, cache.hits) == (3, 2)
    os.utime(copy, ns=(1, 1))  # the same path rewritten (here: only its time): never served stale
    cached_evaluate(cache, str(copy), mnist=mnist_data, limit=2000)
    assert cache.misses == 4


def test_a_hostile_graph_is_refused_even_when_cached(frozen_softmax, mnist_data, tmp_path, gb):  # noqa: F811
    import tensorflow as tf

    cache = ResultCache(str(tmp_path / "cache.sqlite3"))
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="x")
        tf.io.write_file("/tmp/ckptlib-should-not-exist", tf.strings.as_string(tf.reduce_sum(x)), name="out")
    hostile = tmp_path / "hostile.pb"
    hostile.write_bytes(graph.as_graph_def().SerializeToString())
    for _ in range(2):  # refused in the evaluation child, so never stored: refused again, not served
        with pytest.raises(ForbiddenOps):
            cached_evaluate(cache, str(hostile), mnist=mnist_data)
    assert (cache.hits, cache.misses) == (0, 2) and not os.path.exists("/tmp/ckptlib-should-not-exist")


def test_the_memory_limit_is_part_of_the_key(frozen_softmax, mnist_data, tmp_path):  # noqa: F811
    cache = ResultCache(str(tmp_path / "cache.sqlite3"))
    first = cached_evaluate(cache, frozen_softmax.output, mnist=mnist_data, limit=500, memory_limit=2048)
    assert cached_evaluate(cache, frozen_softmax.output, mnist=mnist_data, limit=500, memory_limit=2048,
                           time_limit=30) == first  # the time limit changes no result: served
    assert (cache.misses, cache.hits) == (1, 1)
    cached_evaluate(cache, frozen_softmax.output, mnist=mnist_data, limit=500, memory_limit=1024)
    assert cache.misses == 2  # a tighter memory limit could refuse the graph: computed again


def test_accuracy_over_a_run_is_cached_by_every_checkpoint(softmax, mnist_data, tmp_path, gb):  # noqa: F811
    cache = ResultCache(str(tmp_path / "cache.sqlite3"))
    history = load_history(softmax["run"])
    first = cached_eval_history(cache, history, [gb.LOGITS], mnist=mnist_data, limit=1000)
    again = cached_eval_history(cache, load_history(softmax["run"]), [gb.LOGITS], mnist=mnist_data, limit=1000)
    assert (cache.misses, cache.hits) == (1, 1) and again == first and len(first.points) >= 2
