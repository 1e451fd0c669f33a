"""diff_checkpoints on real TensorFlow checkpoints, every statistic checked against numpy float64."""

from __future__ import annotations

import math
import os
import shutil

import ml_dtypes
import numpy as np
import pytest

from ckptlib import errors
from ckptlib.compare.diff import compare_arrays, diff_checkpoints
from ckptlib.compare.mapping import NameMapping, parse_rule, suggest_pairs
from ckptlib.compare.types import DIFF_STATUSES
from ckptlib.errors import BadMappingRule
from ckptlib.formats import bundle
from ckptlib.formats.types import VariableInfo
from ckptlib.runs.resolve import open_checkpoint

STATS = ("l2_diff", "rel_change", "max_abs_diff", "mean_abs_diff", "cosine", "frac_changed")


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


def _pair_values():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((4, 3)).astype(np.float32)
    emb = rng.standard_normal((10, 4)).astype(np.float32)
    emb_b = emb.copy()
    emb_b[7] += 0.5  # only the last partition moves
    floats = rng.standard_normal(6)
    a = {
        "dense/kernel": kernel,
        "dense/bias": np.zeros(3, np.float32),
        "emb": emb,
        "frozen/w": np.arange(5, dtype=np.float32),
        "c64": (rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))).astype(np.complex64),
        "bf16": floats.astype(ml_dtypes.bfloat16),
        "flags": np.array([True, False, True, True]),
        "names": np.array([b"alpha", b"beta", b"gamma"], dtype=object),
        "i64": np.array([2**62 + 1, 5], np.int64),  # equal once widened to float64, yet not equal
        "nans": np.array([np.nan, 1.0, 2.0, np.inf, 3.0]),
        "big": np.array([1e300, -1e300, 5.0]),
        "global_step": np.array(1, np.int64),
        "empty": np.zeros((0, 4), np.float32),
        "only_a": np.ones(2, np.float32),
        "reshaped": np.ones((4, 3), np.float32),
        "recast": np.array([1.0, 2.0, 3.5], np.float32),
        "bool_to_float": np.array([True, False]),
    }
    b = dict(a)
    del b["only_a"]
    b.update({
        "dense/kernel": kernel * 1.5 - 0.25,
        "dense/bias": np.array([0.1, -0.2, 0.3], np.float32),
        "emb": emb_b,
        "c64": a["c64"] * np.complex64(1 - 0.5j),
        "bf16": (floats + np.array([0, 0.5, 0, 0, -1.0, 0])).astype(ml_dtypes.bfloat16),
        "flags": np.array([True, True, True, True]),
        "names": np.array([b"alpha", b"BETA", b"gamma"], dtype=object),
        "i64": np.array([2**62, 5], np.int64),
        "nans": np.array([np.nan, np.nan, 2.0, np.inf, 4.0]),
        "big": np.array([1e300, 1e300, 5.0]),
        "global_step": np.array(2, np.int64),
        "only_b": np.zeros(3, np.float32),
        "reshaped": np.ones((4, 5), np.float32),
        "recast": np.array([1.0, 2.0, 3.25], np.float64),
        "bool_to_float": np.array([1.0, 0.0], np.float32),
    })  # fmt: skip
    return a, b


@pytest.fixture(scope="module")
def v1_pair(tmp_path_factory, cb):
    folder = tmp_path_factory.mktemp("v1_pair")
    a, b = _pair_values()
    pa = cb.save_v1(str(folder / "a" / "model.ckpt"), a, partitions={"emb": 3}, step=100)
    pb = cb.save_v1(str(folder / "b" / "model.ckpt"), b, partitions={"emb": 3}, step=200)
    return pa, pb


EXPECTED_STATUS = {
    "dense/kernel": "changed", "dense/bias": "changed", "emb": "changed", "frozen/w": "unchanged",
    "c64": "changed", "bf16": "changed", "flags": "changed", "names": "changed", "i64": "changed",
    "nans": "changed", "big": "changed", "global_step": "changed", "empty": "unchanged", "only_a": "removed",
    "only_b": "added", "reshaped": "shape_changed", "recast": "dtype_changed", "bool_to_float": "dtype_changed",
}  # fmt: skip


