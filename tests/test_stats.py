"""stats: tensor_stats / histogram / preview against numpy float64 references."""

from __future__ import annotations

import json
import math

import ml_dtypes
import numpy as np
import pytest

from ckptlib.runs.resolve import open_checkpoint
from ckptlib.tensors import stats as stats_mod
from ckptlib.tensors.stats import histogram, preview, summarize, tensor_stats

REL = 1e-9


def components(array: np.ndarray) -> np.ndarray:
    """The reference's view of a numeric tensor: float64 values, complex split into re and im."""
    array = np.asarray(array)
    if array.dtype.kind == "c":
        return np.concatenate([array.real.ravel(), array.imag.ravel()]).astype(np.float64)
    return array.astype(np.float64).ravel()


@np.errstate(over="ignore")  # numpy overflows where ckptlib rescales; callers compare only what is finite
def reference(array: np.ndarray) -> dict:
    comps = components(array)
    finite = comps[np.isfinite(comps)]
    return {
        "min": finite.min(),
        "max": finite.max(),
        "mean": finite.mean(),
        "std": finite.std(),
        "l2": np.linalg.norm(finite),
        "nan": int(np.isnan(comps).sum()),
        "inf": int(np.isinf(comps).sum()),
        "zero_fraction": float((comps == 0).mean()),
    }


def assert_stats_match(array: np.ndarray, rel: float = REL):
    got = tensor_stats(array)
    want = reference(array)
    assert got.nan == want["nan"] and got.inf == want["inf"]
    assert got.zero_fraction == pytest.approx(want["zero_fraction"], rel=rel, abs=0)
    assert got.min == want["min"] and got.max == want["max"]  # exact: no arithmetic involved
    for key in ("mean", "std", "l2"):
        value = getattr(got, key)
        assert isinstance(value, float)
        assert value == pytest.approx(want[key], rel=rel, abs=1e-300), key
    return got


def random_with_specials(rng, shape, dtype=np.float64):
    values = rng.standard_normal(shape) * 3.0 + 0.5
    flat = values.reshape(-1)
    picks = rng.choice(flat.size, size=max(4, flat.size // 50), replace=False)
    flat[picks[0::4]] = np.nan
    flat[picks[1::4]] = np.inf
    flat[picks[2::4]] = -np.inf
    flat[picks[3::4]] = 0.0
    return values.astype(dtype)


# --- numeric dtypes -----------------------------------------------------------------------------
def test_float64_with_nan_inf_and_zeros():
    rng = np.random.default_rng(0)
    array = random_with_specials(rng, (120, 37))
    got = assert_stats_match(array)
    assert got.nan > 0 and got.inf > 0 and got.zero_fraction > 0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, ml_dtypes.bfloat16])
def test_low_precision_floats_accumulate_in_float64(dtype):
    rng = np.random.default_rng(1)
    array = random_with_specials(rng, (64, 33), dtype)
    # The reference sees the same stored values, widened exactly to float64.
    assert_stats_match(array)


def test_large_float32_sums_do_not_lose_precision():
    # 3e6 float32 values: a float32 accumulator would be off by far more than 1e-9.
    rng = np.random.default_rng(2)
    array = (rng.standard_normal(3_000_000) + 1000.0).astype(np.float32)
    assert_stats_match(array)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                                   np.uint64])
