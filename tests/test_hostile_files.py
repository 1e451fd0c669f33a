"""Hostile files: crafted indexes, FIFOs, devices, links out of the run, huge files, impossible shapes.

Each known-bad file has the one-line error it must give (the table below), with the native reader and with
TensorFlow's (`--reader tf`), which the native parser vets first: TensorFlow aborts or crashes on several
of them, so that half runs in a child process that must come back alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import copy_run
from test_bundle import _entry, _field, _varint, _write_bundle

from ckptlib import errors, storage
from ckptlib.formats.bundle import iter_chunks, read_flat, read_index, read_tensor
from ckptlib.formats.bundle.table import crc32c, mask_crc
from ckptlib.formats.v2bundle import BundleCheckpoint
from ckptlib.runs.history import find_runs, load_history
from ckptlib.runs.saverdef import read_retention
from ckptlib.tensors.stats import chunk_stats

tf = pytest.importorskip("tensorflow")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OK4 = crc32c(bytes(4))


def _huge_string() -> tuple[bytes, bytes]:
    # One string claiming 2^40 bytes, with a correct length checksum: TensorFlow 2.21 segfaults reading it.
    n = 1 << 40
    data = _varint(n) + mask_crc(crc32c(n.to_bytes(8, "little"))).to_bytes(4, "little") + bytes(16)
    return _entry(7, (1,), 0, len(data), 0), data


def _overlong_dim() -> bytes:
    dim = b"\x08" + b"\xff" * 9 + b"\x7f"  # TensorShapeProto.Dim.size as a 10-byte varint: 2^70 - 1
    return _field(1, 1) + _field(2, _field(2, dim)) + _field(5, 4)


# name -> (entries, data, error class, words the message must hold, whether the index itself is refused)
HOSTILE = {
    "negative-dim": ({b"v": _entry(1, (-5,), 0, 4, OK4)}, bytes(4), errors.CorruptCheckpoint,
                     "'v': shape has dimension -5", True),
    "dim-2^63": ({b"v": _entry(1, (1 << 63,), 0, 4, OK4)}, bytes(4), errors.CorruptCheckpoint,
                 "'v': shape has dimension -9223372036854775808", True),
    "dim-past-2^64": ({b"v": _overlong_dim()}, bytes(4), errors.CorruptCheckpoint,
                      "'v': shape has dimension 1180591620717411303423", True),
    "count-overflow": ({b"v": _entry(1, (1 << 32, 1 << 32, 4), 0, 4, OK4)}, bytes(4), errors.CorruptCheckpoint,
                       "has more than 2^63-1 elements", True),
    "rank-255": ({b"v": _entry(1, (1,) * 255, 0, 4, OK4)}, bytes(4), errors.CorruptCheckpoint,
                 "'v': shape has 255 dimensions (TensorFlow allows at most 254)", True),
    "rank-100002": ({b"v": _entry(1, (1,) * 100_002, 0, 4, OK4)}, bytes(4), errors.CorruptCheckpoint,
                    "'v': shape has 100002 dimensions", True),
    "dtype-0": ({b"v": _entry(0, (1,), 0, 4, OK4)}, bytes(4), errors.UnsupportedFormat, "unknown_dtype_0", False),
    "dtype-101": ({b"v": _entry(101, (1,), 0, 4, OK4)}, bytes(4), errors.UnsupportedFormat, "unknown_dtype_101",
                  False),
    "beyond-shard": ({b"v": _entry(1, (1 << 36,), 0, 1 << 38, 0)}, bytes(16), errors.IncompleteCheckpoint,
                     "too short for 'v'", False),
    "string-length": ({b"v": _huge_string()[0]}, _huge_string()[1], errors.CorruptCheckpoint,
                      "string tensor 'v'", False),
    "name-clash": ({b"a\xff": _entry(1, (1,), 0, 4, OK4), b"a\\xff": _entry(1, (1,), 0, 4, OK4)}, bytes(4),
                   errors.UnsupportedFormat, "keys b'a\\\\xff' and b'a\\xff' both read as the variable name", True),
}  # fmt: skip


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hostile")
    prefixes = {}
    for name, (entries, data, *_ignored) in HOSTILE.items():
        (root / name).mkdir()
        prefixes[name] = _write_bundle(str(root / name / "model.ckpt-1"), entries, data)
    return prefixes


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert len(message.splitlines()) == 1 and message.startswith("Cannot read checkpoint '"), message
    return message


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_known_bad_index_gives_its_error(hostile, name):
    _, _, kind, words, index_refused = HOSTILE[name]
    if index_refused:
        with pytest.raises(kind) as caught:
            read_index(hostile[name])
    else:
        index = read_index(hostile[name])
        (var,) = index.entries
        with pytest.raises(kind) as caught:
            read_tensor(index, var)
    assert words in _one_line(caught.value)


_CHILD = """
import json, sys
from ckptlib import errors
from ckptlib.formats.v2bundle import BundleCheckpoint
for name, prefix in json.loads(sys.argv[1]).items():
    print("START", name, flush=True)
    try:
        ckpt = BundleCheckpoint(prefix, backend="tf")
        for var in ckpt.variables:
            ckpt.read(var.name)
        print("READ", name, flush=True)
    except errors.CkptError as exc:
        print("ERROR", name, type(exc).__name__, str(exc), flush=True)
