"""Tensors whose stored crc32c, dtype, shape and size match are `unchanged` without being read; --verify reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ckptlib.compare.diff import diff_checkpoints
from ckptlib.compare.health import run_health
from ckptlib.compare.trends import run_trends
from ckptlib.errors import CkptError
from ckptlib.runs.history import load_history
from ckptlib.runs.resolve import open_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def finetune(tmp_path_factory):
    """A 'fine-tune': backbone tensors identical in both saves, the head changed, one tensor off by one byte."""
    import cmpbuild

    rng = np.random.default_rng(7)
    backbone = {f"backbone/conv{i}/w": rng.standard_normal((16, 16)).astype(np.float32) for i in range(4)}
    backbone["backbone/bias"] = np.zeros(16, np.float32)  # zero-initialised and frozen: ||a|| = 0
    backbone["backbone/tag"] = np.array([b"resnet", b"v1"], dtype=object)
    head = rng.standard_normal((16, 10)).astype(np.float32)
    nearly = rng.standard_normal(64).astype(np.float32)
    one_bit = nearly.copy()
    one_bit.view(np.uint32)[5] ^= 1  # the smallest change there is: crc32c differs, so it must be read
    folder = tmp_path_factory.mktemp("finetune")
    a = cmpbuild.save_v1(str(folder / "a" / "model.ckpt-0"), {**backbone, "head/w": head, "nearly": nearly})
    b = cmpbuild.save_v1(str(folder / "b" / "model.ckpt-1"), {**backbone, "head/w": head + 1, "nearly": one_bit})
    return a, b, set(backbone)


def test_matching_checksums_skip_the_bytes_and_keep_the_statuses(finetune):
    a, b, backbone = finetune
    fast = {r.name: r for r in diff_checkpoints(open_checkpoint(a), open_checkpoint(b)).variables}
    full = {r.name: r for r in diff_checkpoints(open_checkpoint(a), open_checkpoint(b), verify=True).variables}
    assert {n: r.status for n, r in fast.items()} == {n: r.status for n, r in full.items()}
    assert {n for n, r in fast.items() if r.by == "checksum"} == backbone
    assert all(r.by is None for r in full.values())
    assert fast["nearly"].status == "changed" and fast["nearly"].num_changed == 1 and fast["nearly"].by is None
    conv = fast["backbone/conv0/w"]
    assert (conv.l2_diff, conv.max_abs_diff, conv.frac_changed, conv.num_changed) == (0.0, 0.0, 0.0, 0)
    assert conv.rel_change is None and conv.cosine is None  # they need ||a||: not guessed
    assert full["backbone/conv0/w"].rel_change == 0.0 and full["backbone/bias"].rel_change is None
    assert fast["backbone/tag"].l2_diff is None and fast["backbone/tag"].frac_changed == 0.0  # strings: equality


def test_no_byte_of_a_matching_tensor_is_read(finetune, tmp_path):
    import shutil

    a = finetune[0]
    # A copy of A whose data shard holds only zeros: any tensor read from it fails its crc32c check.
    copy = shutil.copytree(os.path.dirname(a), tmp_path / "a")
    shard = next(copy.glob("*.data-*"))
    shard.write_bytes(bytes(shard.stat().st_size))
    blanked = str(copy / os.path.basename(a))
    same = diff_checkpoints(open_checkpoint(a), open_checkpoint(blanked))
    assert all(r.by == "checksum" and r.status == "unchanged" for r in same.variables)
    with pytest.raises(CkptError, match="crc32c"):
        diff_checkpoints(open_checkpoint(a), open_checkpoint(blanked), verify=True)


def _save_run(folder, steps: list[dict]) -> str:
    import cmpbuild

    for i, values in enumerate(steps):
        cmpbuild.save_v1(os.path.join(folder, f"model.ckpt-{i + 1}"), values)
    return folder


def test_trends_reuse_the_previous_point_when_the_bytes_are_the_same(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    z = np.zeros(4, np.float32)
    run = _save_run(str(tmp_path / "run"), [{"w": w, "z": z}, {"w": w, "z": z}, {"w": w * 2, "z": z}])
    fast, full = run_trends(load_history(run)), run_trends(load_history(run), verify=True)
    for name in ("w", "z"):
        got, want = fast.get(name).points, full.get(name).points
        assert [p.by for p in got][1:2] == ["checksum"] and all(p.by is None for p in want)
        for p, q in zip(got, want):
            assert (p.step, p.l2, p.mean, p.std, p.min, p.max, p.rel_change_prev, p.rel_change_first,
                    p.frac_changed_prev) == (q.step, q.l2, q.mean, q.std, q.min, q.max, q.rel_change_prev,
                                             q.rel_change_first, q.frac_changed_prev)
    assert [f.variable for f in run_health(load_history(run)).flags if f.flag == "frozen"] == ["z"]  # z never moved
    frozen = _save_run(str(tmp_path / "frozen"), [{"w": w}, {"w": w}, {"w": w}])
    assert [(f.variable, f.flag) for f in run_health(load_history(frozen)).flags] == [("w", "frozen")]


def test_cli_marks_checksum_rows_and_verify_reads_them(finetune):
    a, b, backbone = finetune

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    rows = {r["name"]: r for r in json.loads(cli("diff", a, b, "--json"))["variables"]}
    assert {n for n, r in rows.items() if r.get("by") == "checksum"} == backbone
    verified = json.loads(cli("diff", a, b, "--json", "--verify"))["variables"]
    assert not any("by" in r for r in verified)
    assert {r["name"]: r["status"] for r in verified} == {n: r["status"] for n, r in rows.items()}
    text = cli("diff", a, b, "--all")
    assert "unchanged (crc32c)" in text and "bytes not read" in text
