"""Runs in object storage, measured: TensorFlow runs uploaded to a real S3 API (moto's server on 127.0.0.1,
behind tests/s3store.py's counting proxy). Every read command answers as on the local copy, fetches no
more than it needs, and the store's failures are one-line errors that never show a credential."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import copy_run

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
from s3store import ACCESS_KEY, SECRET_KEY, S3Store, SilentServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "sample_checkpoints")
BUCKET = "ckptlib-runs"
SLACK = 64 << 10  # what a read may fetch beyond what it asked for


@pytest.fixture(scope="module")
def store():
    with S3Store() as running:
        yield running


@pytest.fixture(scope="module")
def tree(store, tfb, saver_rel, manager_plain, sharded, tmp_path_factory):
    """A local root of runs, deep folders of other files and a frozen graph, and its copy in the bucket."""
    root = tmp_path_factory.mktemp("s3_tree") / "root"
    runs = root / "runs"
    copy_run(saver_rel[0], runs, "saver")
    copy_run(manager_plain[0], runs, "manager")
    copy_run(os.path.dirname(sharded[0]), runs, "sharded")
    copy_run(os.path.join(SAMPLES, "linear"), runs, "linear")
    (runs / "big").mkdir()
    values = {"small": np.arange(16, dtype=np.float32)}
    values.update({f"big{i}": np.full(1 << 18, float(i), np.float32) for i in range(4)})  # 4 × 1 MB
    tfb.raw_bundle(str(runs / "big" / "model.ckpt-1"), values)
    for i in range(12):  # a deep tree of files that are not checkpoints
        deep = root / "logs" / f"job{i}" / "train" / "plugins"
        deep.mkdir(parents=True)
        (deep / "events.out.tfevents").write_bytes(b"x" * 100)
    from ckptlib.evaluate.freeze import freeze

    (root / "models").mkdir()
    prefix = os.path.join(SAMPLES, "mnist_cnn", "lr3e-3_bs100", "model.ckpt-1000")
    freeze(prefix, ["prediction/probabilities"], str(root / "models" / "model.pb"))
    url = store.upload(str(root), BUCKET, "root")
    return str(root), url


@pytest.fixture
def in_process(store, monkeypatch):
    """This process's s3fs pointed at the store, as the CLI's is."""
    for key, value in store.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)


def _cli(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ckptlib", *argv], cwd=REPO, env={**env, "PYTHONPATH": REPO},
                          capture_output=True, text=True, timeout=180)


def _both(store, tree, *argv: str):
    """(local document, URL document with the URL mapped back to the local root, the URL run's request counts)."""
    from ckptlib.cli.main import main

    local_root, url_root = tree
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # the local side in-process: TensorFlow is imported here already
        assert main([*[a.format(root=local_root) for a in argv], "--json"]) == 0
    store.reset()
    there = _cli(store.env(), *[a.format(root=url_root) for a in argv], "--json")
    assert there.returncode == 0, there.stderr
    counts = store.summary()
    assert url_root in there.stdout
    return json.loads(out.getvalue()), json.loads(there.stdout.replace(url_root, local_root)), counts


def _comparable(doc):
    """`doc` without what an upload cannot keep: file times (and the notes about them), eval's speed."""
    if isinstance(doc, list):
        return [_comparable(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    return {k: [n for n in v if "file times" not in n.lower()] if k == "notes" else _comparable(v)
            for k, v in doc.items() if k not in ("mtime", "time_source", "images_per_second", "file_times_copied")}


COMMANDS = {
    "runs": ["runs", "{root}"],
    "history-saver": ["history", "{root}/runs/saver"],
    "history-manager": ["history", "{root}/runs/manager"],
    "history-sharded": ["history", "{root}/runs/sharded"],
    "history-no-state-file": ["history", "{root}/runs/big"],
    "vars-run": ["vars", "{root}/runs/manager"],
    "vars-sharded": ["vars", "{root}/runs/sharded"],
    "show": ["show", "{root}/runs/linear", "--var", "linear/weights"],
    "show-partitioned": ["show", "{root}/runs/sharded", "--var", "embedding"],
    "diff": ["diff", "{root}/runs/linear/model.ckpt-100", "{root}/runs/linear/model.ckpt-500"],
    "trend": ["trend", "{root}/runs/linear", "--var", "linear/weights"],
    "graph": ["graph", "{root}/runs/linear/model.ckpt-500.meta"],
    "eval": ["eval", "{root}/models/model.pb", "--mnist", os.path.join(SAMPLES, "mnist_test"), "--limit", "200",
             "--device", "cpu"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_read_command_answers_as_on_disk(store, tree, name):
    here, there, counts = _both(store, tree, *COMMANDS[name])
    # Only what an upload cannot keep differs: an object's mtime is its upload time (so history may say the
    # file times look copied), and eval's speed.
    assert _comparable(there) == _comparable(here)
    assert counts["HEAD"] <= 3, counts  # sizes and times come from listings


def test_show_fetches_the_tensor_not_the_shard(store, tree):
    local_root, url_root = tree
    prefix = f"{url_root}/runs/big/model.ckpt-1"
    index = os.path.getsize(f"{local_root}/runs/big/model.ckpt-1.index")
    shard = os.path.getsize(f"{local_root}/runs/big/model.ckpt-1.data-00000-of-00001")
    for var, nbytes in (("small", 64), ("big2", 1 << 20)):
        store.reset()
        done = _cli(store.env(), "show", prefix, "--var", var, "--json", "--no-cache")
        assert done.returncode == 0, done.stderr
        counts = store.summary()
        assert counts["object_bytes"] <= nbytes + index + SLACK < shard, counts
        assert counts["GET"] <= 3 and counts["LIST"] + counts["HEAD"] <= 3, counts
        ranged = [r for r in store.log if r.kind == "GET" and ".data-" in r.path]
        assert ranged and all(r.range and r.status == 206 for r in ranged)


def test_history_lists_the_run_once_and_reads_only_small_files(store, tree):
    local_root, url_root = tree
    store.reset()
    done = _cli(store.env(), "history", f"{url_root}/runs/linear", "--json")
    assert done.returncode == 0, done.stderr
    counts = store.summary()
    names = os.listdir(f"{local_root}/runs/linear")
    small = sum(os.path.getsize(f"{local_root}/runs/linear/{n}") for n in names if n.endswith((".index", "checkpoint")))
    one_meta = os.path.getsize(f"{local_root}/runs/linear/model.ckpt-500.meta")  # the Saver's max_to_keep
    assert counts["LIST"] == 1 and counts["HEAD"] == 0, counts
    assert counts["GET"] <= 1 + sum(n.endswith(".index") for n in names) + 1, counts
    assert counts["object_bytes"] <= small + one_meta, counts


def test_runs_over_a_deep_tree_is_a_bounded_number_of_listings(store, tree):
    _, url_root = tree
    store.reset()
    done = _cli(store.env(), "runs", url_root, "--json")
    assert done.returncode == 0, done.stderr
    counts = store.summary()
    assert len(json.loads(done.stdout)["runs"]) == 5
    assert counts["LIST"] <= 2 and counts["HEAD"] == 0, counts  # 12 deep folders of logs cost nothing extra
    assert all(r.nbytes <= SLACK for r in store.log if ".data-" in r.path)  # at most a step counter, never a shard


def test_adjacent_ranges_are_coalesced_into_one_request(store, tree, in_process):
    from ckptlib import storage
    from ckptlib.formats import bundle

    _, url_root = tree
    prefix = f"{url_root}/runs/big/model.ckpt-1"
    with storage.operation():
        index = bundle.read_index(prefix)
        entries = sorted((index.entries[f"big{i}"] for i in range(4)), key=lambda e: e.offset)
        store.reset()
        with storage.RangeFile(index.data_path(0)) as f:
            f.prefetch([(e.offset, e.offset + e.size) for e in entries[:3]])
            fetched = [r for r in store.log if r.kind == "GET"]  # (and one HEAD: the shard's size)
            for e in entries[:3]:
                view = memoryview(bytearray(e.size))
                assert f.readinto(e.offset, view) == e.size
        assert len(fetched) == 1 and fetched[0].range == f"bytes={entries[0].offset}-{entries[2].offset + entries[2].size - 1}"
        assert [r for r in store.log if r.kind == "GET"] == fetched  # the reads were served from those bytes


def test_listings_last_one_operation_never_longer(store, tree, in_process):
    from ckptlib import storage

    _, url_root = tree
    folder = f"{url_root}/runs/linear"
    with storage.operation():
        before = storage.listdir(folder)
        store.reset()
        sizes = [storage.getsize(storage.join(folder, name)) for name, _ in before]
        assert sizes and store.log == []  # every size from the listing: no request at all
        store.client().put_object(Bucket=BUCKET, Key="root/runs/linear/model.ckpt-600.index", Body=b"new")
        assert storage.listdir(folder) == before  # the same operation: the same listing
    try:
        with storage.operation():  # the next operation (command, rerun) lists afresh
            assert ("model.ckpt-600.index", False) in storage.listdir(folder)
        assert storage.exists(f"{folder}/model.ckpt-600.index")  # outside any operation: asked every time
    finally:
        store.client().delete_object(Bucket=BUCKET, Key="root/runs/linear/model.ckpt-600.index")
    assert not storage.exists(f"{folder}/model.ckpt-600.index")


def _one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" and done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and ACCESS_KEY not in done.stderr and SECRET_KEY not in done.stderr
    assert "Signature" not in done.stderr and "X-Amz" not in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    return done.stderr


def test_a_missing_bucket_is_named(store):
    _one_line_error(_cli(store.env(), "history", "s3://no-such-bucket-here/run", "--json"),
                    "s3://no-such-bucket-here/run", "bucket 'no-such-bucket-here' does not exist")
    _one_line_error(_cli(store.env(), "runs", "s3://no-such-bucket-here"), "does not exist")


def test_access_denied_names_the_url_never_the_credentials(store, tree):
    _, url_root = tree

    def deny(method, path, query):
        return (403, "AccessDenied", "Access Denied") if path.startswith(f"/{BUCKET}") else None

    store.faults.append(deny)
    try:
        for argv in (["history", f"{url_root}/runs/linear"], ["vars", f"{url_root}/runs/linear/model.ckpt-500"],
                     ["runs", url_root]):
            _one_line_error(_cli(store.env(), *argv), "access denied", argv[1])
    finally:
        store.faults.remove(deny)


def test_throttling_is_retried(store, tree):
    _, url_root = tree
    throttled = []

    def slow_down(method, path, query):
        if method == "GET" and path.endswith("model.ckpt-500.index") and len(throttled) < 2:
            throttled.append(path)
            return 503, "SlowDown", "Please reduce your request rate."
        return None

    store.faults.append(slow_down)
    try:
        store.reset()
        done = _cli(store.env(), "vars", f"{url_root}/runs/linear/model.ckpt-500", "--json")
    finally:
        store.faults.remove(slow_down)
    assert done.returncode == 0, done.stderr
    assert len(throttled) == 2 and [r.status for r in store.log if r.kind == "GET"][-1] == 206
    assert len(json.loads(done.stdout)["variables"]) == 3


def test_a_store_that_never_answers_times_out_in_one_line(store):
    quick = json.dumps({"config_kwargs": {"connect_timeout": 0.3, "read_timeout": 0.3,
                                          "retries": {"total_max_attempts": 1}}})
    with SilentServer() as silent:
        env = store.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{silent.port}", FSSPEC_S3=quick)
        _one_line_error(_cli(env, "history", f"s3://{BUCKET}/root/runs/linear"), "did not answer in time",
                        f"s3://{BUCKET}/root/runs/linear")


def test_no_credentials_is_one_line(store, tree):
    env = {k: v for k, v in store.env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    _one_line_error(_cli(env, "history", f"{tree[1]}/runs/linear"), "no credentials")


def test_messages_never_carry_signed_urls_or_keys(monkeypatch):
    from ckptlib.storage import errors as store_errors

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    signed = f"https://b.s3.amazonaws.com/k?X-Amz-Credential={ACCESS_KEY}%2F20260101&X-Amz-Signature=abc123"
    assert store_errors.public_url(signed) == "https://b.s3.amazonaws.com/k"
    text = store_errors.redact(f"failed: {signed} with secret {SECRET_KEY} at s3://{ACCESS_KEY}:pw@bucket/run")
    assert ACCESS_KEY not in text and SECRET_KEY not in text and "abc123" not in text and "pw@" not in text

    class ClientError(Exception):  # the shape of botocore's: a response dict with the store's code
        response = {"Error": {"Code": "SlowDown", "Message": f"Please reduce your request rate ({SECRET_KEY})"}}

    mapped = store_errors.describe(ClientError("x"), signed)
    assert isinstance(mapped, store_errors.StoreError) and "throttling" in str(mapped)
    assert SECRET_KEY not in str(mapped) and "X-Amz" not in str(mapped)
    assert store_errors.describe(KeyError("not the store's"), "s3://b/k") is None


def test_history_page_with_a_bucket_prefix_as_root(store, tree, in_process, monkeypatch):
    from streamlit.testing.v1 import AppTest

    local_root, url_root = tree
    monkeypatch.setenv("CKPTLIB_ROOT", f"{url_root}/runs")
    at = AppTest.from_file(os.path.join(REPO, "dashboard.py"), default_timeout=60)
    at.query_params["run"] = "linear"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "History"
    table = at.dataframe[0].value
    on_disk = {f[: -len(".index")] for f in os.listdir(f"{local_root}/runs/linear") if f.endswith(".index")}
    assert set(table["checkpoint"]) == on_disk and (table["status"] == "latest").sum() == 1
    assert at.caption[0].value == f"{url_root}/runs/linear"


def test_graph_page_lists_and_draws_a_bucket_runs_graphs(store, tree, in_process, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ckptlib.graph.load import load_graph

    local_root, url_root = tree
    here = load_graph(f"{local_root}/runs/linear/model.ckpt-500.meta")
    there = load_graph(f"{url_root}/runs/linear/model.ckpt-500.meta")
    assert [n.name for n in there.nodes] == [n.name for n in here.nodes]
    monkeypatch.setenv("CKPTLIB_ROOT", f"{url_root}/runs")
    at = AppTest.from_file(os.path.join(REPO, "dashboard.py"), default_timeout=60)
    at.query_params["run"] = "linear"
    at.run()
    at.switch_page("pages/graph.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    offered = {option for box in at.selectbox for option in box.options}
    metas = {f for f in os.listdir(f"{local_root}/runs/linear") if f.endswith(".meta")}
    assert metas <= offered, offered
