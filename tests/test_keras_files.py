"""Keras 3 files (.keras, .weights.h5, sharded .weights.json, legacy .h5) written by Keras itself, read without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import snapshot

from ckptlib import errors
from ckptlib.compare.diff import diff_checkpoints
from ckptlib.formats import open_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def _reference(model) -> dict:
    """What Keras itself says: every weight's path and value, every optimizer variable's path and value."""
    weights = {v.path: np.array(v.numpy()) for v in model.weights}
    optimizer = getattr(model, "optimizer", None)  # an uncompiled model has none
    optimizer = {v.path: np.array(v.numpy()) for v in optimizer.variables} if optimizer else {}
    return {"weights": weights, "optimizer": optimizer, "order": [v.path for v in model.weights]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A Sequential model (Dense, BatchNormalization, Dense; Adam, one epoch) saved every way Keras 3 saves,
    a Functional one (Embedding, Conv1D, LSTM, LayerNormalization, Dense; SGD with momentum), and the first
    as a tf.train.Checkpoint of the same weights."""
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("keras_files")
    keras.utils.set_random_seed(1)
    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
                            keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="head")],
                           name="sequential")  # explicit names: Keras numbers default ones per process
    seq.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mse")
    seq.fit(np.random.rand(16, 4), np.random.rand(16, 2), epochs=1, batch_size=8, verbose=0)
    seq.save(folder / "seq.keras")
    seq.save_weights(folder / "seq.weights.h5")
    seq.save_weights(folder / "sharded.weights.json", max_shard_size=3e-7)  # GB: a few hundred bytes a shard
    seq.save(folder / "seq.h5")  # legacy HDF5: Keras 3 still writes it (with a warning)
    tf.train.Checkpoint(model=seq, optimizer=seq.optimizer).write(str(folder / "tf" / "ckpt"))

    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(10, 4, name="embed")(inputs)
    x = keras.layers.Conv1D(3, 2, name="conv")(x)
    x = keras.layers.LSTM(2, name="rnn", return_sequences=False)(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(1, use_bias=False, name="out")(x)
    fun = keras.Model(inputs, outputs, name="fun")
    fun.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, name="sgd"), loss="mse")
    fun.fit(np.random.randint(0, 10, (8, 6)), np.random.rand(8, 1), epochs=1, batch_size=4, verbose=0)
    fun.save(folder / "fun.keras")
    fun.save_weights(folder / "fun.weights.h5")

    half = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="bf", dtype="bfloat16"),
                             keras.layers.Dense(2, name="fp", dtype="float16")], name="half")
    half.save(folder / "half.keras")  # bfloat16 is stored as 2 opaque bytes marked by a dtype attribute
    half.save_weights(folder / "half.weights.h5")
    return {"folder": str(folder), "seq": _reference(seq), "fun": _reference(fun), "half": _reference(half),
            "shards": sorted(n for n in os.listdir(folder) if n.startswith("sharded_"))}


def _path(files, name: str) -> str:
    return os.path.join(files["folder"], name)


def _model_names(ckpt) -> list[str]:
    return [v.display_name for v in ckpt.variables if v.kind == "model"]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", ["seq.keras", "seq.weights.h5", "sharded.weights.json", "seq.h5"])
def test_every_model_weight_has_its_keras_path_and_value(files, name):
    ckpt = open_checkpoint(_path(files, name))
    expected = files["seq"]["weights"]
    assert sorted(_model_names(ckpt)) == sorted(expected)  # variable.path, e.g. sequential/hidden/kernel
    for path, value in expected.items():
        assert _same(ckpt.read(path), value), path  # bit for bit, by display name