"""


def test_tensorflow_reader_never_aborts_on_them(hostile):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(hostile)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode == 0, f"TensorFlow died (rc {done.returncode}) after {lines[-1:]}: {done.stderr[-800:]}"
    results = {line.split()[1]: line for line in lines if not line.startswith("START")}
    for name, (_, _, kind, words, _) in HOSTILE.items():
        assert results[name].startswith(f"ERROR {name} {kind.__name__} "), results[name]
        assert words in results[name], results[name]


# --- files that are not regular files -------------------------------------------------------------
def _without_blocking(call, *args, seconds: float = 20.0):
    """call(*args) in a thread; fails the test (instead of hanging it) when it does not return in time."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call(*args)
        except BaseException as exc:  # handed back to the test below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{getattr(call, '__name__', call)} blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def fifo_run(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    os.remove(os.path.join(run, "model.ckpt-6.index"))
    os.mkfifo(os.path.join(run, "model.ckpt-6.index"))
    os.mkfifo(os.path.join(run, "model.ckpt-5.data-00000-of-00001.bak"))  # a stray one: listed, never opened
    return run


def test_a_fifo_named_like_an_index_never_blocks(fifo_run):
    history = _without_blocking(load_history, fifo_run)
    bad = next(e for e in history.checkpoints if e.prefix.endswith("model.ckpt-6"))
    assert not bad.complete and "model.ckpt-6.index is not a regular file" in bad.problem
    assert [run.num_checkpoints for run in _without_blocking(find_runs, fifo_run)] == [3]
    with pytest.raises(errors.NotACheckpoint, match="not a regular file"):
        _without_blocking(read_index, os.path.join(fifo_run, "model.ckpt-6"))
    with pytest.raises(storage.NotARegularFile):
        _without_blocking(storage.read_bytes, os.path.join(fifo_run, "model.ckpt-6.index"), 1 << 20)


