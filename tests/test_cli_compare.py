"""The diff/trend/health subcommands through argparse and cli_compare.HANDLERS, as cli.main runs them."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys

import numpy as np
import pytest

from ckptlib import errors
from ckptlib.cli import compare as cli_compare
from ckptlib.cli.compare import HANDLERS, ProgressLine, add_subcommands


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """What `python -m ckptlib` does with these handlers: text or --json on stdout, `error: ` + exit 2."""
    parser = argparse.ArgumentParser(prog="python -m ckptlib")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
        document, text = HANDLERS[args.command](args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    except errors.CkptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    else:
        print(json.dumps(document, allow_nan=False) if args.json else text)
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cb():
    import cmpbuild

    return cmpbuild


@pytest.fixture(scope="module")
def pair(tmp_path_factory, cb):
    folder = tmp_path_factory.mktemp("cli_pair")
    rng = np.random.default_rng(5)
    w = rng.standard_normal((5, 4)).astype(np.float32)
    a = {"resnet/w": w, "resnet/b": np.zeros(4, np.float32), "head/w": w[:2].copy(),
         "nans": np.array([np.nan, 1.0], np.float32)}
    b = {"model/backbone/w": w, "model/backbone/b": np.zeros(4, np.float32), "head/w": w[:2] * 2,
         "nans": np.array([np.nan, 3.0], np.float32)}
    return cb.save_v1(str(folder / "a" / "model.ckpt"), a, step=1), cb.save_v1(str(folder / "b" / "model.ckpt"), b,
                                                                                step=2)


@pytest.mark.parametrize("reader", ["native", "tf"])
def test_diff_json_follows_the_contract(pair, cb, capsys, reader):
    code, out, err = run_cli(["diff", *pair, "--json", "--reader", reader], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["a"], doc["b"]) == pair
    assert doc["summary"] == {"changed": 2, "unchanged": 0, "added": 2, "removed": 2, "shape_changed": 0,
                              "dtype_changed": 0}
    rows = {r["name"]: r for r in doc["variables"]}
    required = {"name", "status", "shape_a", "shape_b", "l2_diff", "rel_change", "max_abs_diff", "mean_abs_diff",
                "cosine", "frac_changed"}
    assert all(required <= set(r) for r in doc["variables"])
    head = rows["head/w"]
    expected = cb.reference_diff(cb.read_all(pair[0])["head/w"], cb.read_all(pair[1])["head/w"])
    for stat in ("l2_diff", "rel_change", "max_abs_diff", "mean_abs_diff", "cosine", "frac_changed"):
        assert cb.close(head[stat], expected[stat])
    assert head["shape_a"] == [2, 4] and head["kind"] == "model"
    assert rows["resnet/w"]["status"] == "removed" and rows["resnet/w"]["shape_b"] is None
    assert rows["nans"]["nonfinite"] == 1 and rows["nans"]["l2_diff"] == 2.0
    assert {(s["removed"], s["added"]) for s in doc["suggestions"]} == {("resnet/w", "model/backbone/w"),
                                                                         ("resnet/b", "model/backbone/b")}
    assert doc["suggested_rules"] == ["^resnet/=model/backbone/"]


@pytest.mark.parametrize("options", [["--map", "^resnet/=model/backbone/"],
                                     ["--strip-prefix", "resnet/", "--add-prefix", "model/backbone/"]])
def test_diff_with_mapping(pair, capsys, options):
    code, out, _ = run_cli(["diff", *pair, "--json", *options], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["summary"]["unchanged"] == 2 and doc["summary"]["added"] == 0
    row = next(r for r in doc["variables"] if r["name"] == "model/backbone/w")
    assert (row["name_a"], row["status"], row["l2_diff"]) == ("resnet/w", "unchanged", 0.0)


def test_diff_text_hides_unchanged_rows_unless_all(pair, capsys):
    mapping = ["--map", "^resnet/=model/backbone/"]
    code, out, _ = run_cli(["diff", *pair, *mapping], capsys)
    assert code == 0 and "summary: 2 changed, 2 unchanged" in out
    assert "model/backbone/w" not in out and "2 unchanged variables not listed" in out
    _, everything, _ = run_cli(["diff", *pair, *mapping, "--all"], capsys)
    assert "model/backbone/w (A: resnet/w)" in everything
    _, unmapped, _ = run_cli(["diff", *pair], capsys)
    assert "resnet/w -> model/backbone/w" in unmapped and "--map '^resnet/=model/backbone/'" in unmapped


@pytest.mark.parametrize("reader", ["native", "tf"])
@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_shard_exits_2_with_one_error_line(pair, cb, capsys, tmp_path, reader, how):
    copy = shutil.copytree(os.path.dirname(pair[1]), tmp_path / "b")
    prefix = os.path.join(copy, os.path.basename(pair[1]))
    shard = cb.corrupt(prefix, how, "head/w")
    code, out, err = run_cli(["diff", pair[0], prefix, "--reader", reader], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert (shard if reader == "native" else os.path.basename(prefix)) in err


@pytest.mark.parametrize("argv, needle", [
    (["diff", "A", "B", "--map", "(unclosed=x"], "invalid regex"),
    (["diff", "A", "B", "--map", "no-separator"], "REGEX=REPL"),
    (["diff", "/no/such/ckpt", "/no/such/other"], "ckpt.index does not exist"),
    (["trend", "/no/such/run", "--var", "w"], "/no/such/run"),
])  # fmt: skip
def test_bad_input_exits_2(capsys, argv, needle):
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == "" and err.startswith("error: ") and needle in err


def test_argument_errors_exit_2(pair, capsys):
    for argv in (["diff", *pair, "--atol", "-1"], ["health", "run", "--jump", "0.5"], ["trend", "run"]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and out == "" and "error:" in err


@pytest.fixture(scope="module")
def trend_run(tmp_path_factory, cb):
    folder = str(tmp_path_factory.mktemp("cli_trend") / "run")
    return folder, cb.trend_run(folder)


@pytest.mark.parametrize("reader", ["native", "tf"])
def test_trend_json_matches_numpy(trend_run, cb, capsys, reader):
    folder, saved = trend_run
    code, out, err = run_cli(["trend", folder, "--var", "dense/bias", "--json", "--reader", reader], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["run"], doc["variable"]) == (folder, "dense/bias")
    assert [p["step"] for p in doc["points"]] == [1, 2, 3, 4, 5]
    assert [(s["prefix"], s["step"]) for s in doc["skipped"]] == [(saved[-1], 6)]
    prev = None
    for point, prefix in zip(doc["points"], saved):
        x = cb.read_all(prefix)["dense/bias"].astype(np.float64)
        assert cb.close(point["l2"], float(np.linalg.norm(x))) and cb.close(point["std"], float(x.std()))
        want = None if prev is None else float(np.linalg.norm(x - prev) / np.linalg.norm(prev))
        assert cb.close(point["rel_change_prev"], want)
        prev = x
    code, text, _ = run_cli(["trend", folder, "--var", "dense/bias"], capsys)
    assert code == 0 and "rel_change_prev" in text and "skipped model.ckpt-6" in text


def test_health_json_and_text(tmp_path_factory, cb, capsys):
    folder = str(tmp_path_factory.mktemp("cli_health") / "run")
    cb.health_run(folder)
    code, out, err = run_cli(["health", folder, "--json"], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["run"] == folder and doc["jump_ratio"] == 4.0
    assert all(set(f) >= {"prefix", "variable", "flag", "detail"} for f in doc["flags"])
    assert {(f["variable"], f["flag"]) for f in doc["flags"]} >= {("frozen/w", "frozen"), ("nanvar", "nan_inf"),
                                                                   ("dense/kernel", "norm_jump")}
    code, out, _ = run_cli(["health", folder, "--include-optimizer", "--jump", "1000", "--json"], capsys)
    doc = json.loads(out)
    assert doc["include_optimizer"] and "dense/kernel/Adam" in doc["checked"]
    assert not [f for f in doc["flags"] if f["flag"] == "norm_jump"]
    code, text, _ = run_cli(["health", folder], capsys)
    assert code == 0 and "norm_collapse" in text and "dense/bias" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal():
    quiet = io.StringIO()
    line = ProgressLine("diff", stream=quiet, interval=0.0)
    line(0, 2, "w")
    line(2, 2, "")
    assert quiet.getvalue() == ""
    tty = _Terminal()
    line = ProgressLine("diff", stream=tty, interval=0.0)
    line(0, 2, "dense/kernel")
    line(1, 2, "dense/bias")
    line(2, 2, "")
    written = tty.getvalue()
    assert "\n" not in written and written.count("\r") == 3
    assert "diff 1/2 dense/kernel" in written and written.endswith("\r\033[K")


def test_handlers_cover_the_subcommands():
    assert set(cli_compare.HANDLERS) == {"diff", "trend", "health"}