@pytest.mark.parametrize("name", ["seq.keras", "seq.weights.h5", "sharded.weights.json", "seq.h5"])
def test_optimizer_state_is_named_like_keras_does(files, name):
    ckpt = open_checkpoint(_path(files, name))
    expected = files["seq"]["optimizer"]  # adam/iteration, adam/learning_rate, adam/sequential_hidden_kernel_momentum…
    found = {v.display_name: v for v in ckpt.variables if v.kind in ("optimizer", "counter")}
    assert sorted(found) == sorted(expected)
    assert found["adam/iteration"].kind == "counter" and int(ckpt.read("adam/iteration")) == 2  # 16 rows / 8
    assert all(v.kind == "optimizer" for n, v in found.items() if n != "adam/iteration")
    for path, value in expected.items():
        assert _same(ckpt.read(path), value), path
    if name != "seq.h5":  # the position rule knows which weight each slot belongs to
        assert found["adam/sequential_head_kernel_velocity"].slot_of == "sequential/head/kernel"


def test_formats_and_notes(files):
    keras_file = open_checkpoint(_path(files, "seq.keras"))
    weights = open_checkpoint(_path(files, "seq.weights.h5"))
    legacy = open_checkpoint(_path(files, "seq.h5"))
    sharded = open_checkpoint(_path(files, "sharded.weights.json"))
    assert (keras_file.format_name, weights.format_name, legacy.format_name, sharded.format_name) == (
        "keras", "keras-weights-h5", "keras-legacy-h5", "keras-weights-h5")
    kernel = weights.info("sequential/hidden/kernel")
    assert kernel.name == "layers/dense/vars/0"  # the raw key: the dataset path
    assert kernel.note == "named by position: dense weights are kernel, bias"
    assert keras_file.info("sequential/bn/moving_mean").note == (
        "named by position from the config: BatchNormalization weights are gamma, beta, moving_mean, moving_variance")
    assert legacy.info("sequential/hidden/kernel").note is None  # stored under its own name
    assert len(files["shards"]) > 1 and len(sharded.shards) == len(files["shards"])


@pytest.mark.parametrize("name", ["fun.keras", "fun.weights.h5"])
def test_functional_model_names_and_values(files, name):
    ckpt = open_checkpoint(_path(files, name))
    expected = files["fun"]
    assert sorted(_model_names(ckpt)) == sorted(expected["weights"])  # embed/embeddings, rnn/lstm_cell/kernel…
    assert "out/kernel" in expected["weights"] and "fun/out/kernel" not in expected["weights"]
    for path, value in expected["weights"].items():
        assert _same(ckpt.read(path), value)
    optimizer = {v.display_name for v in ckpt.variables if v.kind != "model"}
    assert optimizer == set(expected["optimizer"])  # sgd/rnn_lstm_cell_kernel_momentum, …


@pytest.mark.parametrize("name", ["half.keras", "half.weights.h5"])
def test_half_precision_weights(files, name):
    ckpt = open_checkpoint(_path(files, name))
    assert {v.display_name: v.dtype for v in ckpt.variables} == {
        "half/bf/kernel": "bfloat16", "half/bf/bias": "bfloat16",
        "half/fp/kernel": "float16", "half/fp/bias": "float16"}
    for path, value in files["half"]["weights"].items():
        assert _same(ckpt.read(path), value)


@pytest.mark.parametrize("name", ["seq.keras", "seq.weights.h5", "seq.h5"])
def test_chunks_rebuild_the_tensor(files, name):
    ckpt = open_checkpoint(_path(files, name))
    for var in ckpt.variables:
        whole = ckpt.read(var.name).reshape(-1)
        for size in (1, 2, 5):
            chunks = list(np.copy(c) for c in ckpt.iter_chunks(var.name, chunk_elements=size))
            assert all(c.size <= size for c in chunks) or whole.size <= size
            assert _same(np.concatenate(chunks) if chunks else whole, whole)
    with pytest.raises(errors.VariableNotFound):
        ckpt.iter_chunks("no/such/variable")


def test_show_json_stats_match_numpy(files):
    value = files["seq"]["weights"]["sequential/hidden/kernel"].astype(np.float64)
    for name in ("seq.keras", "seq.weights.h5"):
        proc = run_cli("show", _path(files, name), "--var", "sequential/hidden/kernel", "--json")
        assert proc.returncode == 0, proc.stderr
        stats = json.loads(proc.stdout)["stats"]
        for key, expected in (("min", value.min()), ("max", value.max()), ("mean", value.mean()),
                              ("std", value.std()), ("l2", np.sqrt((value ** 2).sum()))):
            assert abs(stats[key] - expected) <= 1e-6, key


