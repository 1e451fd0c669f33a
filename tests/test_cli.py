"""`python -m ckptlib` in a subprocess: text, --json (checked against TF's reader) and bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import copy_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = ".data-00000-of-00001"
ENTRY_KEYS = {"prefix", "step", "mtime", "size_bytes", "in_state", "latest", "complete", "has_meta", "problem"}
VAR_KEYS = {"name", "display_name", "shape", "dtype", "num_elements", "nbytes", "kind", "slot_of", "copy_of"}
STAT_KEYS = {"min", "max", "mean", "std", "l2", "nan", "inf", "zero_fraction"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user would run it
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # write nothing into the repository
    return subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def _reject_constant(name):
    raise ValueError(f"not JSON: {name}")


def run_json(*args: str):
    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    # Strict JSON: NaN / Infinity would break jq and every other parser.
    return json.loads(proc.stdout, parse_constant=_reject_constant)


def _tf_state(run):
    import tensorflow as tf

    return tf.train.get_checkpoint_state(run)


# --- runs ---------------------------------------------------------------------------------------
def test_runs(saver_rel, manager_plain, tmp_path):
    root = tmp_path / "root"
    copy_run(saver_rel[0], root / "exp", "run1")
    copy_run(manager_plain[0], root, "run2")
    copy_run(saver_rel[0], root / ".trash", "run3")
    doc = run_json("runs", str(root))
    assert set(doc) == {"root", "runs"} and doc["root"] == str(root)
    assert doc["runs"] == [
        {"path": str(root / "exp" / "run1"), "name": "exp/run1", "num_checkpoints": 3, "latest_step": 6},
        {"path": str(root / "run2"), "name": "run2", "num_checkpoints": 2, "latest_step": 50},
    ]
    text = run_cli("runs", str(root))
    assert text.returncode == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert len(lines) == 3 and "exp/run1" in lines[1] and "run2" in lines[2] and "run3" not in text.stdout


# --- history ------------------------------------------------------------------------------------
def test_history_json(restarted_run):
    run = restarted_run
    doc = run_json("history", run)
    assert {"run", "problem", "checkpoints"} <= set(doc)
    assert doc["run"] == run and doc["problem"] is None
    rows = doc["checkpoints"]
    assert all(ENTRY_KEYS <= set(row) for row in rows)
    assert [row["step"] for row in rows] == [2, 3, 4, 5]  # sorted by step
    state = _tf_state(run)
    listed = set(state.all_model_checkpoint_paths)
    for row in rows:
        index = row["prefix"] + ".index"
        assert row["in_state"] == (row["prefix"] in listed)
        assert row["latest"] == (row["prefix"] == state.model_checkpoint_path)
        assert row["mtime"] == os.path.getmtime(index)
        files = [f for f in os.listdir(run) if f.startswith(os.path.basename(row["prefix"]) + ".")]
        assert row["size_bytes"] == sum(os.path.getsize(os.path.join(run, f)) for f in files)
        assert row["complete"] is True
        assert isinstance(row["has_meta"], bool)
        if row["in_state"]:
            assert row["problem"] is None
        else:
            assert "state file" in row["problem"]  # the orphans explain themselves


def test_history_text(restarted_run):
    proc = run_cli("history", restarted_run)
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == f"run: {restarted_run}"
    header = next(i for i, line in enumerate(lines) if line.startswith("checkpoint "))
    assert all(line.startswith("note: ") for line in lines[1:header])
    body = {line.split()[0]: line for line in lines[header + 1:]}
    assert list(body) == ["model.ckpt-2", "model.ckpt-3", "model.ckpt-4", "model.ckpt-5"]
    assert "orphan" in body["model.ckpt-2"] and "Not listed in the state file" in body["model.ckpt-2"]
    assert "latest" in body["model.ckpt-5"] and "kept" in body["model.ckpt-4"]


def test_history_of_damaged_run(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    os.remove(os.path.join(run, "model.ckpt-5" + DATA))
    os.remove(os.path.join(run, "checkpoint"))
    doc = run_json("history", run)
    assert "state file" in doc["problem"]
    rows = {os.path.basename(r["prefix"]): r for r in doc["checkpoints"]}
    assert rows["model.ckpt-5"]["complete"] is False
    assert "model.ckpt-5" + DATA in rows["model.ckpt-5"]["problem"]
    assert not any(r["in_state"] or r["latest"] for r in rows.values())
    proc = run_cli("history", run)
    assert proc.returncode == 0 and "problem: " in proc.stdout and "incomplete" in proc.stdout


def test_history_of_manager_run_uses_state_timestamps(manager_preserved):
    run, _ = manager_preserved
    doc = run_json("history", run)
    state = _tf_state(run)
    kept = [r for r in doc["checkpoints"] if r["in_state"]]
    assert [r["mtime"] for r in kept] == list(state.all_model_checkpoint_timestamps)
    assert [r["step"] for r in doc["checkpoints"]] == [10, 20, 30, 40, 50]
    assert all(r["problem"] is None for r in doc["checkpoints"])  # preserved ones are no orphans


# --- vars ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["saver", "manager", "zoo", "sharded"])
def test_vars_json_matches_tensorflow(which, saver_abs, manager_plain, zoo, sharded, tf_reader):
    prefix = {"saver": saver_abs[1][-1], "manager": manager_plain[1][-1], "zoo": zoo[0], "sharded": sharded[0]}[which]
    doc = run_json("vars", prefix)
    assert set(doc) == {"checkpoint", "variables"} and doc["checkpoint"] == prefix
    reference = tf_reader(prefix)
    shapes, dtypes = reference.get_variable_to_shape_map(), reference.get_variable_to_dtype_map()
    assert [v["name"] for v in doc["variables"]] == sorted(shapes)
    for var in doc["variables"]:
        assert set(var) == VAR_KEYS
        assert var["shape"] == list(shapes[var["name"]])
        assert var["dtype"] == dtypes[var["name"]].name
        assert var["num_elements"] == int(np.prod(var["shape"], dtype=np.int64))
        assert isinstance(var["nbytes"], int) and var["nbytes"] >= 0
        assert var["kind"] in {"model", "optimizer", "counter", "metadata"}
    if which == "saver":
        kinds = {v["name"]: v["kind"] for v in doc["variables"]}
        assert kinds["global_step"] == "counter" and kinds["dense/kernel/Adam_1"] == "optimizer"
        assert kinds["dense/kernel"] == "model"
    if which == "manager":
        kinds = {v["name"]: v["kind"] for v in doc["variables"]}
        assert kinds["_CHECKPOINTABLE_OBJECT_GRAPH"] == "metadata"


def test_vars_of_a_run_folder_is_its_latest(saver_abs):
    run, saved = saver_abs
    doc = run_json("vars", run)
    assert doc["checkpoint"] == saved[-1]
    assert run_json("vars", saved[-2] + ".index")["checkpoint"] == saved[-2]


def test_vars_text(zoo):
    prefix, values = zoo
    proc = run_cli("vars", prefix)
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == f"checkpoint: {prefix} (tf-bundle-v2)"
    assert lines[-1].startswith(f"{len(values)} variables, ")
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert set(rows) == set(values)
    assert rows["zoo/bfloat16"][1:4] == ["[3,", "5]", "bfloat16"]
    assert rows["zoo/string_scalar"][1:3] == ["[]", "string"]


def test_vars_with_tf_reader_equals_native(zoo):
    native = run_json("vars", zoo[0])
    assert run_json("vars", zoo[0], "--reader", "tf") == native


# --- show ---------------------------------------------------------------------------------------
def _reference_stats(array: np.ndarray) -> dict:
    array = np.asarray(array)
    comps = (np.concatenate([array.real.ravel(), array.imag.ravel()]) if array.dtype.kind == "c"
             else array.ravel()).astype(np.float64)
    finite = comps[np.isfinite(comps)]
    return {"min": finite.min(), "max": finite.max(), "mean": finite.mean(), "std": finite.std(),
            "l2": float(np.linalg.norm(finite)), "nan": int(np.isnan(comps).sum()),
            "inf": int(np.isinf(comps).sum()), "zero_fraction": float((comps == 0).mean())}


def _check_show(doc, prefix, name, tf_reader):
    assert {"checkpoint", "name", "shape", "dtype", "stats", "histogram", "preview"} <= set(doc)
    assert doc["checkpoint"] == prefix and doc["name"] == name
    reference = tf_reader(prefix)
    want = np.asarray(reference.get_tensor(name))
    assert doc["shape"] == list(want.shape)
    assert doc["dtype"] == reference.get_variable_to_dtype_map()[name].name
    assert set(doc["stats"]) == STAT_KEYS
    return want


@pytest.mark.parametrize("name", ["dense/kernel", "dense/bias/Adam_1", "global_step", "beta1_power"])
def test_show_json_numbers(saver_abs, tf_reader, name):
    prefix = saver_abs[1][-1]
    doc = run_json("show", prefix, "--var", name)
    want = _check_show(doc, prefix, name, tf_reader)
    expected = _reference_stats(want)
    for key, value in expected.items():
        assert doc["stats"][key] == pytest.approx(value, rel=1e-9, abs=1e-300), key
    assert sum(doc["histogram"]["counts"]) == want.size
    assert len(doc["histogram"]["edges"]) == len(doc["histogram"]["counts"]) + 1
    edges = doc["histogram"]["edges"]
    if want.size > 1:
        assert edges[0] == expected["min"] and edges[-1] == pytest.approx(expected["max"], rel=1e-12)
    else:  # one value: one bin around it
        assert edges[0] < expected["min"] < edges[-1]
    assert doc["preview"] == want.tolist()


def test_show_json_nan_inf_complex_bfloat16(zoo, tf_reader):
    prefix, _ = zoo
    doc = run_json("show", prefix, "--var", "zoo/float64")
    want = _check_show(doc, prefix, "zoo/float64", tf_reader)
    assert doc["stats"]["nan"] == 1 and doc["stats"]["inf"] == 2
    assert doc["stats"]["max"] == 1e300 and doc["stats"]["min"] == -2.5
    assert doc["stats"]["l2"] == pytest.approx(1e300, rel=1e-9)  # no overflow to Infinity
    assert doc["stats"]["zero_fraction"] == 0.2
    assert doc["preview"][0][:3] == ["NaN", "Infinity", "-Infinity"]
    assert sum(doc["histogram"]["counts"]) == int(np.isfinite(want).sum())

    doc = run_json("show", prefix, "--var", "zoo/complex128")
    want = _check_show(doc, prefix, "zoo/complex128", tf_reader)
    expected = _reference_stats(want)
    for key in ("mean", "std", "l2"):
        assert doc["stats"][key] == pytest.approx(expected[key], rel=1e-9)
    assert sum(doc["histogram"]["counts"]) == 2 * want.size
    assert doc["preview"] == [[[float(v.real), float(v.imag)] for v in row] for row in want]

    doc = run_json("show", prefix, "--var", "zoo/bfloat16")
    want = _check_show(doc, prefix, "zoo/bfloat16", tf_reader)
    assert doc["dtype"] == "bfloat16"
    assert doc["stats"]["mean"] == pytest.approx(want.astype(np.float64).mean(), rel=1e-9)
    assert doc["preview"] == want.astype(np.float64).tolist()


@pytest.mark.parametrize("name", ["zoo/string_1d", "zoo/string_2d", "zoo/string_scalar", "zoo/bool",
                                  "zoo/empty_float32"])
def test_show_json_without_statistics(zoo, tf_reader, name):
    prefix, values = zoo
    doc = run_json("show", prefix, "--var", name)
    want = _check_show(doc, prefix, name, tf_reader)
    if name != "zoo/empty_float32":
        assert doc["stats"] == {"min": None, "max": None, "mean": None, "std": None, "l2": None, "nan": 0,
                                "inf": 0, "zero_fraction": None}
    assert doc["stats"]["mean"] is None and doc["histogram"] is None
    if values[name].dtype == object:  # strings: decoded, cut at 200 characters
        def text(raw: bytes) -> str:
            decoded = raw.decode("utf-8", "replace")
            return decoded if len(decoded) <= 200 else decoded[:200] + "…"

        assert doc["preview"] == np.vectorize(text, otypes=[object])(values[name]).tolist()
    else:
        assert doc["preview"] == want.tolist()
    if name == "zoo/string_2d":
        assert doc["preview"][1][1].endswith("…") and len(doc["preview"][1][1]) == 201


def test_show_text(saver_abs):
    prefix = saver_abs[1][-1]
    proc = run_cli("show", prefix, "--var", "dense/kernel")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert f"checkpoint: {prefix}" in text and "variable:   dense/kernel" in text and "shape:      [4, 3]" in text
    assert "dtype:      float32" in text and "kind:       model" in text
    for key in STAT_KEYS:
        assert f"  {key}" in text


def test_show_with_tf_reader_equals_native(saver_abs):
    prefix = saver_abs[1][-1]
    native = run_json("show", prefix, "--var", "dense/kernel/Adam")
    assert run_json("show", prefix, "--var", "dense/kernel/Adam", "--reader", "tf") == native


def test_listing_and_reading_do_not_import_tensorflow(saver_abs, manager_plain, zoo):
    # DESIGN.md: listing, reading (and diffing) must not pay TensorFlow's ~3 s import.
    code = (
        "import sys, contextlib, io\n"
        "from ckptlib.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    codes = [main(['runs', {os.path.dirname(saver_abs[0])!r}]),\n"
        f"             main(['history', {manager_plain[0]!r}]),\n"
        f"             main(['vars', {zoo[0]!r}, '--json']),\n"
        f"             main(['show', {saver_abs[0]!r}, '--var', 'dense/kernel'])]\n"
        "assert codes == [0, 0, 0, 0], codes\n"
        "print(sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- bad inputs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def damaged(saver_rel, tmp_path_factory):
    """One copy per kind of damage, all of the latest checkpoint (model.ckpt-6)."""
    base = tmp_path_factory.mktemp("damaged")
    prefixes = {}
    for damage in ("truncated_index", "garbage_index", "missing_data", "truncated_data"):
        run = copy_run(saver_rel[0], base, damage)
        prefix = os.path.join(run, "model.ckpt-6")
        index, data = prefix + ".index", prefix + DATA
        if damage == "truncated_index":
            os.truncate(index, os.path.getsize(index) - 20)
        elif damage == "garbage_index":
            with open(index, "wb") as handle:
                handle.write(np.random.default_rng(1).bytes(os.path.getsize(index)))
        elif damage == "missing_data":
            os.remove(data)
        else:
            os.truncate(data, os.path.getsize(data) // 3)
        prefixes[damage] = prefix
    prefixes["intact"] = os.path.join(saver_rel[0], "model.ckpt-5")
    foreign = base / "foreign.txt"
    foreign.write_text("this is not a checkpoint\n")
    prefixes["foreign"] = str(foreign)
    empty = base / "empty_run"
    empty.mkdir()
    prefixes["empty_run"] = str(empty)
    return prefixes


CASES = {
    # id: (argv builder, text that must name the file)
    "missing_path": (lambda d, t: ["vars", str(t / "no_such.ckpt-1")], lambda d, t: "no_such.ckpt-1"),
    "missing_run": (lambda d, t: ["history", str(t / "no_such_run")], lambda d, t: "no_such_run"),
    "missing_root": (lambda d, t: ["runs", str(t / "no_such_root")], lambda d, t: "no_such_root"),
    "truncated_index": (lambda d, t: ["vars", d["truncated_index"]], lambda d, t: "model.ckpt-6.index"),
    "garbage_index": (lambda d, t: ["vars", d["garbage_index"] + ".index"], lambda d, t: "model.ckpt-6.index"),
    "garbage_index_show": (lambda d, t: ["show", d["garbage_index"], "--var", "dense/kernel"],
                           lambda d, t: "model.ckpt-6.index"),
    "missing_data": (lambda d, t: ["show", d["missing_data"], "--var", "dense/kernel"],
                     lambda d, t: "model.ckpt-6" + DATA),
    "missing_data_tf": (lambda d, t: ["show", d["missing_data"], "--var", "dense/kernel", "--reader", "tf"],
                        lambda d, t: "model.ckpt-6" + DATA),
    "truncated_data": (lambda d, t: ["show", d["truncated_data"], "--var", "dense/kernel/Adam_1"],
                       lambda d, t: "model.ckpt-6" + DATA),
    "unknown_var": (lambda d, t: ["show", d["intact"], "--var", "no/such/var"], lambda d, t: d["intact"]),
    "foreign_file": (lambda d, t: ["vars", d["foreign"]], lambda d, t: "foreign.txt"),
    "empty_run": (lambda d, t: ["show", d["empty_run"], "--var", "w"], lambda d, t: "empty_run"),
}


# Every case in text mode; a few again with --json (the error path is the same, each call costs ~0.5 s,
# and the TensorFlow-backed ones ~4 s).
PARAMS = [(case, False) for case in CASES] + [
    (case, True) for case in ("missing_path", "garbage_index_show", "missing_data", "unknown_var")]


@pytest.mark.parametrize(("case", "as_json"), PARAMS, ids=[c + ("-json" if j else "") for c, j in PARAMS])
def test_bad_input_is_one_error_line(damaged, tmp_path, case, as_json):
    argv_of, names_of = CASES[case]
    argv = argv_of(damaged, tmp_path) + (["--json"] if as_json else [])
    proc = run_cli(*argv)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: "), proc.stderr
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert names_of(damaged, tmp_path) in proc.stderr
    if case == "unknown_var":
        assert "no/such/var" in proc.stderr


@pytest.mark.parametrize("args", [(), ("frob",), ("show", "somewhere"), ("diff", "a", "b", "--atol", "abc"),
                                  ("health", "run", "--jump", "0.5")])
def test_usage_errors_are_one_line_too(args):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "_non_negative" not in result.stderr and "usage:" not in result.stderr
