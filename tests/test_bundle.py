"""ckptlib.formats.bundle against real TensorFlow checkpoints, hand-made bundles and damaged files."""

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from ckptlib import errors
from ckptlib.formats.bundle import iter_chunks, read_index, read_tensor
from ckptlib.formats.bundle.table import crc32c, mask_crc, python_crc32c, read_varint

tf = pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parents[1]
DTYPES = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "string"]  # fmt: skip


# --- building real checkpoints ----------------------------------------------------------------
def _sample(dtype: str, shape: tuple, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "string":
        pool = [b"", b"a", b"x" * 200, b"\x00\xff\x80", "héllo".encode(), b"\n"]
        return np.array([pool[i % len(pool)] for i in range(int(np.prod(shape)))], object).reshape(shape)
    np_dtype = np.dtype(tf.as_dtype(dtype).as_numpy_dtype)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np_dtype.kind in "iu":
        info = np.iinfo(np_dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=np_dtype, endpoint=True)
    values = rng.standard_normal(shape) * 100
    if np_dtype.kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    values = np.asarray(values).astype(np_dtype)
    if values.size >= 3:
        values.flat[:3] = [np.nan, np.inf, -np.inf]
    return values


def _tf2_every_dtype(prefix: str) -> str:
    variables = {}
    for i, dtype in enumerate(DTYPES):
        variables[f"{dtype}_2d"] = tf.Variable(_sample(dtype, (2, 3), i), dtype=tf.as_dtype(dtype))
        variables[f"{dtype}_scalar"] = tf.Variable(_sample(dtype, (), 100 + i), dtype=tf.as_dtype(dtype))
    for dtype in ("float32", "string", "int64"):
        for shape in ((0,), (3, 0)):
            empty = np.empty(shape, dtype=object if dtype == "string" else dtype)
            variables[f"{dtype}_empty_{len(shape)}d"] = tf.Variable(empty, dtype=tf.as_dtype(dtype))
    variables["string_long_3d"] = tf.Variable(_sample("string", (2, 3, 40), 7), dtype=tf.string)
    return tf.train.Checkpoint(**variables).save(prefix)


def _v1_graph(prefix: str) -> str:
    with tf.Graph().as_default():
        for i, dtype in enumerate(DTYPES):
            value = tf.constant(_sample(dtype, (4, 2), 200 + i), dtype=tf.as_dtype(dtype))
            tf.compat.v1.get_variable(f"scope/{dtype}", initializer=value)
        tf.compat.v1.train.get_or_create_global_step()
        tf.compat.v1.get_variable(
            "dense/partitioned", shape=(10, 4), partitioner=tf.compat.v1.fixed_size_partitioner(3),
            initializer=tf.compat.v1.random_normal_initializer(seed=1))  # fmt: skip
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, prefix, global_step=500)


def _sharded(prefix: str) -> str:
    # Two CPU devices let Saver(sharded=True) write one data file per device.
    with tf.Graph().as_default():
        with tf.device("/cpu:0"):
            tf.compat.v1.get_variable("dense/kernel", initializer=tf.constant(_sample("float32", (3, 4), 1)))
            tf.compat.v1.train.get_or_create_global_step()
        with tf.device("/cpu:1"):
            tf.compat.v1.get_variable("words", initializer=tf.constant(_sample("string", (5,), 2)))
            tf.compat.v1.get_variable(
                "part_rows", shape=(10, 4), partitioner=tf.compat.v1.fixed_size_partitioner(3),
                initializer=tf.compat.v1.random_normal_initializer(seed=1))  # fmt: skip
            tf.compat.v1.get_variable(
                "part_cols", shape=(5, 7), partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=1),
                initializer=tf.compat.v1.random_normal_initializer(seed=2))  # fmt: skip
        saver = tf.compat.v1.train.Saver(sharded=True)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
        with tf.compat.v1.Session(config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, prefix, global_step=7)


