"""Partitioned variables: slices along any axis stream in bounded memory; slices that do not tile are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bundle import _field, _table

from ckptlib import errors
from ckptlib.formats.bundle import iter_chunks, read_index, read_tensor
from ckptlib.formats.bundle.table import read_table
from ckptlib.formats.v2bundle import BundleCheckpoint

tf = pytest.importorskip("tensorflow")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (full shape, slices as [(start, stop) per axis]): how each is cut
LAYOUTS = {
    "rows": ((10, 6), [((0, 3), (0, 6)), ((3, 7), (0, 6)), ((7, 10), (0, 6))]),
    "columns": ((6, 10), [((0, 6), (0, 4)), ((0, 6), (4, 10))]),
    "grid": ((6, 8), [((0, 3), (0, 5)), ((0, 3), (5, 8)), ((3, 6), (0, 5)), ((3, 6), (5, 8))]),
    "last-axis": ((3, 4, 10), [((0, 3), (0, 4), (0, 3)), ((0, 3), (0, 4), (3, 10))]),
    "middle-axis": ((4, 5, 3), [((0, 4), (0, 2), (0, 3)), ((0, 4), (2, 5), (0, 3))]),
    "irregular": ((4, 4), [((0, 2), (0, 4)), ((2, 4), (0, 1)), ((2, 4), (1, 4))]),
    "one-slice": ((3, 5), [((0, 3), (0, 5))]),
}
DTYPES = ["float32", "float64", "int16", "complex64"]


def _spec(shape, bounds) -> str:
    return " ".join(map(str, shape)) + " " + ":".join(f"{a},{b - a}" for a, b in bounds)


def _save_slices(prefix: str, tensors: dict[str, tuple[np.ndarray, list]]) -> str:
    """SaveV2 writes each slice itself: the layout is exactly the one asked for."""
    names, specs, values = [], [], []
    for name, (full, slices) in tensors.items():
        for bounds in slices:
            names.append(name)
            specs.append(_spec(full.shape, bounds))
            values.append(tf.constant(full[tuple(slice(a, b) for a, b in bounds)]))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=specs, tensors=values)
    return prefix


def _values(shape, dtype: str, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal(shape) * 1000
    if dtype.startswith("complex"):
        values = values + 1j * np.arange(values.size).reshape(shape)
    return values.astype(dtype)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    tensors = {f"{name}/{dtype}": (_values(shape, dtype, i), slices)
               for i, (name, (shape, slices)) in enumerate(LAYOUTS.items()) for dtype in DTYPES}  # fmt: skip
    prefix = _save_slices(str(tmp_path_factory.mktemp("layouts") / "model.ckpt"), tensors)
    return prefix, {name: full for name, (full, _) in tensors.items()}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_streams_and_reads_the_values_tensorflow_reads(layouts, layout):
    prefix, values = layouts
    index = read_index(prefix)
    reader = tf.train.load_checkpoint(prefix)
    for dtype in DTYPES:
        name = f"{layout}/{dtype}"
        want = values[name]
        assert index.entries[name].is_partitioned == (layout != "one-slice")  # one whole slice: a plain entry
        assert read_tensor(index, name).tobytes() == want.tobytes() == np.asarray(reader.get_tensor(name)).tobytes()
        for chunk_bytes in (want.itemsize, 3 * want.itemsize, 40, 100, 1 << 20):
            chunks = [c.copy() for c in iter_chunks(index, name, chunk_bytes)]
            assert np.concatenate(chunks).tobytes() == want.tobytes(), (name, chunk_bytes)
            assert max(c.nbytes for c in chunks) <= max(chunk_bytes, want.itemsize), (name, chunk_bytes)


def test_a_damaged_slice_fails_its_crc_after_the_last_chunk(layouts, tmp_path):
    prefix, _ = layouts
    index = read_index(prefix)
    part = index.parts["columns/float64"][1].entry
    for name in os.listdir(os.path.dirname(prefix)):
        (tmp_path / name).write_bytes((Path(prefix).parent / name).read_bytes())
    data = bytearray((tmp_path / os.path.basename(index.data_path(0))).read_bytes())
    data[part.offset + part.size - 3] ^= 0x20
    (tmp_path / os.path.basename(index.data_path(0))).write_bytes(bytes(data))
    damaged = read_index(str(tmp_path / "model.ckpt"))
    chunks = iter_chunks(damaged, "columns/float64", chunk_bytes=24)
    with pytest.raises(errors.CorruptCheckpoint, match="'columns/float64' fails its crc32c"):
        for _ in chunks:
            pass


# --- slices that do not tile the shape -----------------------------------------------------------
def _extent(start: int, stop: int | None) -> bytes:
    # TensorSliceProto.Extent (tensor_slice.proto): start = 1, length = 2; no length means the whole axis.
    return _field(1, (_field(1, start) if start else b"") + (_field(2, stop - start) if stop is not None else b""))


def _relist(prefix: str, name: bytes, dtype: int, shape: tuple, slices: list) -> str:
    """Rewrite the full entry of `name` in PREFIX.index to list `slices` ([(start, stop or None)] per axis)."""
    path = Path(prefix + ".index")
    pairs = read_table(path.read_bytes())
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    entry = _field(1, dtype) + _field(2, dims) + b"".join(_field(7, b"".join(_extent(*e) for e in s)) for s in slices)
    path.write_bytes(_table([(k, entry if k == name else v) for k, v in pairs]))
    return prefix


@pytest.fixture
def bad_tilings(tmp_path):
    rows = np.arange(40, dtype=np.float32).reshape(10, 4)
    cut = [((0, 4), (0, 4)), ((4, 7), (0, 4)), ((7, 10), (0, 4))]
    zeros = np.zeros((4, 2), np.float32)
    made = {}
    for name, tensors in {
        "repeated": {"x": (rows, cut), "ok": (rows, cut)},
        "overlap": {"x": (rows, [((0, 5), (0, 4)), ((4, 10), (0, 4))]), "ok": (rows, cut)},
        "gap": {"x": (rows, [((0, 4), (0, 4)), ((7, 10), (0, 4))]), "ok": (rows, cut)},
        "shared": {"x": (zeros, [((0, 2), (0, 2)), ((2, 4), (0, 2))]), "ok": (rows, cut)},
    }.items():
        (tmp_path / name).mkdir()
        made[name] = _save_slices(str(tmp_path / name / "model.ckpt"), tensors)
    _relist(made["repeated"], b"x", 1, (10, 4), [[(0, 4), (0, 4)], [(4, 7), (0, 4)], [(4, 7), (0, 4)]])
    # Point the second slice of "shared" at the first one's bytes: both are zeros, both crc32c still hold.
    path = Path(made["shared"] + ".index")
    pairs = read_table(path.read_bytes())
    index = read_index(made["shared"])
    first, second = (p.entry for p in index.parts["x"])
    key, value = next((k, v) for k, v in pairs if k.startswith(b"\x00x") and _field(4, second.offset) in v)
    pairs = [(k, v.replace(_field(4, second.offset), _field(4, first.offset)) if k == key else v) for k, v in pairs]
    path.write_bytes(_table(pairs))
    return made


@pytest.mark.parametrize("case, words", [
    ("repeated", "slice [4:7, 0:4] is listed twice"),
    ("overlap", "slice [4:10, 0:4] overlaps slice [0:5, 0:4]"),
    ("gap", "its slices cover 28 of its 40 elements"),
    ("shared", "slices [0:2, 0:2] and [2:4, 0:2] are stored on the same bytes"),
])  # fmt: skip
def test_slices_that_do_not_tile_are_listed_but_never_read(bad_tilings, case, words):
    prefix = bad_tilings[case]
    # TensorFlow's reader aborts on opening a file that lists a slice twice: --reader tf refuses it whole.
    for backend in ("native",) if case == "repeated" else ("native", "tf"):
        ckpt = BundleCheckpoint(prefix, backend=backend)
        assert {v.name for v in ckpt.variables} == {"x", "ok"}
        assert ckpt.read("ok").tolist() == np.arange(40, dtype=np.float32).reshape(10, 4).tolist()
        for call in (ckpt.read, lambda name: list(ckpt.iter_chunks(name, chunk_elements=4))):
            with pytest.raises(errors.CorruptCheckpoint) as caught:
                call("x")
            message = str(caught.value)
            assert len(message.splitlines()) == 1 and "partitioned variable 'x' do not tile" in message
            assert words in message, message


def test_tensorflow_refuses_overlaps_and_gaps_too(bad_tilings):
    for case in ("overlap", "gap"):
        with pytest.raises((ValueError, tf.errors.OpError)):
            tf.train.load_checkpoint(bad_tilings[case]).get_tensor("x")
    with pytest.raises(errors.CorruptCheckpoint, match="slice \\[4:7, 0:4\\] is listed twice"):
        BundleCheckpoint(bad_tilings["repeated"], backend="tf").variables


# --- bounded memory -------------------------------------------------------------------------------
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked copy of this (large) process.
_SHOW = """
import sys
from ckptlib.cli.main import main
code = main(["show", sys.argv[1], "--var", sys.argv[2], "--json", "--no-cache"])
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(code, peak, file=sys.stderr)
"""


def _show(prefix: str, name: str) -> tuple[dict, int]:
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-c", _SHOW, prefix, name], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    code, peak_kb = done.stderr.strip().splitlines()[-1].split()
    assert code == "0", done.stderr
    return json.loads(done.stdout), int(peak_kb) << 10


def test_a_column_partitioned_variable_streams_in_bounded_memory(tmp_path):
    rows, cols = 2, 24 << 20  # 192 MB of float32, rows of 96 MB cut into two column slices
    big = np.empty((rows, cols), np.float32)
    big[0], big[1] = 1.0, -2.0
    big[1, 12345] = 7.0
    small = np.ones((3, 4), np.float32)
    prefix = _save_slices(str(tmp_path / "model.ckpt"), {
        "big": (big, [((0, rows), (0, cols // 2)), ((0, rows), (cols // 2, cols))]),
        "small": (small, [((0, 3), (0, 2)), ((0, 3), (2, 4))]),
    })  # fmt: skip
    del big
    doc, peak = _show(prefix, "big")
    _, baseline = _show(prefix, "small")
    stats = doc["stats"]
    assert (stats["min"], stats["max"]) == (-2.0, 7.0)
    assert stats["mean"] == pytest.approx((cols * 1.0 + (cols - 1) * -2.0 + 7.0) / (rows * cols))
    assert peak - baseline < 64 << 20, f"show peaked {(peak - baseline) >> 20} MB above a tiny variable's run"