@pytest.mark.parametrize("backend", ["native", "tf"])
def test_every_statistic_matches_numpy(v1_pair, cb, backend):
    pa, pb = v1_pair
    diff = diff_checkpoints(open_checkpoint(pa, backend), open_checkpoint(pb, backend), verify=True)  # every byte
    rows = {r.name: r for r in diff.variables}
    assert {name: r.status for name, r in rows.items()} == EXPECTED_STATUS
    ref_a, ref_b = cb.read_all(pa), cb.read_all(pb)
    for name, row in rows.items():
        if row.status not in ("changed", "unchanged", "dtype_changed") or name in ("big", "bool_to_float"):
            continue
        expected = cb.reference_diff(ref_a[name], ref_b[name])
        for stat in STATS + ("num_changed",):
            assert cb.close(getattr(row, stat), expected[stat]), (name, stat, getattr(row, stat), expected[stat])
    assert diff.summary == {"changed": 11, "unchanged": 2, "added": 1, "removed": 1, "shape_changed": 1,
                            "dtype_changed": 2}
    assert list(diff.summary) == list(DIFF_STATUSES)


def test_special_rows(v1_pair):
    pa, pb = v1_pair
    rows = {r.name: r for r in diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb)).variables}
    # ||a|| = 0: rel_change and cosine are undefined.
    assert rows["dense/bias"].rel_change is None and rows["dense/bias"].cosine is None
    assert rows["dense/bias"].l2_diff == pytest.approx(math.sqrt(0.14), rel=1e-7)
    # Integers beyond 2**53 are compared exactly.
    assert rows["i64"].num_changed == 1 and rows["i64"].frac_changed == 0.5
    # Strings and bools: equality only.
    for name, changed in (("names", 1), ("flags", 1)):
        row = rows[name]
        assert (row.num_changed, row.l2_diff, row.cosine, row.nonfinite) == (changed, None, None, None)
    # Complex: real and imaginary parts are separate components.
    assert rows["c64"].frac_changed is not None and rows["c64"].num_changed <= 12
    # Partitioned variable (stored as 3 slices) read as one tensor: only row 7 (4 values) changed.
    assert len(bundle.read_index(pb).parts["emb"]) == 3
    assert rows["emb"].shape_a == (10, 4) and rows["emb"].num_changed == 4
    # Sums of squares of 1e300 would overflow float64: the exact power-of-two scaling keeps them finite.
    big = rows["big"]
    assert big.l2_diff == pytest.approx(2e300, rel=1e-12) and big.max_abs_diff == pytest.approx(2e300, rel=1e-12)
    assert big.rel_change == pytest.approx(math.sqrt(2), rel=1e-12) and big.cosine == pytest.approx(0.0, abs=1e-12)
    # Different shape or incomparable dtypes: no statistics; numeric dtype change: statistics kept.
    assert rows["reshaped"].shape_b == (4, 5) and rows["reshaped"].l2_diff is None
    assert rows["bool_to_float"].l2_diff is None and rows["bool_to_float"].frac_changed is None
    assert rows["recast"].dtype_a == "float32" and rows["recast"].dtype_b == "float64"
    assert rows["recast"].l2_diff == pytest.approx(0.25)
    assert rows["empty"].frac_changed is None and rows["empty"].num_changed == 0
    assert rows["global_step"].kind == "counter" and rows["dense/kernel"].kind == "model"
    assert rows["only_a"].name_a == "only_a" and rows["only_b"].name_a is None


def test_nan_semantics(v1_pair):
    """NaN==NaN and Inf==Inf are unchanged, NaN vs 1 is changed; norms use the finite pairs only."""
    pa, pb = v1_pair
    row = next(r for r in diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb)).variables if r.name == "nans")
    assert (row.num_changed, row.nonfinite) == (2, 3)  # positions 1 (1 -> NaN) and 4 (3 -> 4)
    assert row.frac_changed == pytest.approx(0.4)
    assert row.l2_diff == 1.0 and row.max_abs_diff == 1.0 and row.mean_abs_diff == 0.5  # over [2, 3] -> [2, 4]
    assert row.rel_change == pytest.approx(1 / math.sqrt(13), rel=1e-12)
    assert row.cosine == pytest.approx(16 / math.sqrt(13 * 20), rel=1e-12)
    all_nan = compare_arrays(np.array([np.nan, np.nan]), np.array([np.nan, 1.0]))
    assert (all_nan.l2_diff, all_nan.cosine, all_nan.num_changed, all_nan.nonfinite) == (None, None, 1, 2)
    same_inf = compare_arrays(np.array([np.inf, -np.inf]), np.array([np.inf, np.inf]))
    assert same_inf.num_changed == 1