def _raw_slices_and_exotic_dtypes(prefix: str) -> str:
    # SaveV2 writes slices directly: full extents ("-"), starts past 63 and 8191 (multi-byte
    # OrderedCode keys), a partitioned string tensor, and dtypes a Variable cannot hold.
    ints = np.arange(600, dtype=np.int64).reshape(200, 3)
    floats = np.arange(10000, dtype=np.float32)
    words = _sample("string", (6, 2), 3)
    names, specs, tensors = [], [], []
    for name, spec, value in [
        ("ints", "200 3 0,70:-", ints[:70]), ("ints", "200 3 70,130:0,2", ints[70:, :2]),
        ("ints", "200 3 70,130:2,1", ints[70:, 2:]), ("floats", "10000 0,9000", floats[:9000]),
        ("floats", "10000 9000,1000", floats[9000:]), ("words", "6 2 0,4:-", words[:4]),
        ("words", "6 2 4,2:-", words[4:]),
    ]:  # fmt: skip
        names.append(name), specs.append(spec), tensors.append(tf.constant(value))
    for dtype in ("qint8", "quint8", "qint32", "float8_e5m2", "float8_e4m3fn", "int4", "uint4"):
        np_dtype = getattr(ml_dtypes, dtype, None) or tf.as_dtype(dtype).as_numpy_dtype
        names.append(f"exotic/{dtype}"), specs.append("")
        tensors.append(tf.constant(np.arange(-3, 5).astype(np_dtype), dtype=tf.as_dtype(dtype)))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=specs, tensors=tensors)
    return prefix


def _many(prefix: str) -> str:
    # Enough entries (~320 KB of index) for TensorFlow to write two data blocks.
    names = [f"tower_{i % 7}/layer_{i:05d}/a_rather_long_scope_name_for_padding/kernel" for i in range(5000)]
    tensors = [tf.constant(np.float32(i)) for i in range(5000)]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * 5000, tensors=tensors)
    return prefix


def _small(prefix: str) -> str:
    ckpt = tf.train.Checkpoint(a=tf.Variable([1.0, 2.0, 3.0]), s=tf.Variable([b"ab", b"", b"xyz"]))
    return ckpt.write(prefix)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    builders = {"tf2": _tf2_every_dtype, "v1": _v1_graph, "sharded": _sharded,
                "raw": _raw_slices_and_exotic_dtypes, "many": _many, "small": _small}  # fmt: skip
    prefixes = {}
    for kind, build in builders.items():
        (root / kind).mkdir()
        prefixes[kind] = build(str(root / kind / "model.ckpt"))
    return prefixes


def _clone(prefix: str, dest: Path) -> str:
    dest.mkdir(parents=True, exist_ok=True)
    folder, base = os.path.split(prefix)
    for name in os.listdir(folder):
        if name.startswith(base + "."):
            shutil.copy(os.path.join(folder, name), dest / name)
    return str(dest / base)


def _raises(kind, call, *args):
    with pytest.raises(kind) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and message.startswith("Cannot read checkpoint '"), message
    return message


# --- agreement with TensorFlow ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tf2", "v1", "sharded", "raw", "many"])
def test_matches_tensorflow_bit_for_bit(ckpts, kind):
    prefix = ckpts[kind]
    reader = tf.train.load_checkpoint(prefix)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    index = read_index(prefix)
    assert sorted(index.entries) == sorted(shapes)
    assert list(index.entries) == sorted(index.entries)
    for name, entry in index.entries.items():
        assert entry.name == name and list(entry.shape) == shapes[name], name
        assert entry.dtype == dtypes[name].name, name
        if entry.is_partitioned and entry.dtype == "string":
            continue  # get_tensor cannot reassemble these ("Dtype string not supported"): see below
        ours, theirs = read_tensor(index, name), np.asarray(reader.get_tensor(name))
        assert ours.shape == theirs.shape and ours.flags.c_contiguous, name
        if entry.dtype == "string":
            assert ours.dtype == object and ours.tolist() == theirs.tolist(), name
        else:
            assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes(), name


@pytest.mark.parametrize("kind", ["tf2", "v1", "sharded", "raw", "many", "small"])
def test_expected_shard_sizes_match_the_files(ckpts, kind):
    index = read_index(ckpts[kind])
    actual = {i: os.path.getsize(index.data_path(i)) for i in range(index.num_shards)}
    assert index.expected_shard_sizes() == actual


