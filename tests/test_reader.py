"""reader: names, shapes, dtypes, values and errors of real checkpoints, against tf.train.load_checkpoint."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import copy_run

from ckptlib import errors
from ckptlib.formats.bundle import read_index
from ckptlib.formats.v2bundle import BACKENDS, BundleCheckpoint as Checkpoint, strip_suffix
from ckptlib.runs.resolve import open_checkpoint, resolve_prefix

DATA = ".data-00000-of-00001"
KINDS = {"model", "optimizer", "counter", "metadata"}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def prefixes(saver_abs, manager_plain, zoo, sharded):
    """Every shared checkpoint by a short name."""
    return {
        "saver": saver_abs[1][-1],
        "manager": manager_plain[1][-1],
        "zoo": zoo[0],
        "sharded": sharded[0],
    }


def _tf_dtype_name(dtype) -> str:
    return "string" if dtype.name == "string" else dtype.name


def _assert_same_tensor(got: np.ndarray, want, dtype_name: str):
    """Bit-exact equality with TensorFlow's get_tensor (NaN == NaN, -0.0 != 0.0)."""
    want = np.asarray(want, dtype=object) if dtype_name == "string" else np.asarray(want)
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape
    if dtype_name == "string":
        assert got.dtype == object
        assert got.tolist() == want.tolist()
        return
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.dtype.name == dtype_name
    if got.dtype.kind == "b":
        assert np.array_equal(got, want)
    else:
        assert got.tobytes() == want.tobytes()


# --- listing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["saver", "manager", "zoo", "sharded"])
def test_variables_match_tensorflow(prefixes, tf_reader, which, backend):
    prefix = prefixes[which]
    reference = tf_reader(prefix)
    shapes = reference.get_variable_to_shape_map()
    dtypes = reference.get_variable_to_dtype_map()
    ckpt = open_checkpoint(prefix, backend=backend)
    assert ckpt.prefix == prefix
    names = [v.name for v in ckpt.variables]
    assert names == sorted(shapes)
    for var in ckpt.variables:
        assert var.shape == tuple(shapes[var.name]), var.name
        assert isinstance(var.shape, tuple) and all(type(d) is int for d in var.shape)
        assert var.dtype == _tf_dtype_name(dtypes[var.name]), var.name
        assert var.num_elements == int(np.prod(shapes[var.name], dtype=np.int64))
        assert var.kind in KINDS
        assert ckpt.info(var.name) == var


@pytest.mark.parametrize("which", ["saver", "manager", "zoo", "sharded"])
def test_values_match_tensorflow(prefixes, tf_reader, which, backend):
    prefix = prefixes[which]
    reference = tf_reader(prefix)
    ckpt = open_checkpoint(prefix, backend=backend)
    for var in ckpt.variables:
        _assert_same_tensor(ckpt.read(var.name), reference.get_tensor(var.name), var.dtype)


def test_backends_agree_on_nbytes(prefixes):
    for prefix in prefixes.values():
        native = open_checkpoint(prefix, "native").variables
        via_tf = open_checkpoint(prefix, "tf").variables
        assert native == via_tf


def test_every_dtype(zoo, backend):
    prefix, values = zoo
    ckpt = open_checkpoint(prefix, backend)
    assert {v.name for v in ckpt.variables} == set(values)
    for name, value in values.items():
        info = ckpt.info(name)
        got = ckpt.read(name)
        want_dtype = "string" if value.dtype == object else value.dtype.name
        assert info.dtype == want_dtype, name
        assert info.shape == value.shape and got.shape == value.shape, name
        if value.dtype == object:
            assert got.dtype == object and got.tolist() == value.tolist(), name
        else:
            assert got.dtype == value.dtype and got.tobytes() == value.tobytes(), name


