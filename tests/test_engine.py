"""Run-wide work on the engines: forked processes and a real Dask cluster (two worker processes) give the serial
answers, a worker killed mid-run is retried, a task that keeps failing is skipped, an unreachable scheduler is
one error line (issue 13, items 2 and 3)."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from ckptlib.cli.main import main
from ckptlib.compare.health import run_health
from ckptlib.compare.trends import run_trends
from ckptlib.engine.choose import ENV_SCHEDULER, engine_for
from ckptlib.engine.local import LocalEngine, process_count
from ckptlib.engine.types import Task
from ckptlib.runs.history import load_history

distributed = pytest.importorskip("distributed")
from ckptlib.engine.dask import DaskEngine  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A six-checkpoint Adam run (one variable dropped at the end) and the health run with NaN and jumps."""
    import cmpbuild

    folder = tmp_path_factory.mktemp("engine")
    cmpbuild.trend_run(str(folder / "trend"))
    cmpbuild.health_run(str(folder / "health"))
    return str(folder / "trend"), str(folder / "health")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as c:
        yield c.scheduler_address


def _dies_once(marker: str, fn, *args):
    """On a worker: the first task to get here kills its worker process (the marker says it happened)."""
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return fn(*args)
    os._exit(1)


def _fails_for(name: str, fn, *args):
    """On a worker: the task of `name` raises every time (Dask retries it, then gives up)."""
    if args[1] == name:
        raise OSError(f"simulated storage failure for {name}")
    return fn(*args)


class _Wrapping:
    """A DaskEngine whose tasks run through `wrapper(*extra, fn, *args)` on the workers."""

    def __init__(self, address, wrapper, *extra):
        self.engine, self.wrapper, self.extra = DaskEngine(address), wrapper, extra

    def run(self, tasks, progress=None, fork_safe=True):
        wrapped = [Task(t.label, self.wrapper, (*self.extra, t.fn, *t.args), t.weight) for t in tasks]
        return self.engine.run(wrapped, progress)


def test_forked_processes_give_the_serial_trends(runs):
    # First in the file: the cluster fixture starts threads, after which this process no longer forks.
    history = load_history(runs[0])
    serial = run_trends(history, workers=1)
    if threading.active_count() == 1:
        assert process_count(2, [Task(n.name, print) for n in serial.variables]) == 2
    assert run_trends(history, engine=LocalEngine(workers=2)) == serial


def test_trends_and_health_on_dask_equal_the_serial_results(runs, cluster):
    trend_run, health_run = map(load_history, runs)
    seen = []
    on_dask = run_trends(trend_run, engine=DaskEngine(cluster), progress=lambda *a: seen.append(a))
    assert on_dask == run_trends(trend_run, workers=1)
    total = len(on_dask.variables)
    assert sorted(done for done, _, _ in seen[:-1]) == list(range(total)) and seen[-1] == (total, total, "")
    assert {name for _, _, name in seen[:-1]} == {t.name for t in on_dask.variables}
    health = run_health(health_run, include_optimizer=True, engine=DaskEngine(cluster))
    assert health == run_health(health_run, include_optimizer=True)
    assert {"nan_inf", "frozen", "norm_jump"} <= {f.flag for f in health.flags}


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_whole(runs, cluster, tmp_path):
    history = load_history(runs[0])
    marker = str(tmp_path / "killed")
    result = run_trends(history, engine=_Wrapping(cluster, _dies_once, marker))
    assert os.path.exists(marker)  # one worker did die
    assert result == run_trends(history, workers=1)


def test_a_task_that_keeps_failing_lists_its_variable_as_skipped(runs, cluster):
    history = load_history(runs[0])
    serial = run_trends(history, workers=1)
    result = run_trends(history, engine=_Wrapping(cluster, _fails_for, "dense/kernel"))
    failed = result.get("dense/kernel")
    assert failed.points == () and len(failed.skipped) == len(serial.checkpoints)
    assert all(s.error and s.variable == "dense/kernel" and "simulated storage failure" in s.reason
               for s in failed.skipped)
    assert [t for t in result.variables if t.name != "dense/kernel"] == \
        [t for t in serial.variables if t.name != "dense/kernel"]


def test_the_cli_runs_trend_and_health_on_the_scheduler(runs, cluster, capsys, monkeypatch):
    def doc(argv):
        assert main([*argv, "--json", "--no-cache"]) == 0
        return json.loads(capsys.readouterr().out)

    trend = ["trend", runs[0], "--var", "dense/kernel"]
    assert doc([*trend, "--scheduler", cluster]) == doc(trend)
    health = ["health", runs[1], "--include-optimizer"]
    local = doc(health)
    monkeypatch.setenv(ENV_SCHEDULER, cluster)
    assert isinstance(engine_for(None), DaskEngine)
    assert doc(health) == local and local["flags"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "http://127.0.0.1:{port}", "nonsense"])
def test_an_unreachable_scheduler_is_one_error_line_naming_it(runs, capsys, address):
    import dask

    address = address.format(port=_free_port())
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["health", runs[1], "--scheduler", address])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: Cannot reach the Dask scheduler at ") and f"'{address}'" in err


def test_the_engine_is_chosen_by_option_then_environment():
    assert engine_for(None, environ={}) == LocalEngine()
    assert engine_for(None, workers=1, environ={ENV_SCHEDULER: " "}) == LocalEngine(1)
    assert engine_for(None, environ={ENV_SCHEDULER: "tcp://h:1"}) == DaskEngine("tcp://h:1")
    assert engine_for("tcp://a:2", environ={ENV_SCHEDULER: "tcp://h:1"}) == DaskEngine("tcp://a:2")
