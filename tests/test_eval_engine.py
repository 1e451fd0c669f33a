"""eval-history on a real Dask cluster (two worker processes): the serial answer, a killed worker retried, a failing
checkpoint skipped, a wrong request stopped; and one GPU per evaluation where a machine has several (issue 13)."""

from __future__ import annotations

import json
import os
import threading

import pytest
from conftest import copy_run
from graph_fixtures import gb, mnist_data, softmax  # noqa: F401
from page_links import APP, assert_rendered, open_page
from test_engine import _dies_once, _Wrapping

from ckptlib import errors
from ckptlib.cli.main import main
from ckptlib.evaluate import sandbox
from ckptlib.evaluate.evaluation import eval_history
from ckptlib.evaluate.gpu_pin import pinned_gpu, visible_gpus
from ckptlib.evaluate.types import Limits

distributed = pytest.importorskip("distributed")
from ckptlib.engine.dask import DaskEngine  # noqa: E402

LIMIT = 500
SAMPLES = os.path.join(os.path.dirname(APP), "sample_checkpoints")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture
def damaged_run(softmax, tmp_path):
    """The softmax run (steps 100, 200 without .meta, 300) with step 200's data truncated."""
    run = copy_run(softmax["run"], tmp_path)
    with open(os.path.join(run, "model.ckpt-200.data-00000-of-00001"), "r+b") as handle:
        handle.truncate(100)
    return run


def _fails_at(step: int, fn, item, *args):
    """On a worker: the task of checkpoint `step` raises every time (Dask retries it, then gives up)."""
    if item.entry.step == step:
        raise OSError(f"simulated storage failure at step {step}")
    return fn(item, *args)


def test_eval_history_on_dask_equals_the_serial_run(gb, softmax, mnist_data, cluster):
    serial = eval_history(softmax["run"], gb.LOGITS, mnist=mnist_data, limit=LIMIT)
    seen = []
    on_dask = eval_history(softmax["run"], gb.LOGITS, mnist=mnist_data, limit=LIMIT, engine=DaskEngine(cluster),
                           progress=lambda *a: seen.append(a))
    assert on_dask == serial and [p.step for p in on_dask.points] == [100, 200, 300]
    assert on_dask.points[1].meta == softmax["prefixes"][0] + ".meta"  # step 200 borrowed step 100's graph there too
    assert sorted(done for done, _, _ in seen[:-1]) == [0, 1, 2] and seen[-1] == (3, 3, "done")


def test_a_damaged_checkpoint_is_skipped_as_serially(gb, damaged_run, mnist_data, cluster):
    serial = eval_history(damaged_run, gb.LOGITS, mnist=mnist_data, limit=LIMIT)
    on_dask = eval_history(damaged_run, gb.LOGITS, mnist=mnist_data, limit=LIMIT, engine=DaskEngine(cluster))
    assert on_dask == serial and [s.step for s in on_dask.skipped] == [200] and "truncated" in on_dask.skipped[0].reason


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_whole(gb, softmax, mnist_data, cluster, tmp_path):
    marker = str(tmp_path / "killed")
    result = eval_history(softmax["run"], gb.LOGITS, mnist=mnist_data, limit=LIMIT,
                          engine=_Wrapping(cluster, _dies_once, marker))
    assert os.path.exists(marker)  # one worker did die
    assert result == eval_history(softmax["run"], gb.LOGITS, mnist=mnist_data, limit=LIMIT)


def test_a_task_that_keeps_failing_lists_its_checkpoint_as_skipped(gb, softmax, mnist_data, cluster):
    result = eval_history(softmax["run"], gb.LOGITS, mnist=mnist_data, limit=LIMIT,
                          engine=_Wrapping(cluster, _fails_at, 200))
    assert [p.step for p in result.points] == [100, 300]
    assert [(s.step, s.prefix) for s in result.skipped] == [(200, softmax["prefixes"][1])]
    assert "simulated storage failure at step 200" in result.skipped[0].reason


def test_a_wrong_request_stops_the_run_instead_of_skipping_every_checkpoint(softmax, mnist_data, cluster):
    with pytest.raises(errors.NodeNotFound) as serial:
        eval_history(softmax["run"], "no_such_op", mnist=mnist_data, limit=LIMIT)
    with pytest.raises(errors.NodeNotFound) as on_dask:
        eval_history(softmax["run"], "no_such_op", mnist=mnist_data, limit=LIMIT, engine=DaskEngine(cluster))
    assert str(on_dask.value) == str(serial.value)


