"""Streaming: chunked reads, statistics, diffs and trends against the whole-array path, on real checkpoints."""

from __future__ import annotations

import math
import os
import shutil
import tracemalloc

import ml_dtypes
import numpy as np
import pytest

from ckptlib import errors
from ckptlib.compare.diff import compare_arrays, diff_checkpoints
from ckptlib.compare.trends import run_trends
from ckptlib.formats import bundle
from ckptlib.formats.v2bundle import BundleCheckpoint as Checkpoint
from ckptlib.runs.history import load_history
from ckptlib.tensors.stats import histogram, summarize, summarize_variable, tensor_stats, variable_stats

REL = 1e-12  # chunked and whole differ only by the order of float64 additions
TINY = 7  # elements per chunk: every tensor below spans many chunks, NaN/Inf straddling their borders


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


def _values(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = rng.standard_normal((64, 33)).astype(np.float32)
    f32[3, 4], f32[40, 0], f32[10, 10], f32[63, 32] = np.nan, np.nan, np.inf, -np.inf
    f32[5] = 0.0
    scaled = np.concatenate([rng.standard_normal(250) * 1e-300, rng.standard_normal(250) * 1e300])
    return {
        "f32": f32,
        "f64_scaled": scaled,  # the multiplier against overflow changes mid-stream
        "f64_tiny": rng.standard_normal(300) * 1e-305,  # squares would underflow to 0
        "c64": (rng.standard_normal((40, 9)) + 1j * rng.standard_normal((40, 9))).astype(np.complex64),
        "c128": rng.standard_normal(50) - 2j * rng.standard_normal(50),
        "bf16": rng.standard_normal(257).astype(ml_dtypes.bfloat16),
        "f16": rng.standard_normal(129).astype(np.float16),
        "i64": 2**62 + rng.integers(0, 1000, 200, dtype=np.int64),  # beyond float64's exact integers
        "u8": rng.integers(0, 256, 100, dtype=np.uint8),
        "flags": rng.random(300) > 0.5,
        "names": np.array([f"w{i % 5}".encode() for i in range(20)], dtype=object),
        "emb": rng.standard_normal((37, 6)).astype(np.float32),  # partitioned in 3: chunks of whole rows
        "realign": rng.standard_normal((20, 5)).astype(np.float32),  # partitioned in A only
        "recast": rng.standard_normal(90).astype(np.float32),  # float32 in A, float64 in B
    }


@pytest.fixture(scope="module")
def pair(tmp_path_factory, cb):
    folder = tmp_path_factory.mktemp("chunk_pair")
    a = _values(0)
    b = {name: value.copy() for name, value in a.items()}
    b["f32"][::3] += np.float32(0.25)
    b["f64_scaled"][::7] *= -1
    b["f64_tiny"][1::2] = 0.0
    b["c64"] *= np.complex64(1 - 0.5j)
    b["c128"][10:] += 1
    b["bf16"] = (a["bf16"].astype(np.float32) * 1.5).astype(ml_dtypes.bfloat16)
    b["f16"][::2] += np.float16(1)
    b["i64"][::5] += 1  # invisible once widened to float64: must still count as changed
    b["u8"][:10] = 0
    b["flags"][::4] = ~b["flags"][::4]
    b["names"][3] = b"changed"
    b["emb"][30:] += 1  # only the last partition moves
    b["realign"] -= 1
    b["recast"] = a["recast"].astype(np.float64) + 1e-3
    pa = cb.save_v1(str(folder / "a" / "model.ckpt"), a, partitions={"emb": 3, "realign": 3}, step=1)
    pb = cb.save_v1(str(folder / "b" / "model.ckpt"), b, partitions={"emb": 3}, step=2)
    return pa, pb


def _same_stats(got, want):
    for key in ("min", "max", "nan", "inf", "zero_fraction"):
        assert getattr(got, key) == getattr(want, key), key
    # Statistics are float64 (DESIGN.md): for int64 values near 2**62 the deviations from the mean are
    # below float64's spacing there (1024), so std is only good to about that spacing on either path.
    spacing = math.ulp(max(abs(want.min), abs(want.max))) if want.min is not None else 0.0
    for key in ("mean", "std", "l2"):
        value, expected = getattr(got, key), getattr(want, key)
        assert (value is None and expected is None) or math.isclose(value, expected, rel_tol=REL,
                                                                    abs_tol=spacing * 2), key


# --- reading ----------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1000, 1 << 20])
def test_chunks_reassemble_every_tensor_bit_for_bit(pair, chunk_bytes):
    for prefix in pair:
        index = bundle.read_index(prefix)
        for name, entry in index.entries.items():
            whole = bundle.read_tensor(index, name).reshape(-1)
            chunks = [c.copy() for c in bundle.iter_chunks(index, name, chunk_bytes)]
            got = np.concatenate(chunks)
            assert got.dtype == whole.dtype, name
            if whole.dtype == object:
                assert len(chunks) == 1 and got.tolist() == whole.tolist()
                continue
            assert got.tobytes() == whole.tobytes(), (name, chunk_bytes)
            if entry.size > chunk_bytes:  # streamed, each chunk within its budget (partitioned: one row)
                row = entry.size // entry.shape[0] if entry.is_partitioned else whole.dtype.itemsize
                assert len(chunks) > 1 and max(c.nbytes for c in chunks) <= max(chunk_bytes, row), name


def test_column_partitions_and_multi_shard_slices(tmp_path, tfb):
    # SaveV2 with explicit slices: a variable cut along both dimensions, one cut along the only one.
    import tensorflow as tf

    ints = np.arange(600, dtype=np.int64).reshape(200, 3)
    pieces = [("ints", "200 3 0,70:-", ints[:70]), ("ints", "200 3 70,130:0,2", ints[70:, :2]),
              ("ints", "200 3 70,130:2,1", ints[70:, 2:])]  # fmt: skip
    prefix = str(tmp_path / "slices")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=[p[0] for p in pieces], shape_and_slices=[p[1] for p in pieces],
                      tensors=[tf.constant(p[2]) for p in pieces])  # fmt: skip
    index = bundle.read_index(prefix)
    for chunk_bytes in (1, 24, 100, 1000):
        chunks = [c.copy() for c in bundle.iter_chunks(index, "ints", chunk_bytes)]
        assert np.concatenate(chunks).tolist() == ints.reshape(-1).tolist()