def test_a_fifo_data_shard_is_refused(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    data = os.path.join(run, "model.ckpt-6.data-00000-of-00001")
    os.remove(data)
    os.mkfifo(data)
    index = read_index(os.path.join(run, "model.ckpt-6"))
    with pytest.raises(errors.CkptError, match="data-00000-of-00001 cannot be read \\(not a regular file\\)"):
        _without_blocking(read_tensor, index, "dense/kernel")


def test_links_to_devices_and_out_of_the_run_are_refused(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path / "runs")
    elsewhere = copy_run(saver_rel[0], tmp_path / "outside")
    os.remove(os.path.join(run, "model.ckpt-6.index"))
    os.symlink("/dev/zero", os.path.join(run, "model.ckpt-6.index"))
    os.remove(os.path.join(run, "model.ckpt-6.meta"))
    os.symlink("/dev/zero", os.path.join(run, "model.ckpt-6.meta"))
    os.remove(os.path.join(run, "model.ckpt-5.index"))
    os.symlink(os.path.join(elsewhere, "model.ckpt-5.index"), os.path.join(run, "model.ckpt-5.index"))
    with pytest.raises(errors.NotACheckpoint, match="model.ckpt-6.index is a symbolic link that points outside"):
        read_index(os.path.join(run, "model.ckpt-6"))  # /dev/zero: out of the folder, and no regular file
    with pytest.raises(errors.NotACheckpoint, match="model.ckpt-5.index is a symbolic link that points outside"):
        read_index(os.path.join(run, "model.ckpt-5"))
    assert read_retention(os.path.join(run, "model.ckpt-6.meta")) is None  # never read from /dev/zero
    with pytest.raises(storage.NotARegularFile):
        storage.read_bytes(os.path.join(run, "model.ckpt-6.meta"), 1 << 30)
    problems = {e.prefix.rsplit("/", 1)[1]: e.problem for e in load_history(run).checkpoints}
    assert "points outside" in problems["model.ckpt-6"] and "points outside" in problems["model.ckpt-5"]
    os.remove(os.path.join(run, "model.ckpt-4.index"))
    os.mkfifo(os.path.join(run, "fifo"))
    os.symlink("fifo", os.path.join(run, "model.ckpt-4.index"))  # inside the folder, but a FIFO
    with pytest.raises(errors.NotACheckpoint, match="model.ckpt-4.index is not a regular file"):
        read_index(os.path.join(run, "model.ckpt-4"))


def test_links_inside_the_run_are_followed(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    os.mkdir(os.path.join(run, "store"))
    for name in ("model.ckpt-6.index", "model.ckpt-6.data-00000-of-00001"):
        os.rename(os.path.join(run, name), os.path.join(run, "store", name))
        os.symlink(os.path.join("store", name), os.path.join(run, name))
    ckpt = BundleCheckpoint(os.path.join(run, "model.ckpt-6"))
    assert ckpt.read("dense/kernel").shape == (4, 3)
    assert load_history(run).latest.prefix.endswith("model.ckpt-6")


def test_huge_index_and_meta_files_are_never_read_whole(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    for suffix in (".index", ".meta"):
        path = os.path.join(run, "model.ckpt-6" + suffix)
        with open(path, "r+b") as handle:  # 6 GB, sparse: the magic of a table footer at its end
            handle.truncate(6 << 30)
            handle.seek((6 << 30) - 8)
            handle.write((0xDB4775248B80FB57).to_bytes(8, "little"))
    with pytest.raises(errors.NotACheckpoint) as caught:
        read_index(os.path.join(run, "model.ckpt-6"))
    assert "model.ckpt-6.index is too large to be an index (6442450944 bytes)" in _one_line(caught.value)
    assert read_retention(os.path.join(run, "model.ckpt-6.meta")) is None
    entry = next(e for e in load_history(run).checkpoints if e.prefix.endswith("model.ckpt-6"))
    assert not entry.complete and "too large to be an index" in entry.problem


# --- shapes TensorFlow writes that numpy cannot hold ----------------------------------------------
@pytest.fixture(scope="module")
def rank66(tmp_path_factory) -> tuple[str, np.ndarray]:
    values = np.arange(12, dtype=np.float32)
    variable = tf.Variable(tf.reshape(values, [1] * 32 + [2] + [1] * 32 + [6]))
    prefix = tf.train.Checkpoint(v=variable).write(str(tmp_path_factory.mktemp("rank66") / "ckpt"))
    return prefix, values


@pytest.mark.parametrize("backend", ["native", "tf"])
def test_rank_66_is_listed_and_streams_flattened(rank66, backend):
    prefix, values = rank66
    ckpt = BundleCheckpoint(prefix, backend=backend)
    info = ckpt.info("v/.ATTRIBUTES/VARIABLE_VALUE")
    assert info.shape == (1,) * 32 + (2,) + (1,) * 32 + (6,) and info.num_elements == 12
    if backend == "native":
        chunks = [c.copy() for c in ckpt.iter_chunks(info.name, chunk_elements=5)]
        assert np.concatenate(chunks).tolist() == values.tolist()
        stats = chunk_stats(ckpt.iter_chunks(info.name))
        assert (stats.min, stats.max) == (0.0, 11.0)
    with pytest.raises(errors.UnsupportedFormat) as caught:
        ckpt.read(info.name)
    assert "66 dimensions" in _one_line(caught.value)


def test_rank_66_read_flat_and_chunks_of_the_index(rank66):
    prefix, values = rank66
    index = read_index(prefix)
    assert read_flat(index, "v/.ATTRIBUTES/VARIABLE_VALUE").tolist() == values.tolist()
    assert [c.size for c in iter_chunks(index, "v/.ATTRIBUTES/VARIABLE_VALUE", chunk_bytes=16)] == [4, 4, 4]


def test_history_says_which_data_shard_is_no_regular_file(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path / "runs")
    elsewhere = copy_run(saver_rel[0], tmp_path / "outside")
    data = os.path.join(run, "model.ckpt-6.data-00000-of-00001")
    os.remove(data)
    os.symlink(os.path.join(elsewhere, "model.ckpt-6.data-00000-of-00001"), data)
    entry = next(e for e in load_history(run).checkpoints if e.prefix.endswith("model.ckpt-6"))
    assert not entry.complete
    assert "model.ckpt-6.data-00000-of-00001 is a symbolic link that points outside its folder" in entry.problem
