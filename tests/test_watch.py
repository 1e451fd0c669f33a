"""`watch`: a run followed live. Real TensorFlow trainers in subprocesses, and the backend driven poll by poll.

The deterministic tests give watch_run a fake clock and sleep, and change the folder between two polls
(or, with RunWatcher, between a poll's listing and its reading); every checkpoint is a real one written by
TensorFlow, copied into place file by file the way a slow writer or a sync tool would.
"""

from __future__ import annotations

import glob
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from ckptlib import errors
from ckptlib.live.watcher import RunWatcher, watch_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = (np.arange(12, dtype=np.float32).reshape(3, 4) + 1) / 10


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Real v1 Saver checkpoints to copy into watched folders: {label: prefix}."""
    import cmpbuild  # imports TensorFlow

    root = tmp_path_factory.mktemp("watch_sources")
    nan_kernel = KERNEL.copy()
    nan_kernel[0, 0] = np.nan
    kernels = {"a": KERNEL, "b": KERNEL * 1.1, "c": KERNEL * 1.2, "jump": KERNEL * 10, "nan": nan_kernel}
    return {label: cmpbuild.save_v1(str(root / label / "model.ckpt"),
                                    {"dense/kernel": kernel, "dense/bias": np.ones(4, np.float32),
                                     "global_step": np.array(7, np.int64)})
            for label, kernel in kernels.items()}


def files_of(prefix: str) -> list[str]:
    return sorted(glob.glob(prefix + ".index") + glob.glob(prefix + ".data-*"))


def place(src: str, run, name: str, data_bytes: int | None = None) -> str:
    """Copy checkpoint `src` into `run` as `name`: data shards first, the index last (as TensorFlow renames
    them); `data_bytes` cuts the data shard short, like a copy still under way."""
    dst = os.path.join(str(run), name)
    for path in sorted(files_of(src), key=lambda p: p.endswith(".index")):
        target = dst + path[len(src):]
        with open(path, "rb") as source, open(target, "wb") as out:
            data = source.read()
            out.write(data[:data_bytes] if data_bytes is not None and ".data-" in path else data)
    return dst


def remove(prefix: str) -> None:
    for path in files_of(prefix):
        os.remove(path)


class FakeTime:
    """A clock that only moves when the watcher sleeps; `actions[t]` changes the folder just before the poll at t."""

    def __init__(self, actions=None):
        self.now = 0.0
        self.actions = dict(actions or {})
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        action = self.actions.pop(round(self.now, 6), None)
        if action is not None:
            action()


def watched(run, fake: FakeTime, timeout: float, **kwargs) -> list[tuple[float, object]]:
    """(poll time, event) of every event of a watch with interval 1 under the fake clock."""
    return [(fake.now, e) for e in watch_run(str(run), interval=1, timeout=timeout, sleep=fake.sleep,
                                            clock=fake.clock, **kwargs)]


def names(pairs) -> list[str]:
    return [os.path.basename(e.prefix) for _, e in pairs]


# --- The backend, poll by poll -------------------------------------------------------------------------


def test_checkpoints_already_there_come_first_in_step_order_after_a_second_look(sources, tmp_path):
    for label, name in (("c", "model.ckpt-10"), ("a", "model.ckpt-2"), ("b", "model.ckpt-5")):
        place(sources[label], tmp_path, name)
    fake = FakeTime()
    got = watched(tmp_path, fake, timeout=3)
    assert names(got) == ["model.ckpt-2", "model.ckpt-5", "model.ckpt-10"]
    assert [t for t, _ in got] == [1, 1, 1]  # the poll at 0 only lists; the one at 1 confirms nothing moved
    first, second, third = (e for _, e in got)
    assert (first.step, first.change, first.health) == (2, None, ())
    assert first.time == pytest.approx(os.path.getmtime(str(tmp_path / "model.ckpt-2.index")), abs=1e-6)
    assert second.change.from_prefix == first.prefix
    assert math.isclose(second.change.max_rel_change, 0.1, rel_tol=1e-5)
    assert second.change.top[0][0] == "dense/kernel"
    assert second.change.top[1] == ("dense/bias", 0.0)  # equal crc32c: not read, known to be 0
    assert [name for name, _ in second.change.top] == ["dense/kernel", "dense/bias"]  # counters left out
    assert math.isclose(third.change.max_rel_change, 0.1 / 1.1, rel_tol=1e-5)
    assert fake.sleeps == [1, 1, 1]


def test_half_written_checkpoints_wait_until_their_files_stop_changing(sources, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    data_size = os.path.getsize(files_of(sources["a"])[0])
    fake = FakeTime({
        1: lambda: place(sources["a"], run, "model.ckpt-1", data_bytes=data_size // 2),  # index, short shard
        3: lambda: place(sources["a"], run, "model.ckpt-1"),  # the shard grows to its full size
        5: lambda: (os.mkdir(run / "model.ckpt-2_temp"), place(sources["b"], run, "model.ckpt-2")),
        7: lambda: os.rmdir(run / "model.ckpt-2_temp"),  # the save finished: its temp folder is gone
        9: lambda: (run / "model.ckpt-3.data-00000-of-00001").write_bytes(b"a shard without its index"),
    })
    got = watched(run, fake, timeout=12)
    # Short at 1 and 2 (listed, read at 2: a short shard), growing at 3, still at 4: read at 4.
    # model.ckpt-2 is complete at 5 but its temp folder stays until 7; the folder's going is a change: 8.
    assert [(t, n) for (t, _), n in zip(got, names(got))] == [(4, "model.ckpt-1"), (8, "model.ckpt-2")]
    assert got[1][1].change.from_prefix == got[0][1].prefix


def test_a_checkpoint_vanishing_between_listing_and_reading_is_skipped_silently(sources, tmp_path):
    for label, name in (("a", "model.ckpt-1"), ("b", "model.ckpt-2"), ("c", "model.ckpt-3")):
        place(sources[label], tmp_path, name)
    skipped = []
    watcher = RunWatcher(str(tmp_path), on_skip=skipped.append)
    assert watcher.scan() == []
    ready = watcher.scan()
    assert ready == ["model.ckpt-1", "model.ckpt-2", "model.ckpt-3"]
    remove(str(tmp_path / "model.ckpt-2"))  # max_to_keep at work
    events = list(watcher.read(ready))
    assert [e.name for e in events] == ["model.ckpt-1", "model.ckpt-3"]
    assert events[1].change.from_prefix == events[0].prefix
    assert list(watcher.poll()) == [] and skipped == []


def test_a_checkpoint_still_there_at_the_next_poll_is_read_then(sources, tmp_path):
    place(sources["a"], tmp_path, "model.ckpt-1")
    watcher = RunWatcher(str(tmp_path))
    watcher.scan()
    ready = watcher.scan()
    data = files_of(str(tmp_path / "model.ckpt-1"))[0]
    os.rename(data, data + ".away")  # gone while we read: the listing said complete, the disk did not
    assert list(watcher.read(ready)) == []
    os.rename(data + ".away", data)  # back before the next poll, same size and mtime as both listings saw
    assert [e.name for e in watcher.poll()] == ["model.ckpt-1"]
    assert list(watcher.poll()) == []


def test_an_unreadable_checkpoint_is_retried_once_then_reported_as_skipped(sources, tmp_path):
    prefix = place(sources["a"], tmp_path, "model.ckpt-1")
    index = tmp_path / "model.ckpt-1.index"
    good = index.read_bytes()
    index.write_bytes(good[: len(good) // 2])  # complete-looking, but a broken index
    skipped = []
    watcher = RunWatcher(str(tmp_path), on_skip=skipped.append)
    assert [list(watcher.poll()) for _ in range(5)] == [[]] * 5
    assert len(skipped) == 1 and skipped[0].prefix == prefix and skipped[0].error
    index.write_bytes(good)  # repaired: its files changed, so it is looked at again
    assert list(watcher.poll()) == []
    assert [e.name for e in watcher.poll()] == ["model.ckpt-1"]


def test_a_rewritten_prefix_is_new_a_touched_one_is_not(sources, tmp_path):
    place(sources["a"], tmp_path, "model.ckpt-1")
    place(sources["b"], tmp_path, "model.ckpt-2")

    def touch():
        os.utime(str(tmp_path / "model.ckpt-2.index"), (1e9, 1e9))

    fake = FakeTime({2: touch, 4: lambda: place(sources["c"], tmp_path, "model.ckpt-1"),
                     6: lambda: place(sources["jump"], tmp_path, "model.ckpt-1"),
                     8: lambda: place(sources["a"], tmp_path, "model.ckpt-1")})  # its first bytes: seen already
    got = watched(tmp_path, fake, timeout=10)
    assert [(t, n) for (t, _), n in zip(got, names(got))] == [
        (1, "model.ckpt-1"), (1, "model.ckpt-2"), (5, "model.ckpt-1"), (7, "model.ckpt-1")]
    rewritten, again = got[2][1], got[3][1]
    assert rewritten.change.from_prefix.endswith("model.ckpt-2")
    assert math.isclose(rewritten.change.max_rel_change, 0.1 / 1.1, rel_tol=1e-5)
    assert again.change.max_rel_change is None and "overwritten" in again.change.problem
    assert again.flags == {"norm_jump"}  # norms are kept from the last report: no need for its old files


def test_health_flags_of_consecutive_checkpoints(sources, tmp_path):
    for label, name in (("a", "model.ckpt-1"), ("jump", "model.ckpt-2"), ("nan", "model.ckpt-3")):
        place(sources[label], tmp_path, name)
    events = [e for _, e in watched(tmp_path, FakeTime(), timeout=1)]
    assert [sorted(e.flags) for e in events] == [[], ["norm_jump"], ["nan_inf", "norm_collapse"]]
    jump = events[1].health[0]
    assert (jump.variable, jump.step) == ("dense/kernel", 2) and "x10" in jump.detail
    nan = next(f for f in events[2].health if f.flag == "nan_inf")
    assert (nan.variable, nan.step, nan.prefix) == ("dense/kernel", 3, events[2].prefix)
    assert nan.detail.startswith("1 NaN and 0 Inf")


def test_remote_runs_back_off_while_quiet(sources, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    root = f"/watch-{uuid.uuid4().hex}"

    def upload(label: str, name: str) -> None:
        for path in sorted(files_of(sources[label]), key=lambda p: p.endswith(".index")):
            with open(path, "rb") as source:
                fs.pipe(f"{root}/{name}{path[len(sources[label]):]}", source.read())

    upload("a", "model.ckpt-1")
    try:
        fake = FakeTime({15: lambda: upload("b", "model.ckpt-2")})
        got = watched("memory://" + root, fake, timeout=30)
        assert [(t, n) for (t, _), n in zip(got, names(got))] == [(1, "model.ckpt-1"), (16, "model.ckpt-2")]
        assert got[1][1].change.from_prefix == "memory://" + root + "/model.ckpt-1"
        assert fake.sleeps == [1, 2, 4, 8, 1, 2, 4, 8]
    finally:
        fs.rm(root, recursive=True)


def test_a_quiet_folder_costs_a_listing_per_poll_and_nothing_more(sources, tmp_path):
    place(sources["a"], tmp_path, "model.ckpt-1")
    watcher = RunWatcher(str(tmp_path))
    watcher.scan()
    assert [e.name for e in watcher.read(watcher.scan())] == ["model.ckpt-1"]
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n')  # the state file moves
    assert [watcher.scan() for _ in range(3)] == [[], [], []]  # nothing to open: no checkpoint file changed
    assert watcher.changed is False


def test_stop_ends_the_watch_after_the_current_poll(sources, tmp_path):
    place(sources["a"], tmp_path, "model.ckpt-1")
    fake = FakeTime()
    polls = iter([False, True])
    got = watched(tmp_path, fake, timeout=None, stop=lambda: next(polls))
    assert names(got) == ["model.ckpt-1"] and fake.sleeps == [1]


def test_watch_run_refuses_a_missing_run_at_once(tmp_path):
    with pytest.raises(errors.NotFound, match="no such folder"):
        watch_run(str(tmp_path / "nowhere"))


# --- The command line ----------------------------------------------------------------------------------


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_fail_on_nan_inf_exits_1_right_after_the_flagged_checkpoint(sources, tmp_path):
    for label, name in (("a", "model.ckpt-1"), ("nan", "model.ckpt-2"), ("b", "model.ckpt-3")):
        place(sources[label], tmp_path, name)
    proc = cli("watch", str(tmp_path), "--json", "--interval", "0.1", "--timeout", "30", "--fail-on", "nan_inf")
    assert proc.returncode == 1, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["step"] for e in events] == [1, 2]
    assert events[0]["change"] is None and events[0]["health"] == []
    flag = events[1]["health"][0]
    assert set(flag) == {"variable", "flag", "detail"} and flag["flag"] == "nan_inf"
    assert set(events[1]["change"]) == {"from", "max_rel_change", "top"}
    assert proc.stderr == ""


def test_text_lines_and_timeout_exit_0_frozen_never_fires(sources, tmp_path):
    place(sources["a"], tmp_path, "model.ckpt-1")
    place(sources["a"], tmp_path, "model.ckpt-2")  # identical: `health` would call it frozen
    proc = cli("watch", str(tmp_path), "--interval", "0.1", "--timeout", "1", "--fail-on", "frozen")
    assert (proc.returncode, proc.stderr) == (0, "")
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("step 1  model.ckpt-1  ") and lines[0].endswith("first checkpoint")
    assert "max rel_change 0 " in lines[1] and lines[1].endswith("vs model.ckpt-1")


def test_an_empty_folder_is_watched_a_missing_one_is_one_error_line(tmp_path):
    proc = cli("watch", str(tmp_path), "--json", "--interval", "0.1", "--timeout", "0.3")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    proc = cli("watch", str(tmp_path / "nowhere"), "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nowhere" in lines[0]


# --- A real training run, watched live -----------------------------------------------------------------

TRAINER = r'''
import os, shutil, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf

mode, run, num_saves = sys.argv[1], sys.argv[2], int(sys.argv[3])
stem = "model.ckpt-" if mode == "saver" else "ckpt-"


def interrupted_saves(last, n):
    """Saves that never finish, made of copies of the last real checkpoint's files, removed again."""
    index, data = last + ".index", last + ".data-00000-of-00001"
    base = os.path.join(run, stem + str(n))
    os.mkdir(base + "_temp")  # a sharded save's temp folder, with the merged files already beside it
    shutil.copyfile(data, base + ".data-00000-of-00001")
    shutil.copyfile(index, base + ".index")
    time.sleep(0.6)
    os.remove(base + ".index")
    os.remove(base + ".data-00000-of-00001")
    os.rmdir(base + "_temp")
    base = os.path.join(run, stem + str(n + 1))
    raw = open(data, "rb").read()
    with open(base + ".data-00000-of-00001", "wb") as out:  # a shard growing, its index never written
        out.write(raw[: len(raw) // 2]); out.flush(); time.sleep(0.3); out.write(raw[len(raw) // 2 :])
    time.sleep(0.3)
    os.remove(base + ".data-00000-of-00001")
    base = os.path.join(run, stem + str(n + 2))
    shutil.copyfile(index, base + ".index")  # an index whose shard is cut short
    with open(base + ".data-00000-of-00001", "wb") as out:
        out.write(raw[: len(raw) // 3])
    time.sleep(0.6)
    os.remove(base + ".index")
    os.remove(base + ".data-00000-of-00001")


def saver_run():
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        step = v1.train.get_or_create_global_step()
        w = v1.get_variable("dense/kernel", [4, 3], initializer=v1.random_normal_initializer(seed=1))
        loss = tf.reduce_sum(tf.square(w - 1.0))
        train = v1.train.AdamOptimizer(0.05).minimize(loss, global_step=step)
        saver = v1.train.Saver(max_to_keep=2)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(num_saves):
                sess.run(train)
                yield saver.save(sess, os.path.join(run, "model.ckpt"), global_step=step)


def manager_run():
    w = tf.Variable(np.ones((4, 3), np.float32), name="w")
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step, net=tf.Module())
    ckpt.net.w = w
    manager = tf.train.CheckpointManager(ckpt, run, max_to_keep=2)
    for _ in range(num_saves):
        w.assign(w * 1.5)
        step.assign_add(10)
        yield manager.save(checkpoint_number=int(step.numpy()))


for i, saved in enumerate(saver_run() if mode == "saver" else manager_run()):
    print(saved, flush=True)
    if i in (2, 6):
        interrupted_saves(saved, 9000 + 10 * i)
    time.sleep(0.5)
'''


@pytest.mark.parametrize("mode", ["saver", "manager"])
def test_a_live_training_run_is_reported_checkpoint_by_checkpoint(mode, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    script = tmp_path / "train.py"
    script.write_text(TRAINER)
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        watcher = subprocess.Popen([sys.executable, "-m", "ckptlib", "watch", str(run), "--json", "--interval", "0.2",
                                    "--timeout", "90"], cwd=REPO, stdout=stdout, stderr=stderr)
        try:
            trainer = subprocess.run([sys.executable, str(script), mode, str(run), "10"], capture_output=True,
                                     text=True, timeout=120, check=False)
            assert trainer.returncode == 0, trainer.stderr[-3000:]
            saved = [os.path.abspath(line) for line in trainer.stdout.split()]
            assert len(saved) == 10
            deadline = time.monotonic() + 10
            while saved[-1] not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            watcher.send_signal(signal.SIGINT)  # Ctrl-C: the normal end of a watch
            assert watcher.wait(timeout=20) == 0
        finally:
            if watcher.poll() is None:
                watcher.kill()
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["prefix"] for e in events] == saved  # each once, in step order, none of the unfinished ones
    steps = [e["step"] for e in events]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert events[0]["change"] is None
    assert [e["change"]["from"] for e in events[1:]] == saved[:-1]
    assert all(e["health"] == [] for e in events)
    assert "Traceback" not in err.read_text() and err.read_text() == ""