def test_tf_backend_chunks_match_native(pair):
    native, via_tf = Checkpoint(pair[0], chunk_elements=TINY), Checkpoint(pair[0], "tf", chunk_elements=TINY)
    for info in native.variables:
        ours = np.concatenate([c.copy() for c in native.iter_chunks(info.name)])
        theirs = np.concatenate([c.copy() for c in via_tf.iter_chunks(info.name)])
        assert ours.tolist() == theirs.tolist() if ours.dtype == object else ours.tobytes() == theirs.tobytes()


# --- statistics, diff, trends: chunked == whole --------------------------------------------------
def test_chunked_stats_equal_the_whole_array_path(pair):
    for prefix in pair:
        tiny, whole = Checkpoint(prefix, chunk_elements=TINY), Checkpoint(prefix)
        for info in tiny.variables:
            want = tensor_stats(whole.read(info.name))
            _same_stats(variable_stats(tiny, info.name), want)
            _same_stats(variable_stats(whole, info.name), want)


def test_chunked_summary_equals_the_whole_array_path(pair):
    tiny = Checkpoint(pair[0], chunk_elements=TINY)
    for name in ("f32", "c64", "bf16", "emb", "flags"):
        array = tiny.read(name)
        got, want = summarize_variable(tiny, name), summarize(tiny.prefix, tiny.info(name), array)
        _same_stats(got.stats, want.stats)
        assert got.histogram == histogram(array, want.stats)
        flat = array.reshape(-1)[:200]
        assert got.preview_truncated and len(got.preview) == min(200, array.size)
        expected = flat.astype(np.float32) if flat.dtype == ml_dtypes.bfloat16 else flat
        assert got.preview == summarize(tiny.prefix, tiny.info(name), expected).preview


@pytest.mark.parametrize("chunk_elements", [1, TINY, 64, 1 << 20])
def test_chunked_diff_equals_the_whole_array_path(pair, cb, chunk_elements):
    pa, pb = pair
    a, b = Checkpoint(pa, chunk_elements=chunk_elements), Checkpoint(pb, chunk_elements=chunk_elements)
    rows = {row.name: row for row in diff_checkpoints(a, b).variables}
    assert {name for name, row in rows.items() if row.status != "changed"} == {"recast"}
    assert rows["recast"].status == "dtype_changed"
    for name, row in rows.items():
        want = compare_arrays(a.read(name), b.read(name))
        assert row.num_changed == want.num_changed and row.frac_changed == want.frac_changed, name
        for stat in ("l2_diff", "rel_change", "max_abs_diff", "mean_abs_diff", "cosine"):
            got, expected = getattr(row, stat), getattr(want, stat)
            assert (got is None and expected is None) or math.isclose(got, expected, rel_tol=REL), (name, stat)
    assert rows["i64"].num_changed == 40  # exact: every fifth of 200 moved by 1 at 2**62
    assert rows["emb"].num_changed == 7 * 6
    unit = 2.0**-1000  # the numpy reference overflows near 1e300: give it values scaled by a power of two
    ref = cb.reference_diff(a.read("f64_scaled") * unit, b.read("f64_scaled") * unit)
    assert cb.close(rows["f64_scaled"].l2_diff * unit, ref["l2_diff"], rel=1e-9)
    assert cb.close(rows["f64_scaled"].cosine, ref["cosine"], rel=1e-9)