def test_layout_details(ckpts):
    sharded = read_index(ckpts["sharded"])
    assert sharded.num_shards == 2
    assert sharded.data_path(1) == ckpts["sharded"] + ".data-00001-of-00002"
    part = sharded.entries["part_rows"]
    assert part.is_partitioned and part.shape == (10, 4) and part.crc32c is None
    assert part.size == 10 * 4 * 4 and part.shard_id == 1
    assert [p.bounds for p in sharded.parts["part_rows"]] == [((0, 4), (0, 4)), ((4, 7), (0, 4)), ((7, 10), (0, 4))]
    assert not sharded.entries["global_step"].is_partitioned
    assert read_tensor(sharded, "global_step").shape == ()
    tf2 = read_index(ckpts["tf2"])
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in tf2.entries
    assert tf2.entries["float32_empty_2d/.ATTRIBUTES/VARIABLE_VALUE"].shape == (3, 0)
    assert not any(name.startswith("\x00") or name == "" for name in tf2.entries)
    raw = read_index(ckpts["raw"])
    assert raw.entries["exotic/qint8"].dtype == "qint8" and read_tensor(raw, "exotic/qint8").dtype == np.int8
    # TensorFlow's own reader refuses partitioned strings, so compare with what was saved.
    assert read_tensor(raw, "words").tolist() == _sample("string", (6, 2), 3).tolist()
    with pytest.raises(ValueError, match="string not supported"):
        tf.train.load_checkpoint(ckpts["raw"]).get_tensor("words")