def test_atol(v1_pair):
    pa, pb = v1_pair
    rows = {r.name: r for r in diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb), atol=0.75).variables}
    assert rows["emb"].status == "unchanged" and rows["emb"].frac_changed == 0.0
    assert rows["emb"].l2_diff == pytest.approx(1.0, rel=1e-6)  # the statistics ignore atol
    assert rows["nans"].num_changed == 2  # NaN vs a number stays changed whatever atol, 3 -> 4 exceeds 0.75
    assert rows["i64"].status == "unchanged"  # with atol > 0 integers compare as float64
    with pytest.raises(ValueError):
        diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb), atol=-1.0)


def test_progress_reports_every_variable(v1_pair):
    pa, pb = v1_pair
    calls = []
    diff = diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb), progress=lambda *c: calls.append(c))
    assert calls[-1] == (len(diff.variables), len(diff.variables), "")
    assert [c[2] for c in calls[:-1]] == [r.name for r in diff.variables]


@pytest.fixture(scope="module")
def renamed(tmp_path_factory, cb):
    folder = tmp_path_factory.mktemp("renamed")
    rng = np.random.default_rng(1)
    weights = {"conv1/w": rng.standard_normal((3, 3)), "conv2/w": rng.standard_normal((3, 3)),
               "conv1/b": rng.standard_normal(3), "fc/w": rng.standard_normal((2, 4))}
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    head = rng.standard_normal((4, 2)).astype(np.float32)
    a = {f"resnet/{k}": v for k, v in weights.items()} | {"head/w": head}
    b = {f"model/backbone/{k}": v for k, v in weights.items()} | {"head/w": head + 1}
    return cb.save_v1(str(folder / "a" / "model.ckpt"), a), cb.save_v1(str(folder / "b" / "model.ckpt"), b)


def test_renames_without_mapping_are_added_and_removed_with_suggestions(renamed):
    diff = diff_checkpoints(open_checkpoint(renamed[0]), open_checkpoint(renamed[1]))
    assert diff.summary["removed"] == 4 and diff.summary["added"] == 4 and diff.summary["changed"] == 1
    pairs = {s.removed: s.added for s in diff.suggestions}
    assert pairs == {f"resnet/{k}": f"model/backbone/{k}" for k in ("conv1/w", "conv2/w", "conv1/b", "fc/w")}
    assert diff.suggestions[0].similarity >= diff.suggestions[-1].similarity
    assert diff.suggested_rules[0] == "^resnet/=model/backbone/"


@pytest.mark.parametrize("mapping", [
    NameMapping(rules=(parse_rule("^resnet/=model/backbone/"),)),
    NameMapping(strip_prefix_a="resnet/", add_prefix_a="model/backbone/"),
    NameMapping(rules=((r"^resnet/(\w+)/", r"model/backbone/\1/"),)),
])  # fmt: skip
def test_mapped_pairs_match(renamed, mapping):
    diff = diff_checkpoints(open_checkpoint(renamed[0]), open_checkpoint(renamed[1]), mapping=mapping)
    rows = {r.name: r for r in diff.variables}
    assert diff.summary["unchanged"] == 4 and diff.summary["changed"] == 1 and diff.suggestions == ()
    assert rows["model/backbone/conv1/w"].name_a == "resnet/conv1/w"
    assert rows["model/backbone/conv1/w"].l2_diff == 0.0 and rows["head/w"].name_a == "head/w"


def test_bad_mappings_raise_ckpt_errors(renamed):
    with pytest.raises(BadMappingRule, match="invalid regex"):
        parse_rule("(resnet=x")
    with pytest.raises(BadMappingRule, match="REGEX=REPL"):
        parse_rule("no separator")
    assert parse_rule(r"a\=b=c") == (r"a\=b", "c")
    collide = NameMapping(rules=((r"^resnet/conv\d/w$", "w"),))
    with pytest.raises(BadMappingRule, match="both"):
        diff_checkpoints(open_checkpoint(renamed[0]), open_checkpoint(renamed[1]), mapping=collide)
    with pytest.raises(errors.CkptError, match="group reference"):
        NameMapping(rules=(("resnet", r"\2"),)).apply("resnet/x")


