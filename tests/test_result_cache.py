"""The persistent result cache: hits give the very same documents, and nothing stale or tampered is served."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import copy_run

from ckptlib.cache.results import cached_diff, cached_trends
from ckptlib.cache.store import ResultCache
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import open_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(cache: str | None, *args: str) -> str:
    env = dict(os.environ)
    if cache is not None:
        env["CKPTLIB_CACHE"] = cache
    proc = subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _entries(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]


@pytest.fixture
def run(saver_rel, tmp_path):
    return copy_run(saver_rel[0], tmp_path / "runs")


def _prefixes(run: str) -> list[str]:
    return sorted((os.path.join(run, n[:-6]) for n in os.listdir(run) if n.endswith(".index")),
                  key=lambda p: int(p.rsplit("-", 1)[1]))


def test_a_fresh_process_gets_the_identical_documents_from_the_cache(run, tmp_path):
    cache = str(tmp_path / "cache.sqlite3")
    a, b = _prefixes(run)[0], _prefixes(run)[-1]
    commands = [["diff", a, b, "--json"], ["trend", run, "--var", "dense/kernel", "--json"],
                ["health", run, "--json"], ["show", b, "--var", "dense/kernel", "--json"]]
    fresh = [cli(cache, *c, "--no-cache") for c in commands]
    assert not os.path.exists(cache)  # --no-cache neither reads nor writes it
    first = [cli(cache, *c) for c in commands]
    assert _entries(cache) == 5  # one per command, and the trend's "latest for this run" entry (incremental.py)
    again = [cli(cache, *c) for c in commands]
    assert fresh == first == again
    assert _entries(cache) == 5  # hits: nothing new stored


def test_rewritten_checkpoints_and_changed_options_are_misses(run, tmp_path):
    import tensorflow as tf

    cache = ResultCache(str(tmp_path / "cache.sqlite3"))
    a, b = _prefixes(run)[0], _prefixes(run)[-1]
    first = cached_diff(cache, open_checkpoint(a), open_checkpoint(b))
    assert (cache.hits, cache.misses) == (0, 1)
    assert cached_diff(cache, open_checkpoint(a), open_checkpoint(b)) == first and cache.hits == 1
    cached_diff(cache, open_checkpoint(a), open_checkpoint(b), atol=0.5)
    cached_diff(cache, open_checkpoint(a), open_checkpoint(b), verify=True)
    assert cache.misses == 3
    # Rewrite B in place with TensorFlow: every float tensor doubled.
    reader = tf.train.load_checkpoint(b)
    names = sorted(reader.get_variable_to_shape_map())
    values = [reader.get_tensor(n) * (2 if reader.get_tensor(n).dtype.kind == "f" else 1) for n in names]
    tf.raw_ops.SaveV2(prefix=b, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])
    rewritten = cached_diff(cache, open_checkpoint(a), open_checkpoint(b))
    assert cache.misses == 4 and rewritten != first
    kernel = next(r for r in rewritten.variables if r.name == "dense/kernel")
    expected = (reader.get_tensor("dense/kernel").astype(np.float64) * 2
                - tf.train.load_checkpoint(a).get_tensor("dense/kernel").astype(np.float64))
    assert kernel.l2_diff == pytest.approx(float(np.linalg.norm(expected)), rel=1e-9)
    history = load_history(run)
    cached_trends(cache, history, ["dense/kernel"])
    cached_trends(cache, load_history(run), ["dense/kernel"])
    assert cache.hits == 2


def test_corrupt_and_tampered_entries_are_recomputed_never_trusted(run, tmp_path):
    path = str(tmp_path / "cache.sqlite3")
    cache = ResultCache(path)
    a, b = _prefixes(run)[0], _prefixes(run)[-1]
    good = cached_diff(cache, open_checkpoint(a), open_checkpoint(b))
    hostile = {"$dc": "os:system", "f": {"command": "touch " + str(tmp_path / "pwned")}}
    for blob in (b"\x00garbage", zlib.compress(json.dumps(hostile).encode()), zlib.compress(b"{}")[:5]):
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE results SET value = ?", (blob,))
        fresh = ResultCache(path)
        assert cached_diff(fresh, open_checkpoint(a), open_checkpoint(b)) == good
        assert (fresh.hits, fresh.misses) == (0, 1)
    assert not (tmp_path / "pwned").exists()


def test_size_bound_evicts_the_least_recently_used(tmp_path):
    cache = ResultCache(str(tmp_path / "cache.sqlite3"), max_bytes=40_000)
    for i in range(40):
        cache.put(f"k{i}", tuple(float(x) for x in np.random.default_rng(i).standard_normal(200)))
        cache.get("k0")  # keep one entry hot
    with sqlite3.connect(cache.path) as conn:
        total, count = conn.execute("SELECT SUM(size), COUNT(*) FROM results").fetchone()
    assert total <= 40_000 and count < 40
    assert cache.get("k0") is not None and cache.get("k1") is None and cache.get("k39") is not None


def test_concurrent_processes_fill_one_cache(run, tmp_path):
    cache = str(tmp_path / "cache.sqlite3")
    prefixes = _prefixes(run)
    env = dict(os.environ, CKPTLIB_CACHE=cache)
    procs = [subprocess.Popen([sys.executable, "-m", "ckptlib", "diff", prefixes[0], p, "--json"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in prefixes[1:]]
    outs = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert [rc for _, _, rc in outs] == [0] * len(procs), [err for _, err, _ in outs]
    assert _entries(cache) == len(procs)
    for (out, _, _), p in zip(outs, prefixes[1:]):
        assert cli(cache, "diff", prefixes[0], p, "--json") == out


def test_an_unusable_cache_file_is_ignored(run, tmp_path):
    bad = tmp_path / "not-a-db.sqlite3"
    bad.write_bytes(b"this is not an sqlite file at all" * 100)
    a, b = _prefixes(run)[0], _prefixes(run)[-1]
    assert json.loads(cli(str(bad), "diff", a, b, "--json"))["summary"]


def test_a_rewritten_single_file_export_is_a_miss(tmp_path):
    """Formats without an .index (.keras, .weights.h5, a frozen .pb) are known by their file's size and mtime."""
    import shutil
    import time

    runs = os.path.join(REPO, "sample_checkpoints", "mnist_cnn")
    a, b = str(tmp_path / "a.pb"), str(tmp_path / "b.pb")
    shutil.copy(os.path.join(runs, "lr5e-3_bs50", "frozen.pb"), a)
    shutil.copy(os.path.join(runs, "lr3e-3_bs100", "frozen.pb"), b)
    cache = ResultCache(str(tmp_path / "cache.sqlite3"))
    assert cached_diff(cache, open_checkpoint(a), open_checkpoint(b)).summary["changed"] > 0
    time.sleep(0.01)
    shutil.copy(a, b)  # b now holds a's weights
    again = cached_diff(cache, open_checkpoint(a), open_checkpoint(b))
    assert cache.hits == 0 and again.summary["changed"] == 0
