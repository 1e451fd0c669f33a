"""Graphs run in a bounded child process: an abort, a segfault, an endless loop or an allocation bomb is a one-line
CkptError naming the graph, the caller carries on, and TensorFlow's log lines never reach the caller's stderr."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from graph_fixtures import MNIST_DIR, gb, mnist_data  # noqa: F401 - fixtures

from ckptlib import errors
from ckptlib.evaluate import graphfile, limits, running, sandbox
from ckptlib.evaluate.evaluation import evaluate
from ckptlib.evaluate.types import Limits, MnistTestSet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = MnistTestSet(np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8), "four blank images")
# Jobs of our own for the child, which need no TensorFlow (a child that imports it costs ~3 s).
JOBS = '''
import ctypes, os, time
from ckptlib.evaluate.limits import apply_memory_limit

def abort(channel, limits):
    channel.ready()
    os.abort()

def segfault(channel, limits):
    channel.ready()
    ctypes.string_at(0)

def spin(channel, limits):
    channel.ready()
    while True:
        time.sleep(0.05)

def hog(channel, limits, megabytes):
    apply_memory_limit(limits.memory_mb)
    channel.ready()
    return len(bytearray(megabytes << 20))

def chatty(channel, limits, value):
    os.write(1, b"printed by the graph\\n")
    os.write(2, b"E0000 00:00:1 cuda_executor.cc:1] failed call to cuInit\\n")
    channel.ready()
    channel.progress(1, 2, "half")
    return ("answer", value)
'''


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    (tmp_path / "sandbox_jobs.py").write_text(JOBS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return lambda name, **kwargs: sandbox.run_job(f"sandbox_jobs:{name}", kwargs, limits=kwargs.pop("limits", Limits()),
                                                   source="/models/x.pb", action="evaluate")


def test_an_abort_or_a_segfault_in_the_child_is_an_error_and_the_caller_carries_on(jobs):
    with pytest.raises(errors.GraphCrashed, match=r"^Cannot evaluate '/models/x.pb': TensorFlow aborted \(signal 6\)"):
        jobs("abort")
    with pytest.raises(errors.GraphCrashed, match=r"crashed \(signal 11, a segfault\)"):
        jobs("segfault")
    assert jobs("chatty", value=3) == ("answer", 3)  # still here, and the next child works


def test_the_time_limit_stops_the_child(jobs):
    with pytest.raises(errors.TimeLimitExceeded) as info:
        jobs("spin", limits=Limits(time_s=1, memory_mb=64))
    assert str(info.value) == "Cannot evaluate '/models/x.pb': it was stopped after 1 s (--time-limit)."


def test_the_memory_limit_bounds_the_child(jobs):
    with pytest.raises(errors.MemoryLimitExceeded, match=r"ran out of its 64 MB memory limit \(--memory-limit\)"):
        jobs("hog", megabytes=128, limits=Limits(time_s=60, memory_mb=64))
    assert jobs("hog", megabytes=32, limits=Limits(time_s=60, memory_mb=64)) == 32 << 20  # within it: fine


def test_what_the_child_prints_stays_in_the_child(jobs, capfd):
    seen = []
    result = sandbox.run_job("sandbox_jobs:chatty", {"value": [1, 2]}, limits=Limits(), source="x", action="evaluate",
                             progress=lambda *args: seen.append(args))
    assert result == ("answer", [1, 2]) and seen == [(1, 2, "half")]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_limits_are_checked_and_declared_sizes_refused_before_running(gb, tmp_path):
    with pytest.raises(errors.CkptError, match="--time-limit must be a positive"):
        limits.make_limits(0, 10)
    with pytest.raises(errors.CkptError, match="--memory-limit must be a positive"):
        limits.make_limits(5, -1)
    assert limits.make_limits(None, None) == Limits(120, 4096) and Limits().doc == {"time_s": 120, "memory_mb": 4096}

    def bombs():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        huge = gb.tf.fill(gb.tf.constant([100000, 1000000], gb.tf.int64), 1.0, name="bomb")  # 400 GB of float32
        noise = gb.v1.random_uniform([1 << 21, 1 << 10], name="noise")  # 8 GB
        gb.tf.add(gb.tf.matmul(x, gb.tf.zeros([784, 10])), gb.tf.reduce_sum(huge) + gb.tf.reduce_sum(noise),
                  name="logits")
    pb = gb.write_graph(str(tmp_path / "bomb.pb"), bombs)
    graph_def = graphfile.load_graph_def(pb)
    with pytest.raises(errors.MemoryLimitExceeded, match=r"bomb \(Fill\) would make 372\.5 GB, more than its "
                                                         r"4096 MB memory limit \(--memory-limit\)"):
        limits.check_allocations(graph_def, pb, Limits())
    without_fill = type(graph_def)()
    without_fill.CopyFrom(graph_def)
    next(n for n in without_fill.node if n.name == "bomb").input[0] = "zeros/shape_as_tensor"  # [784, 10]
    with pytest.raises(errors.MemoryLimitExceeded, match=r"noise/RandomUniform \(RandomUniform\) would make 8\.0 GB"):
        limits.check_allocations(without_fill, pb, Limits())
    limits.check_allocations(without_fill, pb, Limits(memory_mb=16384))
    with pytest.raises(errors.MemoryLimitExceeded, match="would make 372.5 GB"):
        evaluate(pb, mnist=TINY)  # through the child: refused before TensorFlow allocates anything


def test_an_allocation_the_graph_alone_cannot_tell_hits_the_memory_limit(gb, tmp_path):
    def bomb():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        rows = gb.v1.placeholder(gb.tf.int32, [], name="rows")  # the size comes in with the feed
        huge = gb.tf.fill(gb.tf.stack([rows, 100000]), 1.0)
        gb.tf.add(gb.tf.matmul(x, gb.tf.zeros([784, 10])), gb.tf.reduce_sum(huge), name="logits")
    pb = gb.write_graph(str(tmp_path / "bomb.pb"), bomb)
    with pytest.raises(errors.MemoryLimitExceeded) as info:
        evaluate(pb, mnist=TINY, feeds={"rows": 100000}, memory_limit=512)  # 40 GB asked for
    assert str(info.value).startswith(f"Cannot evaluate '{pb}': it ran out of its 512 MB memory limit (--memory-limit)")


def test_an_endless_loop_from_the_cli_is_stopped_after_its_time_limit(gb, tmp_path):
    def endless():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        count = gb.tf.while_loop(lambda i: gb.tf.greater_equal(i, 0), lambda i: gb.tf.identity(i), [gb.tf.constant(0)])
        gb.tf.add(gb.tf.matmul(x, gb.tf.zeros([784, 10])), gb.tf.cast(count, gb.tf.float32), name="logits")
    pb = gb.write_graph(str(tmp_path / "loop.pb"), endless)
    env = {**os.environ, "PYTHONPATH": REPO, "CKPTLIB_CACHE": str(tmp_path / "cache.sqlite3")}
    run = subprocess.run([sys.executable, "-m", "ckptlib", "eval", pb, "--mnist", MNIST_DIR, "--limit", "10",
                          "--time-limit", "5", "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"error: Cannot evaluate '{pb}': it was stopped after 5 s (--time-limit).\n"


def test_the_child_gives_what_this_process_would(gb, mnist_data, tmp_path):
    rng = np.random.RandomState(3)
    pb = gb.linear_pb(str(tmp_path / "m.pb"), rng.normal(size=(784, 10)).astype(np.float32),
                      np.zeros(10, np.float32), extra="keep_prob")
    child = evaluate(pb, mnist=mnist_data, limit=1500, time_limit=60, memory_limit=2048)
    here = running.evaluate_graph_def(graphfile.load_graph_def(pb), pb, mnist_data, limit=1500)
    assert dataclasses.replace(child, images_per_second=0.0) == dataclasses.replace(here, images_per_second=0.0)


def test_cli_documents_report_the_limits():
    import argparse

    from ckptlib.cli import graph as cli_graph

    parser = argparse.ArgumentParser()
    cli_graph.add_subcommands(parser.add_subparsers(dest="command"))
    docs = [cli_graph._with_limits({}, parser.parse_args(argv))["limits"]
            for argv in (["eval", "m.pb"], ["eval-history", "run", "--outputs", "o", "--time-limit", "7"],
                         ["freeze", "ckpt", "--outputs", "o", "--out", "m.pb", "--memory-limit", "512"])]
    assert docs == [{"time_s": 120, "memory_mb": 4096}, {"time_s": 7, "memory_mb": 4096},
                    {"time_s": 120, "memory_mb": 512}]