def test_suggest_pairs_prefers_same_kind_then_similar_names():
    def info(name, shape=(3,), dtype="float32", kind="model"):
        return VariableInfo(name, shape, dtype, 3, 12, kind)

    removed = [info("old/dense/w"), info("old/dense/w/Adam", kind="optimizer"), info("lonely", (9,))]
    added = [info("new/dense/w/Adam", kind="optimizer"), info("new/dense/w"), info("other", dtype="float64")]
    pairs = suggest_pairs(removed, added)
    assert [(p.removed, p.added) for p in pairs] == [("old/dense/w/Adam", "new/dense/w/Adam"),
                                                     ("old/dense/w", "new/dense/w")]


@pytest.fixture(scope="module")
def tf2_pair(tmp_path_factory, cb):
    folder = tmp_path_factory.mktemp("tf2_pair")
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    extras = {"half": np.array([1.5, -2.0], ml_dtypes.bfloat16), "z": np.array([1 + 1j, 2 - 1j], np.complex128),
              "on": np.array([True, False]), "tag": np.array([b"x", b"y"], dtype=object)}
    pa = cb.save_tf2(str(folder / "a" / "ckpt-1"), {"net": {"w": w, "b": np.zeros(3, np.float32)} | extras})
    changed = extras | {"z": extras["z"] * 2, "tag": np.array([b"x", b"z"], dtype=object)}
    pb = cb.save_tf2(str(folder / "b" / "ckpt-1"),
                     {"model": {"net": {"w": w + 1, "b": np.zeros(3, np.float32)} | changed}})
    return pa, pb


def test_tf2_names_with_and_without_mapping(tf2_pair, cb):
    pa, pb = tf2_pair
    plain = diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb))
    assert plain.summary["removed"] == plain.summary["added"] == 6
    assert plain.suggested_rules[0] == "^=model/"
    mapped = diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb), mapping=NameMapping(add_prefix_a="model/"),
                              verify=True)  # every statistic computed from the bytes
    status = {r.name: r.status for r in mapped.variables}
    key = "model/net/{}/.ATTRIBUTES/VARIABLE_VALUE"
    assert status[key.format("w")] == status[key.format("z")] == status[key.format("tag")] == "changed"
    assert status[key.format("b")] == status[key.format("half")] == status[key.format("on")] == "unchanged"
    ref_a, ref_b = cb.read_all(pa), cb.read_all(pb)
    for row in mapped.variables:
        if row.status in ("changed", "unchanged"):
            expected = cb.reference_diff(ref_a[row.name_a], ref_b[row.name])
            for stat in STATS:
                assert cb.close(getattr(row, stat), expected[stat]), (row.name, stat)
    # The object graph moved too: it is metadata, a string compared by equality.
    graph_row = next(r for r in plain.variables if r.name == "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert (graph_row.kind, graph_row.status, graph_row.l2_diff) == ("metadata", "changed", None)


@pytest.mark.parametrize("backend", ["native", "tf"])
@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_shard_mid_diff_is_a_clean_error(v1_pair, cb, tmp_path, backend, how):
    pa, pb = v1_pair
    damaged = shutil.copytree(os.path.dirname(pb), tmp_path / "b")
    prefix = os.path.join(damaged, os.path.basename(pb))
    shard = cb.corrupt(prefix, how, "dense/kernel")
    a, b = open_checkpoint(pa, backend), open_checkpoint(prefix, backend)  # the index is still fine
    with pytest.raises(errors.CkptError) as caught:
        diff_checkpoints(a, b)
    message = str(caught.value)
    assert os.path.basename(prefix) in message and "\n" not in message
    if backend == "native":  # TensorFlow's own messages name the prefix only
        assert shard in message
        expected = errors.CorruptCheckpoint if how == "flip" else errors.IncompleteCheckpoint
        assert isinstance(caught.value, expected)