def test_reader_never_imports_tensorflow(ckpts):
    code = (
        "import sys\n"
        "from ckptlib.formats.bundle import read_index, read_tensor\n"
        "for prefix in sys.argv[1:]:\n"
        "    index = read_index(prefix)\n"
        "    for name in index.entries: read_tensor(index, name)\n"
        "loaded = [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')]\n"
        "print('loaded:', loaded)\n"
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", code, ckpts["tf2"], ckpts["sharded"], ckpts["raw"]]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded: []"


def test_crc32c_implementations_agree():
    assert python_crc32c(b"123456789") == crc32c(b"123456789") == 0xE3069283
    data = np.arange(1000, dtype=np.float64)
    assert python_crc32c(data) == crc32c(data) == crc32c(data.tobytes())


# --- damaged and foreign files ----------------------------------------------------------------
def test_missing_index_is_not_found(tmp_path):
    _raises(errors.NotFound, read_index, str(tmp_path / "nothing.ckpt-1"))


@pytest.mark.parametrize(
    "content, kind",
    [
        (b"", errors.NotACheckpoint),
        (b"model_checkpoint_path: 'model.ckpt-5'\nall_model_checkpoint_paths: 'x'\n" * 3, errors.NotACheckpoint),
        (np.random.default_rng(0).bytes(4096), errors.NotACheckpoint),
        (b"\x89HDF\r\n\x1a\n" + bytes(200), errors.NotACheckpoint),
    ],
    ids=["empty", "text", "random", "hdf5-signature"],
)  # fmt: skip
def test_foreign_index_files(tmp_path, content, kind):
    (tmp_path / "x.index").write_bytes(content)
    _raises(kind, read_index, str(tmp_path / "x"))


def test_real_hdf5_file_as_index(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "weights.index", "w") as f:
        f.create_dataset("kernel", data=np.ones((3, 3)))
    assert "HDF5" in _raises(errors.NotACheckpoint, read_index, str(tmp_path / "weights"))


def test_truncated_index_is_corrupt_at_every_length(ckpts, tmp_path):
    data = Path(ckpts["small"] + ".index").read_bytes()
    prefix = str(tmp_path / "t")
    for length in range(2, len(data)):
        Path(prefix + ".index").write_bytes(data[:length])
        message = _raises(errors.CorruptCheckpoint, read_index, prefix)
        assert "t.index" in message


def test_any_flipped_index_byte_gives_a_ckpt_error_or_a_correct_read(ckpts, tmp_path):
    data = Path(ckpts["small"] + ".index").read_bytes()
    prefix = _clone(ckpts["small"], tmp_path / "flip")
    expected = {name: read_tensor(read_index(ckpts["small"]), name) for name in read_index(ckpts["small"]).entries}
    corrupt = []
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        Path(prefix + ".index").write_bytes(bytes(damaged))
        try:
            index = read_index(prefix)
            # Unchecked bytes (footer padding, metaindex handle) may change without harm.
            assert {n: read_tensor(index, n).tolist() for n in index.entries} == {
                n: v.tolist() for n, v in expected.items()
            }
        except errors.CkptError as exc:
            assert "\n" not in str(exc)
            corrupt.append(pos)
    # Every byte the reader uses is under a crc32c. TensorFlow ignores the metaindex block
    # (table.cc), and the footer has padding, so damage there may go unnoticed, harmlessly.
    meta_at, pos = read_varint(data, len(data) - 48, len(data))
    meta_size, _ = read_varint(data, pos, len(data))
    unchecked = set(range(meta_at, meta_at + meta_size + 5)) | set(range(len(data) - 48, len(data)))
    assert set(range(len(data))) - unchecked <= set(corrupt)


def test_garbled_index_block_fails_its_crc(ckpts, tmp_path):
    prefix = _clone(ckpts["v1"], tmp_path / "garbled")
    path = Path(prefix + ".index")
    data = bytearray(path.read_bytes())
    data[40:48] = b"GARBAGE!"
    path.write_bytes(bytes(data))
    assert "crc32c" in _raises(errors.CorruptCheckpoint, read_index, prefix)


def test_flipped_data_bytes_are_corrupt(ckpts, tmp_path):
    prefix = _clone(ckpts["small"], tmp_path / "data")
    index = read_index(prefix)
    data_path = Path(index.data_path(0))
    original = data_path.read_bytes()
    for name in ("a/.ATTRIBUTES/VARIABLE_VALUE", "s/.ATTRIBUTES/VARIABLE_VALUE"):
        entry = index.entries[name]
        for pos in range(entry.offset, entry.offset + entry.size):  # lengths, checksum and bytes
            damaged = bytearray(original)
            damaged[pos] ^= 0x01
            data_path.write_bytes(bytes(damaged))
            message = _raises(errors.CorruptCheckpoint, read_tensor, index, name)
            assert name in message and "data-00000-of-00001" in message


def test_missing_and_truncated_data_shards_are_incomplete(ckpts, tmp_path):
    prefix = _clone(ckpts["sharded"], tmp_path / "shards")
    index = read_index(prefix)
    os.remove(index.data_path(1))
    message = _raises(errors.IncompleteCheckpoint, read_tensor, index, "part_rows")
    assert "model.ckpt-7.data-00001-of-00002 is missing" in message
    read_tensor(index, "dense/kernel")  # shard 0 is still there
    shard0 = Path(index.data_path(0))
    shard0.write_bytes(shard0.read_bytes()[:-1])
    last = max((e for e in index.entries.values() if e.shard_id == 0), key=lambda e: e.offset + e.size)
    assert "too short" in _raises(errors.IncompleteCheckpoint, read_tensor, index, last.name)


def test_unknown_variable(ckpts):
    index = read_index(ckpts["small"])
    assert "'nope'" in _raises(errors.VariableNotFound, read_tensor, index, "nope")


def test_v1_checkpoint_is_unsupported(tmp_path):
    with tf.Graph().as_default():
        var = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0, 2.0]))
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as sess:
            sess.run(var.initializer)
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    assert "V1" in _raises(errors.UnsupportedFormat, read_index, prefix)


# --- hand-made bundles: what TensorFlow does not write here but the format allows ----------
def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _field(number: int, value) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value & (1 << 64) - 1)


def _entry(dtype: int, shape: tuple, offset: int, size: int, crc: int, shard: int = 0) -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    fields = _field(1, dtype) + _field(2, dims) + _field(3, shard) + _field(4, offset) + _field(5, size)
    return fields + bytes([6 << 3 | 5]) + struct.pack("<I", mask_crc(crc))


def _block(pairs) -> bytes:
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in pairs)
    return body + struct.pack("<II", 0, 1)  # one restart point, at 0


