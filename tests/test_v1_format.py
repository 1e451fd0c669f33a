"""V1 checkpoints (TF <= 0.11, one table file): sniffed and listed natively, read through TensorFlow's reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bundle import _field, _table

from ckptlib import _tf, errors
from ckptlib.formats import v1table
from ckptlib.formats.bundle.table import read_table
from ckptlib.formats.v1table import V1Checkpoint

tf = pytest.importorskip("tensorflow")
v1 = tf.compat.v1
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READABLE = {"float32": np.float32, "float64": np.float64, "int8": np.int8, "int16": np.int16, "int32": np.int32,
            "int64": np.int64, "uint8": np.uint8, "bool": np.bool_}  # fmt: skip


def _v1_save(folder: Path, build) -> str:
    """Run `build()` in a fresh graph and save it with the V1 saver; returns the checkpoint file."""
    folder.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default():
        build()
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            return saver.save(sess, str(folder / "model.ckpt"), global_step=1000)


def _every_kind():
    for dtype, np_dtype in READABLE.items():
        values = (np.arange(6) % 2 == 0) if dtype == "bool" else (np.arange(6) - 2).astype(np_dtype)
        v1.get_variable(f"kinds/{dtype}", initializer=tf.constant(values.reshape(2, 3)))
    v1.get_variable("kinds/scalar", initializer=tf.constant(2.5, tf.float64))
    v1.get_variable("kinds/words", initializer=tf.constant([b"ab", b"", b"\xff\x00"]))
    v1.get_variable("kinds/empty", initializer=tf.zeros([0, 3]))
    v1.get_variable("kinds/half", initializer=tf.constant([1.5, 2.0], tf.float16))
    v1.get_variable("dense/partitioned", shape=(10, 4), partitioner=v1.fixed_size_partitioner(3),
                    initializer=v1.random_normal_initializer(seed=1))  # fmt: skip
    v1.train.get_or_create_global_step()


@pytest.fixture(scope="module")
def v1_file(tmp_path_factory) -> str:
    return _v1_save(tmp_path_factory.mktemp("v1") / "run", _every_kind)


def test_sniff_knows_a_v1_file_from_everything_else(v1_file, tmp_path, saver_rel):
    assert v1table.sniff(v1_file) == v1_file
    assert v1table.sniff(v1_file + ".meta") == v1_file
    v2 = saver_rel[1][-1]
    assert v1table.sniff(v2) is None and v1table.sniff(v2 + ".index") is None and v1table.sniff(v2 + ".meta") is None
    (tmp_path / "bare").write_bytes(Path(v2 + ".index").read_bytes())  # a V2 index under a V1-like name
    (tmp_path / "text").write_text("model_checkpoint_path: 'x'\n" * 10)
    (tmp_path / "random").write_bytes(np.random.default_rng(0).bytes(4096))
    os.mkfifo(tmp_path / "fifo")
    for name in ("bare", "text", "random", "fifo", "missing"):
        assert v1table.sniff(str(tmp_path / name)) is None, name


@pytest.mark.parametrize("backend", ["native", "tf"])
def test_lists_what_tensorflow_lists(v1_file, backend):
    reader = tf.train.load_checkpoint(v1_file)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    ckpt = V1Checkpoint(v1_file, backend=backend)
    assert [v.name for v in ckpt.variables] == sorted(shapes)
    for var in ckpt.variables:
        assert list(var.shape) == shapes[var.name] and var.dtype == dtypes[var.name].name, var.name
        assert var.nbytes > 0 or var.name == "kinds/empty"
    assert ckpt.info("global_step").kind == "counter" and ckpt.format_name == "tf-checkpoint-v1"


@pytest.mark.parametrize("backend", ["native", "tf"])
def test_reads_the_values_tensorflow_reads(v1_file, backend):
    reader = tf.train.load_checkpoint(v1_file)
    ckpt = V1Checkpoint(v1_file, backend=backend)
    for var in ckpt.variables:
        if var.name in ("kinds/half", "dense/partitioned"):
            continue
        ours, theirs = ckpt.read(var.name), np.asarray(reader.get_tensor(var.name))
        assert ours.shape == var.shape and ours.tolist() == theirs.tolist(), var.name
    assert ckpt.read("kinds/int16").tolist() == [[-2, -1, 0], [1, 2, 3]]
    assert ckpt.read("kinds/words").tolist() == [b"ab", b"", b"\xff\x00"]
    assert ckpt.read("global_step").tolist() == 0
    chunks = [c.copy() for c in ckpt.iter_chunks("kinds/float64", chunk_elements=4)]
    assert [c.tolist() for c in chunks] == [[-2, -1, 0, 1], [2, 3]]


def test_what_tensorflow_cannot_read_is_a_clear_error(v1_file):
    ckpt = V1Checkpoint(v1_file)
    with pytest.raises(errors.UnsupportedFormat, match="'dense/partitioned' is partitioned into 3 slices"):
        ckpt.read("dense/partitioned")
    with pytest.raises(errors.UnsupportedFormat, match="dtype float16, which TensorFlow's reader cannot read"):
        ckpt.read("kinds/half")
    with pytest.raises(errors.VariableNotFound):
        ckpt.read("nope")


def test_without_tensorflow_it_lists_and_says_how_to_read(v1_file, monkeypatch):
    def no_tensorflow():
        raise ModuleNotFoundError("No module named 'tensorflow'")

    monkeypatch.setattr(_tf, "tf", no_tensorflow)
    ckpt = V1Checkpoint(v1_file)
    assert "kinds/float32" in [v.name for v in ckpt.variables]
    with pytest.raises(errors.UnsupportedFormat) as caught:
        ckpt.read("kinds/float32")
    message = str(caught.value)
    assert v1_file in message and "install TensorFlow" in message and len(message.splitlines()) == 1


def test_listing_never_imports_tensorflow(v1_file):
    code = ("import sys\nfrom ckptlib.formats.v1table import V1Checkpoint, sniff\n"
            "print(len(V1Checkpoint(sniff(sys.argv[1])).variables), 'tensorflow' in sys.modules)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, v1_file], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(V1Checkpoint(v1_file).variables)), "False"]


# --- crafted V1 files: refused natively before TensorFlow sees them ----------------------------------
def _meta(name: bytes, dims: tuple, dtype: int) -> bytes:
    # SavedTensorSlices.meta = 1 { tensor = 1: SavedSliceMeta { name = 1, shape = 2, type = 3, slice = 4 } }
    shape = b"".join(_field(2, _field(1, d)) for d in dims)
    whole = b"".join(_field(1, b"") for _ in dims)
    return _field(1, _field(1, _field(1, name) + _field(2, shape) + _field(3, dtype) + _field(4, whole)))


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, str]:
    def one_vector():
        v1.get_variable("w", initializer=tf.constant([1.0, 2.0]))

    real = _v1_save(tmp_path_factory.mktemp("v1_real"), one_vector)
    pairs = read_table(Path(real).read_bytes())
    root = tmp_path_factory.mktemp("v1_crafted")
    cases = {
        "negative-dim": {b"": _meta(b"w", (-3,), 1)},
        "rank-300": {b"": _meta(b"w", (1,) * 300, 1)},
        "dtype-99": {b"": _meta(b"w", (2,), 99)},
        "too-few-values": {b"": _meta(b"w", (5,), 1)},
        "missing-values": {key: None for key, _ in pairs if key},
    }
    made = {}
    for name, changes in cases.items():
        table = [(k, changes.get(k, v)) for k, v in pairs if changes.get(k, v) is not None]
        (root / name).write_bytes(_table(table))
        made[name] = str(root / name)
    return made


BAD_V1 = {  # name -> (error, words, whether listing already fails)
    "negative-dim": (errors.CorruptCheckpoint, "'w': shape has dimension -3", True),
    "rank-300": (errors.CorruptCheckpoint, "'w': shape has 300 dimensions", True),
    "dtype-99": (errors.UnsupportedFormat, "unknown_dtype_99", False),
    "too-few-values": (errors.CorruptCheckpoint, "'w' stores 2 values for its shape [5]", False),
    "missing-values": (errors.CorruptCheckpoint, "'w': its values are missing", False),
}


@pytest.mark.parametrize("name", sorted(BAD_V1))
def test_crafted_v1_files_give_their_error(crafted, name):
    kind, words, at_listing = BAD_V1[name]
    assert v1table.sniff(crafted[name]) == crafted[name]
    ckpt = V1Checkpoint(crafted[name])
    with pytest.raises(kind) as caught:
        ckpt.variables if at_listing else ckpt.read("w")  # noqa: B018
    message = str(caught.value)
    assert words in message and len(message.splitlines()) == 1, message


_CHILD = """
import json, sys
from ckptlib import errors
from ckptlib.formats.v1table import V1Checkpoint
for name, path in json.loads(sys.argv[1]).items():
    try:
        ckpt = V1Checkpoint(path, backend="tf")
        for var in ckpt.variables:
            ckpt.read(var.name)
        print("READ", name, flush=True)
    except errors.CkptError as exc:
        print("ERROR", name, type(exc).__name__, str(exc), flush=True)
"""


def test_tensorflow_reader_never_aborts_on_crafted_v1_files(crafted):
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(crafted)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"TensorFlow died (rc {done.returncode}): {done.stdout[-500:]} {done.stderr[-800:]}"
    results = {line.split()[1]: line for line in done.stdout.splitlines()}
    for name, (kind, words, _) in BAD_V1.items():
        assert results[name].startswith(f"ERROR {name} {kind.__name__} ") and words in results[name], results[name]