def test_integers(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    array = rng.integers(info.min, info.max, size=500, dtype=dtype, endpoint=True)
    array[:3] = [info.min, info.max, 0]
    got = assert_stats_match(array)
    assert got.min == float(info.min) and got.max == float(info.max)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_counts_real_and_imaginary_parts(dtype):
    rng = np.random.default_rng(4)
    array = (rng.standard_normal((40, 5)) + 1j * rng.standard_normal((40, 5))).astype(dtype)
    array[0, 0] = complex(np.nan, 1.0)
    array[1, 1] = complex(2.0, np.inf)
    array[2, 2] = 0
    got = assert_stats_match(array)
    assert got.nan == 1 and got.inf == 1
    assert got.zero_fraction == pytest.approx(2 / (2 * array.size))  # 0+0j is two zero components
    finite = components(array)[np.isfinite(components(array))]
    assert got.l2 == pytest.approx(math.sqrt(float(np.sum(finite**2))), rel=REL)


def test_extreme_float64_magnitudes():
    array = np.array([1e300, -1e300, 1.5, 3e299])
    got = tensor_stats(array)
    # True values are representable: nothing may overflow to inf along the way.
    assert got.l2 == pytest.approx(math.hypot(1e300, 1e300, 1.5, 3e299), rel=REL)
    assert got.mean == pytest.approx((3e299 + 1.5) / 4, rel=REL)
    assert got.std == pytest.approx(float(np.std(array / 1e300)) * 1e300, rel=REL)
    hist = histogram(array, got)
    assert sum(hist.counts) == 4 and all(math.isfinite(e) for e in hist.edges)
    assert hist.edges[0] == -1e300 and hist.edges[-1] == pytest.approx(1e300, rel=1e-12)


def test_tiny_float64_magnitudes():
    array = np.array([1e-300, -2e-300, 3e-300, 0.0])
    got = tensor_stats(array)
    scaled = array * 1e300  # the numpy reference, in units where nothing underflows
    assert got.l2 == pytest.approx(float(np.linalg.norm(scaled)) / 1e300, rel=REL)
    assert got.mean == pytest.approx(float(scaled.mean()) / 1e300, rel=REL)
    assert got.std == pytest.approx(float(scaled.std()) / 1e300, rel=REL)
    assert got.min == -2e-300 and got.max == 3e-300 and got.zero_fraction == 0.25


def test_values_near_the_float64_limit():
    top = float(np.finfo(np.float64).max)
    array = np.array([top, -top, top / 3, 0.0])
    got = tensor_stats(array)
    assert got.mean == pytest.approx(top / 12, rel=REL)
    assert got.min == -top and got.max == top
    hist = histogram(array, got)
    assert all(math.isfinite(e) for e in hist.edges) and hist.edges[0] == -top and hist.edges[-1] == top
    assert sum(hist.counts) == 4 and hist.counts[0] == 1 and hist.counts[-1] == 1


def test_chunked_accumulation_matches_one_pass(monkeypatch):
    rng = np.random.default_rng(5)
    array = random_with_specials(rng, (1001,))
    whole = tensor_stats(array)
    whole_hist = histogram(array, whole)
    monkeypatch.setattr(stats_mod, "CHUNK", 7)  # many chunks, NaN/Inf/zeros straddling their borders
    chunked = tensor_stats(array)
    assert_stats_match(array)
    for key in ("min", "max", "nan", "inf", "zero_fraction"):
        assert getattr(chunked, key) == getattr(whole, key)
    for key in ("mean", "std", "l2"):
        assert getattr(chunked, key) == pytest.approx(getattr(whole, key), rel=REL)
    assert histogram(array, chunked) == whole_hist


# --- what has no statistics ---------------------------------------------------------------------
def test_strings_have_no_statistics():
    array = np.array([[b"a", b""], [b"caf\xc3\xa9", b"\xff\xfe"]], dtype=object)
    got = tensor_stats(array)
    assert (got.min, got.max, got.mean, got.std, got.l2, got.zero_fraction) == (None,) * 6
    assert got.nan == 0 and got.inf == 0
    assert histogram(array, got) is None
    values, truncated = preview(array)
    assert values == [["a", ""], ["café", "\ufffd\ufffd"]] and not truncated


def test_bools_have_no_statistics():
    # DESIGN.md: "strings and bools compare by equality and their statistics are null".
    array = np.array([True, False, True, True])
    got = tensor_stats(array)
    assert (got.min, got.max, got.mean, got.std, got.l2, got.zero_fraction) == (None,) * 6
    assert histogram(array, got) is None
    assert preview(array) == ([True, False, True, True], False)


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.complex64])
def test_empty_tensors(shape, dtype):
    array = np.zeros(shape, dtype)
    got = tensor_stats(array)
    assert (got.min, got.max, got.mean, got.std, got.l2) == (None,) * 5
    assert got.nan == 0 and got.inf == 0 and got.zero_fraction is None
    assert histogram(array, got) is None
    values, truncated = preview(array)
    assert values == array.tolist() and not truncated


def test_only_nan_and_inf():
    array = np.array([np.nan, np.inf, -np.inf, np.nan], np.float32)
    got = tensor_stats(array)
    assert (got.min, got.max, got.mean, got.std, got.l2) == (None,) * 5
    assert got.nan == 2 and got.inf == 2 and got.zero_fraction == 0.0
    assert histogram(array, got) is None


@pytest.mark.parametrize("value", [0.0, 0.1, -3.25, 1e6])
def test_constant_tensor(value):
    array = np.full((50, 20), value, np.float64)
    got = tensor_stats(array)
    assert got.min == got.max == value
    assert got.mean == pytest.approx(value, rel=1e-15, abs=0)
    assert got.std <= 1e-12 * max(abs(value), 1.0)
    assert got.l2 == pytest.approx(abs(value) * math.sqrt(1000), rel=REL, abs=0)
    assert got.zero_fraction == (1.0 if value == 0 else 0.0)
    hist = histogram(array, got)
    assert sum(hist.counts) == 1000 and len(hist.edges) == len(hist.counts) + 1
    assert hist.edges[0] < value < hist.edges[-1]