def test_the_cli_runs_eval_history_on_the_scheduler(gb, softmax, cluster, capsys):
    from graph_fixtures import MNIST_DIR

    def doc(*extra):
        argv = ["eval-history", softmax["run"], "--outputs", gb.LOGITS, "--mnist", MNIST_DIR, "--limit", str(LIMIT),
                "--json", "--no-cache", *extra]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    local = doc()
    assert doc("--scheduler", cluster) == local and len(local["points"]) == 3


def test_gpus_are_counted_from_cuda_visible_devices_or_the_driver(tmp_path):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}) == ["0", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,3"}) == ["1"]  # CUDA stops at the first invalid entry
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    proc = tmp_path / "gpus"
    for bus in ("0000:17:00.0", "0000:65:00.0", "0000:ca:00.0"):
        (proc / bus).mkdir(parents=True)
    assert visible_gpus({}, proc=str(proc)) == ["0", "1", "2"]
    assert visible_gpus({}, proc=str(tmp_path / "none")) == []


def test_concurrent_evaluations_hold_different_gpus_and_the_cpu_holds_none(tmp_path):
    environ, locks = {"CUDA_VISIBLE_DEVICES": "4,7"}, str(tmp_path / "locks")
    with pinned_gpu("auto", environ, lock_dir=locks) as (env_a, a), pinned_gpu("gpu", environ, lock_dir=locks) as (_, b):
        assert {a, b} == {"4", "7"} and env_a == {"CUDA_VISIBLE_DEVICES": a}
        waited = []

        def third():  # every GPU is held: it waits for one to be let go
            with pinned_gpu("auto", environ, lock_dir=locks) as (_, c):
                waited.append(c)

        thread = threading.Thread(target=third)
        thread.start()
        thread.join(0.5)
        assert waited == [] and thread.is_alive()
    thread.join(10)
    assert waited and waited[0] in {"4", "7"}
    with pinned_gpu("cpu", environ, lock_dir=locks) as pinned:
        assert pinned == ({}, None)
    with pinned_gpu("auto", {"CUDA_VISIBLE_DEVICES": "3"}, lock_dir=locks) as pinned:
        assert pinned == ({}, None)  # one GPU: nothing to choose


def test_the_evaluation_child_sees_only_its_gpu(tmp_path, monkeypatch):
    (tmp_path / "env_jobs.py").write_text("import os\n\ndef visible(channel, limits):\n    channel.ready()\n"
                                          "    return os.environ.get('CUDA_VISIBLE_DEVICES')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    with pinned_gpu("auto", {"CUDA_VISIBLE_DEVICES": "5,6"}, lock_dir=str(tmp_path / "locks")) as (env, gpu):
        seen = sandbox.run_job("env_jobs:visible", {}, limits=Limits(), source="x", action="evaluate", env=env)
    assert seen == gpu and gpu in {"5", "6"}


def test_the_dashboard_runs_trends_on_the_cluster_the_environment_names(cluster, tmp_path, monkeypatch,
                                                                        restored_root):
    import shutil

    from ckptlib.compare.trends import run_trends
    from ckptlib.engine.choose import ENV_SCHEDULER
    from ckptlib.runs.history import load_history

    root = tmp_path / "root"
    for name in ("linear", "again"):  # "again": a run the page has not drawn yet (no memo) for the second part
        shutil.copytree(os.path.join(SAMPLES, "linear"), root / name)
    monkeypatch.setenv("CKPTLIB_CACHE", str(tmp_path / "cache.sqlite3"))  # nothing computed before: the cluster works
    monkeypatch.setenv(ENV_SCHEDULER, cluster)
    at = assert_rendered(open_page("trends", str(root), {"run": "linear"}))
    assert at.get("plotly_chart")
    from ui import data

    model_only = run_trends(load_history(str(root / "linear")), workers=1, where=lambda v: v.kind == "model")
    assert data.trends(str(root / "linear"), False) == model_only
    monkeypatch.setenv(ENV_SCHEDULER, "tcp://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("CKPTLIB_CACHE", str(tmp_path / "other.sqlite3"))
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        failed = open_page("trends", str(root), {"run": "again"})
    assert not failed.exception
    assert any("Cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'" in e.value for e in failed.error)