def test_chunked_trends_equal_the_whole_array_path(tmp_path, cb):
    run = tmp_path / "run"
    values = _values(1)
    for step in (1, 2, 3):
        values = {name: v for name, v in values.items() if name not in ("names", "realign")}
        values["f32"] = values["f32"] * np.float32(1.1)
        values["c64"] = values["c64"] + np.complex64(0.5j)
        values["flags"] = ~values["flags"]
        cb.save_v1(str(run / "model.ckpt"), values, partitions={"emb": 3}, step=step)
    history = load_history(str(run))
    tiny, whole = run_trends(history, chunk_elements=TINY), run_trends(history)
    assert [t.name for t in tiny.variables] == [t.name for t in whole.variables]
    for got, want in zip(tiny.variables, whole.variables):
        assert len(got.points) == len(want.points) == 3
        for p, q in zip(got.points, want.points):
            spacing = math.ulp(max(abs(q.min), abs(q.max))) if q.min is not None else 0.0  # see _same_stats
            for key in ("l2", "mean", "std", "min", "max", "rel_change_prev", "rel_change_first", "frac_changed_prev"):
                x, y = getattr(p, key), getattr(q, key)
                tolerance = 2 * spacing if key == "std" else 0.0
                assert (x is None and y is None) or math.isclose(x, y, rel_tol=REL, abs_tol=tolerance), (got.name, key)
            assert (p.nan, p.inf) == (q.nan, q.inf)


# --- damage is reported, never summarized ------------------------------------------------------
def _damaged(pair, cb, tmp_path, name: str) -> str:
    folder = shutil.copytree(os.path.dirname(pair[0]), tmp_path / "damaged")
    prefix = os.path.join(folder, os.path.basename(pair[0]))
    cb.corrupt(prefix, "flip", name)
    return prefix


@pytest.mark.parametrize("name", ["f32", "emb"])
def test_flipped_byte_raises_after_the_last_chunk(pair, cb, tmp_path, name):
    prefix = _damaged(pair, cb, tmp_path, name)
    index = bundle.read_index(prefix)
    expected_chunks = len(list(bundle.iter_chunks(bundle.read_index(pair[0]), name, 64)))
    seen = 0
    with pytest.raises(errors.CorruptCheckpoint, match=f"'{name}' fails its crc32c check"):
        for _ in bundle.iter_chunks(index, name, 64):
            seen += 1
    assert seen == expected_chunks > 1
    tiny = Checkpoint(prefix, chunk_elements=TINY)
    with pytest.raises(errors.CorruptCheckpoint):
        variable_stats(tiny, name)
    with pytest.raises(errors.CorruptCheckpoint):  # verify: the index's crc32c still matches A's
        diff_checkpoints(Checkpoint(pair[0], chunk_elements=TINY), tiny, verify=True)
    with pytest.raises(errors.CorruptCheckpoint):
        summarize_variable(tiny, name)


def test_truncated_shard_fails_before_the_first_chunk(pair, cb, tmp_path):
    folder = shutil.copytree(os.path.dirname(pair[0]), tmp_path / "short")
    prefix = os.path.join(folder, os.path.basename(pair[0]))
    cb.corrupt(prefix, "truncate", "f32")
    with pytest.raises(errors.IncompleteCheckpoint, match="too short"):
        bundle.iter_chunks(bundle.read_index(prefix), "f32", 64)


# --- memory does not grow with the tensor ------------------------------------------------------
def test_streamed_diff_and_stats_allocate_a_fixed_budget(tmp_path, cb):
    rng = np.random.default_rng(3)
    big = rng.standard_normal((2048, 1024)).astype(np.float32)  # 8 MB
    pa = cb.save_v1(str(tmp_path / "a" / "model.ckpt"), {"w": big}, partitions=None, step=1)
    pb = cb.save_v1(str(tmp_path / "b" / "model.ckpt"), {"w": big + np.float32(1)}, step=2)
    a, b = Checkpoint(pa, chunk_elements=1 << 14), Checkpoint(pb, chunk_elements=1 << 14)
    a.variables, b.variables  # noqa: B018 - parse the indexes outside the measurement
    tracemalloc.start()
    try:
        diff = diff_checkpoints(a, b)
        stats = variable_stats(a, "w")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert diff.variables[0].num_changed == big.size and stats.max == float(big.max())
    assert peak < 2 << 20, f"peak {peak} bytes for an 8 MB tensor"  # numpy reports its buffers to tracemalloc