def _trailer(contents: bytes, kind: int) -> bytes:
    return contents + bytes([kind]) + struct.pack("<I", mask_crc(crc32c(contents + bytes([kind]))))


def _snappy_literal(data: bytes) -> bytes:
    n = len(data) - 1  # a raw snappy stream made of one literal element
    tag = bytes([n << 2]) if n < 60 else bytes([61 << 2]) + n.to_bytes(2, "little")
    return _varint(len(data)) + tag + data


def _table(pairs, snappy: bool = False) -> bytes:
    data_block = _block(pairs)
    stored = _snappy_literal(data_block) if snappy else data_block
    out = _trailer(stored, 1 if snappy else 0)
    meta_at, meta = len(out), _block([])
    out += _trailer(meta, 0)
    index_at, index = len(out), _block([(b"\xff", _varint(0) + _varint(len(stored)))])
    out += _trailer(index, 0)
    handles = _varint(meta_at) + _varint(len(meta)) + _varint(index_at) + _varint(len(index))
    return out + handles.ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)


def _write_bundle(prefix, entries, data=b"", num_shards=1, big_endian=False, snappy=False):
    header = _field(1, num_shards) + _field(2, int(big_endian)) + _field(3, _field(1, 1))
    pairs = [(b"", header)] + sorted(entries.items())
    Path(prefix + ".index").write_bytes(_table(pairs, snappy))
    Path(f"{prefix}.data-00000-of-{num_shards:05d}").write_bytes(data)
    return prefix


def _string_bytes(values, order: str) -> tuple[bytes, int]:
    lengths = b"".join(_varint(len(v)) for v in values)
    crc = crc32c(b"".join(len(v).to_bytes(4, order) for v in values))
    stored = mask_crc(crc).to_bytes(4, order)
    return lengths + stored + b"".join(values), crc32c(stored + b"".join(values), crc)


def test_big_endian_bundle(tmp_path):
    floats = np.arange(6, dtype=">f4").reshape(2, 3)
    complexes = np.array([1 + 2j, -3.5j], dtype=">c16")
    halves = np.array([1.5, -2.0, np.inf], dtype=ml_dtypes.bfloat16)
    halves_be = halves.view("<u2").astype(">u2").tobytes()
    words, words_crc = _string_bytes([b"big", b"", b"endian" * 30], "big")
    blobs = [floats.tobytes(), complexes.tobytes(), halves_be, words]
    offsets = [sum(len(b) for b in blobs[:i]) for i in range(len(blobs))]
    entries = {
        b"f": _entry(1, (2, 3), offsets[0], 24, crc32c(blobs[0])),
        b"c": _entry(18, (2,), offsets[1], 32, crc32c(blobs[1])),
        b"h": _entry(14, (3,), offsets[2], 6, crc32c(blobs[2])),
        b"s": _entry(7, (3,), offsets[3], len(words), words_crc),
    }  # fmt: skip
    index = read_index(_write_bundle(str(tmp_path / "be"), entries, b"".join(blobs), big_endian=True))
    assert read_index(index.prefix).big_endian
    np.testing.assert_array_equal(read_tensor(index, "f"), floats.astype("<f4"))
    np.testing.assert_array_equal(read_tensor(index, "c"), complexes.astype("<c16"))
    assert read_tensor(index, "h").tobytes() == halves.tobytes()
    assert read_tensor(index, "s").tolist() == [b"big", b"", b"endian" * 30]