def test_zoo_covers_what_the_brief_asks(zoo):
    _, values = zoo
    dtypes = {"string" if v.dtype == object else v.dtype.name for v in values.values()}
    assert dtypes >= {"bfloat16", "float16", "float32", "float64", "complex64", "complex128", "bool", "string",
                      "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    assert any(v.ndim == 0 for v in values.values()) and any(v.size == 0 for v in values.values())


def test_nbytes_is_what_the_data_shard_holds(zoo):
    prefix, values = zoo
    ckpt = open_checkpoint(prefix)
    # One data shard, tensors packed back to back: the sizes add up to the file.
    assert sum(v.nbytes for v in ckpt.variables) == os.path.getsize(prefix + DATA)
    for name, value in values.items():
        info = ckpt.info(name)
        if value.dtype == object:  # varint length per element, a 4-byte crc32c, the bytes
            items = value.reshape(-1).tolist()
            varints = sum(len(_varint(len(s))) for s in items)
            assert info.nbytes == varints + 4 + sum(len(s) for s in items), name
        else:
            assert info.nbytes == value.nbytes, name


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_scalars_and_empty_tensors(zoo, backend):
    prefix, _ = zoo
    ckpt = open_checkpoint(prefix, backend)
    assert ckpt.info("zoo/scalar_float32").shape == () and ckpt.info("zoo/scalar_float32").num_elements == 1
    assert ckpt.read("zoo/scalar_float32").shape == () and float(ckpt.read("zoo/scalar_float32")) == 2.5
    assert ckpt.read("zoo/string_scalar").item() == b"just one"
    for name, shape in (("zoo/empty_float32", (0, 4)), ("zoo/empty_int32", (3, 0)), ("zoo/empty_string", (0,))):
        assert ckpt.info(name).num_elements == 0
        assert ckpt.read(name).shape == shape


# --- TF2 object-based names ---------------------------------------------------------------------
def test_object_based_names_and_metadata(manager_plain, tf_reader, backend):
    prefix = manager_plain[1][-1]
    ckpt = open_checkpoint(prefix, backend)
    kinds = {v.name: v.kind for v in ckpt.variables}
    assert kinds["net/w/.ATTRIBUTES/VARIABLE_VALUE"] == "model"
    assert kinds["net/b/.ATTRIBUTES/VARIABLE_VALUE"] == "model"
    assert kinds["_CHECKPOINTABLE_OBJECT_GRAPH"] == "metadata"
    assert kinds["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == "counter"
    assert kinds["step/.ATTRIBUTES/VARIABLE_VALUE"] == "counter"
    slots = [n for n in kinds if n.startswith("optimizer/_variables/")]
    assert len(slots) == 4 and all(kinds[n] == "optimizer" for n in slots)  # Adam's m and v for w and b
    assert ckpt.info("net/w/.ATTRIBUTES/VARIABLE_VALUE").display_name == "net/w"
    graph = ckpt.read("_CHECKPOINTABLE_OBJECT_GRAPH")
    assert graph.dtype == object and graph.shape == ()
    assert graph.item() == tf_reader(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    proto = trackable_object_graph_pb2.TrackableObjectGraph.FromString(graph.item())
    assert {c.local_name for c in proto.nodes[0].children} >= {"net", "step", "save_counter", "optimizer"}
    assert int(ckpt.read("step/.ATTRIBUTES/VARIABLE_VALUE")) == 50


def test_object_based_v1_optimizer_slots(tmp_path, tfb, tf_reader, backend):
    saved = tfb.manager_run(str(tmp_path / "run"), num_saves=1, with_optimizer="v1")
    ckpt = open_checkpoint(saved[-1], backend)
    kinds = {v.name: v.kind for v in ckpt.variables}
    assert list(kinds) == sorted(tf_reader(saved[-1]).get_variable_to_shape_map())
    slots = [n for n in kinds if "/.OPTIMIZER_SLOT/" in n]
    assert len(slots) == 4 and all(kinds[n] == "optimizer" for n in slots)
    assert kinds["optimizer/beta1_power/.ATTRIBUTES/VARIABLE_VALUE"] == "optimizer"
    assert kinds["net/w/.ATTRIBUTES/VARIABLE_VALUE"] == "model"


# --- sharded and partitioned --------------------------------------------------------------------
def test_sharded_save_spreads_over_several_data_files(sharded, tf_reader, backend):
    prefix, values = sharded
    folder, base = os.path.split(prefix)
    data_files = sorted(f for f in os.listdir(folder) if f.startswith(base + ".data-"))
    assert len(data_files) >= 3 and all(f.endswith(f"-of-{len(data_files):05d}") for f in data_files)
    index = read_index(prefix)
    assert index.num_shards == len(data_files)
    used = {part.entry.shard_id for parts in index.parts.values() for part in parts}
    used |= {e.shard_id for e in index.entries.values() if not e.is_partitioned}
    assert len(used) >= 3  # tensors really sit in different files
    ckpt = open_checkpoint(prefix, backend)
    for name, value in values.items():
        np.testing.assert_array_equal(ckpt.read(name), value)


def test_partitioned_variable_appears_once_with_full_shape(sharded, tf_reader, backend):
    prefix, values = sharded
    ckpt = open_checkpoint(prefix, backend)
    names = [v.name for v in ckpt.variables]
    assert names.count("embedding") == 1
    assert not any(n.startswith("embedding/part") for n in names)
    assert "embedding" in tf_reader(prefix).get_variable_to_shape_map()
    info = ckpt.info("embedding")
    assert info.shape == (10, 4) and info.num_elements == 40
    assert info.nbytes == 40 * 4  # the slices together
    got = ckpt.read("embedding")
    assert got.shape == (10, 4) and got.dtype == np.float32
    assert got.tobytes() == tf_reader(prefix).get_tensor("embedding").tobytes()
    assert got.tobytes() == values["embedding"].tobytes()
    assert len(read_index(prefix).parts["embedding"]) == 3


# --- kinds --------------------------------------------------------------------------------------
def test_kinds_of_a_v1_adam_run(saver_abs, backend):
    ckpt = open_checkpoint(saver_abs[1][-1], backend)
    kinds = {v.name: v.kind for v in ckpt.variables}
    assert kinds == {
        "global_step": "counter",
        "dense/kernel": "model",
        "dense/bias": "model",
        "dense/kernel/Adam": "optimizer",
        "dense/kernel/Adam_1": "optimizer",
        "dense/bias/Adam": "optimizer",
        "dense/bias/Adam_1": "optimizer",
        "beta1_power": "optimizer",
        "beta2_power": "optimizer",
    }
    assert int(ckpt.read("global_step")) == 6


# --- resolving what a user typed ----------------------------------------------------------------
def test_resolve_prefix_accepts_files_and_the_run_folder(saver_abs, manager_plain, monkeypatch):
    run, saved = saver_abs
    latest = saved[-1]
    for typed in (latest, latest + ".index", latest + DATA, latest + ".meta", run, run + os.sep):
        assert resolve_prefix(typed) == latest, typed
    older = saved[-2]
    assert resolve_prefix(older + ".index") == older
    assert resolve_prefix(manager_plain[0]) == manager_plain[1][-1]
    monkeypatch.chdir(run)
    assert resolve_prefix("model.ckpt-5.index") == os.path.join(run, "model.ckpt-5")
    assert strip_suffix("a/b.ckpt-3.data-00002-of-00004") == "a/b.ckpt-3"


def test_run_folder_means_its_newest_complete_checkpoint(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    os.remove(os.path.join(run, "model.ckpt-6" + DATA))
    assert open_checkpoint(run).prefix == os.path.join(run, "model.ckpt-5")


# --- errors -------------------------------------------------------------------------------------
def _damaged(saver_rel, tmp_path, damage: str) -> str:
    run = copy_run(saver_rel[0], tmp_path)
    prefix = os.path.join(run, "model.ckpt-6")
    index, data = prefix + ".index", prefix + DATA
    if damage == "truncated_index":
        os.truncate(index, os.path.getsize(index) // 2)
    elif damage == "garbage_index":
        with open(index, "wb") as handle:
            handle.write(np.random.default_rng(0).bytes(os.path.getsize(index)))
    elif damage == "empty_index":
        os.truncate(index, 0)
    elif damage == "missing_data":
        os.remove(data)
    elif damage == "truncated_data":
        os.truncate(data, os.path.getsize(data) // 2)
    return prefix


def test_missing_prefix_is_not_found(tmp_path, backend):
    missing = str(tmp_path / "model.ckpt-99")
    with pytest.raises(errors.NotFound) as caught:
        open_checkpoint(missing, backend)
    assert missing in str(caught.value)
    with pytest.raises(errors.NotFound, match="model.ckpt-99"):
        open_checkpoint(missing + ".index", backend)


def test_foreign_files(tmp_path, backend):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(errors.NotACheckpoint) as caught:
        open_checkpoint(str(text), backend)
    assert str(text) in str(caught.value)
    fake = tmp_path / "fake.index"
    fake.write_bytes(b"PK\x03\x04 this is a zip file, not an index" * 4)
    with pytest.raises((errors.NotACheckpoint, errors.CorruptCheckpoint)) as caught:
        open_checkpoint(str(fake), backend)
    assert "fake.index" in str(caught.value)


def test_folder_without_checkpoints(tmp_path, backend):
    with pytest.raises(errors.NotFound) as caught:
        open_checkpoint(str(tmp_path), backend)
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize("damage", ["truncated_index", "garbage_index", "empty_index"])
def test_damaged_index(saver_rel, tmp_path, tf_reader, damage, backend):
    prefix = _damaged(saver_rel, tmp_path, damage)
    with pytest.raises(Exception):
        tf_reader(prefix).get_tensor("dense/kernel")
    with pytest.raises((errors.CorruptCheckpoint, errors.NotACheckpoint)) as caught:
        open_checkpoint(prefix, backend)
    message = str(caught.value)
    assert "model.ckpt-6" in message and "\n" not in message


@pytest.mark.parametrize("damage", ["missing_data", "truncated_data"])
def test_damaged_data_shard(saver_rel, tmp_path, damage, backend):
    prefix = _damaged(saver_rel, tmp_path, damage)
    ckpt = open_checkpoint(prefix, backend)  # the index alone is fine
    assert "dense/kernel/Adam_1" in [v.name for v in ckpt.variables]
    with pytest.raises(errors.CkptError) as caught:
        for var in ckpt.variables:
            ckpt.read(var.name)
    message = str(caught.value)
    assert prefix in message and "\n" not in message
    if backend == "native" or damage == "missing_data":
        assert "model.ckpt-6" + DATA in message  # the file that is wrong, by name
    if backend == "native":
        assert isinstance(caught.value, errors.IncompleteCheckpoint)


def test_unknown_variable(saver_abs, backend):
    prefix = saver_abs[1][-1]
    ckpt = open_checkpoint(prefix, backend)
    with pytest.raises(errors.VariableNotFound) as caught:
        ckpt.read("dense/kernel_typo")
    assert prefix in str(caught.value) and "dense/kernel_typo" in str(caught.value)
    with pytest.raises(errors.VariableNotFound):
        ckpt.info("nope")
    assert issubclass(errors.VariableNotFound, errors.NotFound)


def test_unknown_backend(saver_abs):
    with pytest.raises(ValueError):
        Checkpoint(saver_abs[1][-1], backend="torch")


# --- the tf backend: vetted by the native parser (TensorFlow aborts on some files), read by TensorFlow --
def test_tf_backend_never_sees_a_file_the_native_parser_refuses(prefixes, monkeypatch):
    from ckptlib.formats import bundle

    def refuse(prefix):
        raise errors.CorruptCheckpoint(f"Cannot read checkpoint '{prefix}': the native parser refused it.")

    monkeypatch.setattr(bundle, "read_index", refuse)
    for prefix in prefixes.values():
        for backend in BACKENDS:
            with pytest.raises(errors.CorruptCheckpoint, match="native parser refused"):
                open_checkpoint(prefix, backend)


def test_tf_backend_reads_every_value_through_tensorflow(prefixes, monkeypatch):
    from ckptlib.formats import bundle

    expected = {}
    for prefix in prefixes.values():
        ckpt = open_checkpoint(prefix, "native")
        expected[prefix] = ckpt.variables, {v.name: ckpt.read(v.name) for v in ckpt.variables}

    def native_read(*args, **kwargs):
        raise AssertionError("the tf backend read a value with the native reader")

    for name in ("read_tensor", "read_flat", "iter_chunks"):
        monkeypatch.setattr(bundle, name, native_read)
    for prefix, (variables, values) in expected.items():
        ckpt = open_checkpoint(prefix, "tf")
        assert ckpt.variables == variables
        for var in ckpt.variables:
            _assert_same_tensor(ckpt.read(var.name), values[var.name], var.dtype)


def test_tf_backend_errors_are_mapped(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    prefix = os.path.join(run, "model.ckpt-6")
    entry = read_index(prefix).entries["dense/kernel"]
    with open(prefix + DATA, "r+b") as handle:  # a flipped byte only TensorFlow's own crc32c check sees
        handle.seek(entry.offset)
        byte = handle.read(1)
        handle.seek(entry.offset)
        handle.write(bytes([byte[0] ^ 0x40]))
    ckpt = open_checkpoint(prefix, "tf")
    with pytest.raises(errors.CorruptCheckpoint) as caught:
        ckpt.read("dense/kernel")
    assert prefix in str(caught.value) and "\n" not in str(caught.value)