def test_scalar():
    got = assert_stats_match(np.array(-2.5, np.float32))
    assert got.std == 0.0 and got.l2 == 2.5
    assert preview(np.array(-2.5, np.float32)) == (-2.5, False)


# --- histogram ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, ml_dtypes.bfloat16, np.int32, np.complex128])
def test_histogram_matches_numpy(dtype):
    rng = np.random.default_rng(6)
    raw = rng.standard_normal(5000) * 10
    if np.dtype(dtype).kind == "c":
        raw = raw[:2500] + 1j * raw[2500:]
    array = raw.astype(dtype)
    if np.dtype(dtype).kind == "f":
        array[:5] = [np.nan, np.inf, -np.inf, np.nan, 0]
    hist = histogram(array, tensor_stats(array))
    comps = components(array)
    finite = comps[np.isfinite(comps)]
    counts, edges = np.histogram(finite, bins=stats_mod.HISTOGRAM_BINS)
    assert len(hist.counts) == stats_mod.HISTOGRAM_BINS and len(hist.edges) == stats_mod.HISTOGRAM_BINS + 1
    np.testing.assert_allclose(hist.edges, edges, rtol=1e-12, atol=0)
    assert list(hist.counts) == counts.tolist()
    assert sum(hist.counts) == finite.size
    assert all(isinstance(c, int) for c in hist.counts) and all(isinstance(e, float) for e in hist.edges)


# --- preview ------------------------------------------------------------------------------------
def test_small_preview_is_nested_and_json_safe():
    array = np.array([[1.5, np.nan], [np.inf, -np.inf]], np.float32)
    values, truncated = preview(array)
    assert values == [[1.5, "NaN"], ["Infinity", "-Infinity"]] and not truncated
    json.dumps(values, allow_nan=False)


def test_large_preview_is_flat_and_truncated():
    array = np.arange(30 * 10, dtype=np.int64).reshape(30, 10)
    values, truncated = preview(array)
    assert truncated and values == list(range(stats_mod.PREVIEW_LIMIT))
    assert all(type(v) is int for v in values)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_preview(dtype):
    array = np.array([1 + 2j, -0.5j, complex(np.nan, 1)], dtype)
    values, _ = preview(array)
    assert values == [[1.0, 2.0], [0.0, -0.5], ["NaN", 1.0]]
    json.dumps(values, allow_nan=False)


def test_bfloat16_and_float16_preview_are_numbers():
    for dtype in (ml_dtypes.bfloat16, np.float16):
        array = np.array([[0.5, -1.25], [3.0, 1e3]], dtype)
        values, _ = preview(array)
        assert values == array.astype(np.float64).tolist()
        assert all(type(v) is float for row in values for v in row)
        json.dumps(values, allow_nan=False)


def test_preview_of_scalars_of_every_kind():
    assert preview(np.array(b"bytes", dtype=object)) == ("bytes", False)
    assert preview(np.array(True)) == (True, False)
    assert preview(np.array(7, np.uint64)) == (7, False)
    big = np.array([b"x" * 500], dtype=object)
    assert len(preview(big)[0][0]) <= 201


# --- on tensors read from a real checkpoint -----------------------------------------------------
def test_summaries_of_every_dtype_in_a_checkpoint(zoo, tf_reader):
    prefix, _ = zoo
    ckpt = open_checkpoint(prefix)
    reference_reader = tf_reader(prefix)
    for var in ckpt.variables:
        array = ckpt.read(var.name)
        summary = summarize(ckpt.prefix, var, array)
        assert summary.checkpoint == prefix and summary.info == var
        json.dumps(summary.preview, allow_nan=False)
        want = np.asarray(reference_reader.get_tensor(var.name))
        numeric = var.dtype not in ("string", "bool")
        if not numeric:
            assert summary.stats.mean is None and summary.histogram is None, var.name
            continue
        comps = components(want)
        if not np.isfinite(comps).any():
            assert summary.stats.mean is None, var.name
            continue
        expected = reference(want)
        assert summary.stats.min == expected["min"] and summary.stats.max == expected["max"], var.name
        assert summary.stats.nan == expected["nan"] and summary.stats.inf == expected["inf"], var.name
        assert summary.stats.mean == pytest.approx(expected["mean"], rel=REL), var.name
        assert sum(summary.histogram.counts) == int(np.isfinite(comps).sum()), var.name