def test_big_endian_bundle_streams_in_host_order(tmp_path):
    doubles = np.linspace(-3, 3, 300).astype(">f8")
    complexes = (np.arange(50) - 2.5j * np.arange(50)).astype(">c8")
    blobs = [doubles.tobytes(), complexes.tobytes()]
    entries = {b"d": _entry(2, (300,), 0, len(blobs[0]), crc32c(blobs[0])),
               b"c": _entry(8, (50,), len(blobs[0]), len(blobs[1]), crc32c(blobs[1]))}  # fmt: skip
    prefix = _write_bundle(str(tmp_path / "be"), entries, b"".join(blobs), big_endian=True)
    index = read_index(prefix)
    for name, want in (("d", doubles.astype("<f8")), ("c", complexes.astype("<c8"))):
        for chunk_bytes in (8, 24, 1000):
            chunks = [c.copy() for c in iter_chunks(index, name, chunk_bytes)]
            assert (len(chunks) > 1) == (want.nbytes > chunk_bytes)
            assert np.concatenate(chunks).tobytes() == want.tobytes()
    damaged = bytearray(Path(index.data_path(0)).read_bytes())
    damaged[1234] ^= 0x10  # inside "d", in its 155th value
    Path(index.data_path(0)).write_bytes(bytes(damaged))
    with pytest.raises(errors.CorruptCheckpoint, match="'d' fails its crc32c"):
        for _ in iter_chunks(index, "d", 64):
            pass


def test_snappy_compressed_index(tmp_path, monkeypatch):
    data = np.arange(4, dtype="<i4").tobytes()
    entries = {b"v": _entry(3, (4,), 0, 16, crc32c(data))}
    prefix = _write_bundle(str(tmp_path / "snappy"), entries, data, snappy=True)
    monkeypatch.setitem(sys.modules, "cramjam", None)  # as if neither package were installed
    monkeypatch.setitem(sys.modules, "snappy", None)
    assert "snappy" in _raises(errors.UnsupportedFormat, read_index, prefix)
    monkeypatch.undo()
    if not any(_importable(m) for m in ("cramjam", "snappy")):
        pytest.skip("neither cramjam nor python-snappy is installed")
    assert read_tensor(read_index(prefix), "v").tolist() == [0, 1, 2, 3]


def _importable(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("dtype, name", [(20, "resource"), (21, "variant"), (99, "unknown_dtype_99")])
def test_unreadable_dtypes_list_but_do_not_read(tmp_path, dtype, name):
    index = read_index(_write_bundle(str(tmp_path / "d"), {b"r": _entry(dtype, (), 0, 4, crc32c(bytes(4)))}, bytes(4)))
    assert index.entries["r"].dtype == name
    assert name in _raises(errors.UnsupportedFormat, read_tensor, index, "r")


def test_absurd_sizes_are_bounded_by_the_file(tmp_path):
    huge = 1 << 50
    entries = {
        b"big": _entry(1, (huge // 4,), 0, huge, 0),  # plausible shape, far beyond the shard
        b"words": _entry(7, (huge,), 0, 8, 0),  # more strings than bytes to hold them
        b"mismatch": _entry(1, (3,), 0, 8, 0),  # 3 floats in 8 bytes
    }  # fmt: skip
    index = read_index(_write_bundle(str(tmp_path / "a"), entries, bytes(16)))
    _raises(errors.IncompleteCheckpoint, read_tensor, index, "big")
    _raises(errors.CorruptCheckpoint, read_tensor, index, "words")
    _raises(errors.CorruptCheckpoint, read_tensor, index, "mismatch")


@pytest.mark.parametrize(
    "entries, num_shards",
    [
        ({b"v": _entry(1, (1,), 0, 4, 0, shard=3)}, 1),  # shard beyond the header's count
        ({b"v": b"\x08" + b"\xff" * 11}, 1),  # overlong varint
        ({b"v": b"\x12\x50\x00"}, 1),  # length-delimited field running past its message
        ({b"v": _entry(1, (-1,), 0, 4, 0)}, 1),  # unknown dimension in a stored shape
        ({b"v": _entry(1, (1,), 0, 4, 0)}, 10**9),  # absurd shard count
        ({b"v": _entry(1, (4,), 0, 16, 0) + _field(7, _field(1, _field(1, 0) + _field(2, 2)))}, 1),  # no slice entry
    ],
    ids=["shard", "varint", "overrun", "dim", "num-shards", "missing-slice"],
)  # fmt: skip
def test_garbled_entries_are_corrupt(tmp_path, entries, num_shards):
    prefix = _write_bundle(str(tmp_path / "g"), entries, bytes(16), num_shards=num_shards)
    assert "g.index is corrupt" in _raises(errors.CorruptCheckpoint, read_index, prefix)