def test_keras_file_pairs_with_a_tf_checkpoint_of_the_same_model(files):
    diff = diff_checkpoints(open_checkpoint(_path(files, "seq.keras")), open_checkpoint(_path(files, "tf/ckpt")))
    rows = {row.display_name or row.name: row for row in diff.variables}
    for path in files["seq"]["weights"]:
        assert rows[path].status == "unchanged", path  # paired by Keras path, not by key
    for path in files["seq"]["optimizer"]:
        assert rows[path].status == "unchanged", path
    assert {row.status for row in diff.variables if row.kind != "metadata"} == {"unchanged"}


def test_compressed_keras_member_reads_the_same(files, tmp_path):
    target = tmp_path / "deflated.keras"
    with zipfile.ZipFile(_path(files, "seq.keras")) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    ckpt = open_checkpoint(str(target))
    for path, value in files["seq"]["weights"].items():
        assert _same(ckpt.read(path), value)


def test_reading_imports_neither_keras_nor_tensorflow(files):
    code = ("import sys; from ckptlib.formats import open_checkpoint\n"
            f"for name in {['seq.keras', 'seq.weights.h5', 'sharded.weights.json', 'seq.h5']!r}:\n"
            f"    c = open_checkpoint({files['folder']!r} + '/' + name)\n"
            "    [c.read(v.name) for v in c.variables]\n"
            "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]\n"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 0, proc.stderr


def test_reading_writes_nothing(files):
    before = snapshot(files["folder"])
    for name in ("seq.keras", "seq.weights.h5", "sharded.weights.json", "seq.h5"):
        ckpt = open_checkpoint(_path(files, name))
        for var in ckpt.variables:
            list(ckpt.iter_chunks(var.name, chunk_elements=3))
    assert run_cli("diff", _path(files, "seq.keras"), _path(files, "seq.weights.h5"), "--json").returncode == 0
    assert snapshot(files["folder"]) == before


def _damaged(files, tmp_path) -> dict[str, str]:
    import h5py

    cases = {}
    raw = open(_path(files, "seq.keras"), "rb").read()
    (tmp_path / "truncated.keras").write_bytes(raw[: len(raw) // 2])
    cases["truncated.keras"] = "not a complete zip archive"
    raw = open(_path(files, "seq.weights.h5"), "rb").read()
    (tmp_path / "truncated.weights.h5").write_bytes(raw[: len(raw) // 2])
    cases["truncated.weights.h5"] = "the file is truncated"
    with h5py.File(tmp_path / "data.h5", "w") as handle:
        handle["images"] = np.zeros((2, 2))
    cases["data.h5"] = "an HDF5 file, but not a Keras"
    (tmp_path / "notes.h5").write_text("not hdf5 at all\n")
    cases["notes.h5"] = "not an HDF5 file"
    (tmp_path / "text.weights.h5").write_text("not hdf5 at all\n")
    cases["text.weights.h5"] = "not an HDF5 file"
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "hello")
    cases["other.keras"] = "a zip archive without model.weights.h5"
    for name in ["sharded.weights.json"] + files["shards"][1:]:
        shutil.copy(_path(files, name), tmp_path / name)
    cases["sharded.weights.json"] = f"shard {files['shards'][0]} is missing"
    cases["missing.keras"] = "no such file"
    cases["missing.weights.h5"] = "no such file"
    return cases


def test_damaged_files_give_one_line_errors(files, tmp_path):
    for name, expected in _damaged(files, tmp_path).items():
        path = str(tmp_path / name)
        with pytest.raises(errors.CkptError) as caught:
            ckpt = open_checkpoint(path)
            [ckpt.read(v.name) for v in ckpt.variables]
        message = str(caught.value)
        assert expected in message and path in message and "\n" not in message, (name, message)
    proc = run_cli("vars", str(tmp_path / "truncated.keras"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr and "truncated.keras" in proc.stderr
