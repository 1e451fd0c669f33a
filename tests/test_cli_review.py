"""`python -m ckptlib note / notes / retract / report` in subprocesses, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import copy_run, snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTE_KEYS = {"id", "run", "checkpoint", "variable", "verdict", "text", "author", "created"}
LISTED_KEYS = NOTE_KEYS | {"retracted", "checkpoint_changed", "checkpoint_missing"}


def cli(db: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CKPTLIB_DB", "CKPTLIB_AUTHOR")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-m", "ckptlib", *args, "--db", db], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def ok(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def refused(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite3'}"
    return request.getfixturevalue("fresh_pg_url")


@pytest.fixture
def run(saver_rel, tmp_path):
    """A private copy of a real v1 Saver run (6 saves, 3 kept) that a test may rewrite or delete."""
    return copy_run(saver_rel[0], tmp_path / "runs")


def _prefixes(run: str) -> list[str]:
    return sorted((os.path.join(run, n[: -len(".index")]) for n in os.listdir(run) if n.endswith(".index")),
                  key=lambda p: int(p.rsplit("-", 1)[1]))


def test_notes_on_every_kind_of_target_round_trip(db, run):
    before = snapshot(run)
    first, last = _prefixes(run)[0], _prefixes(run)[-1]
    on_ckpt = ok(cli(db, "note", last + ".index", "--verdict", "ship", "--text", "Best **so far**", "--author",
                     "ana", "--json"))
    assert NOTE_KEYS <= set(on_ckpt)
    assert (on_ckpt["run"], on_ckpt["checkpoint"], on_ckpt["verdict"], on_ckpt["author"]) == (
        run, last, "ship", "ana")
    on_run = ok(cli(db, "note", run, "--text", "LR too high early on", "--author", "bo", "--json"))
    assert (on_run["checkpoint"], on_run["variable"]) == (None, None)
    on_var = ok(cli(db, "note", run, "--var", "dense/kernel", "--text", "moves", "--author", "bo", "--json"))
    assert (on_var["checkpoint"], on_var["variable"]) == (last, "dense/kernel")  # a run means its latest
    on_diff = ok(cli(db, "note", first, "--b", last, "--verdict", "regressed", "--text", "-", "--author", "cy",
                     "--json", stdin="bias jumped\n"))
    assert (on_diff["checkpoint"], on_diff["checkpoint_b"], on_diff["text"]) == (first, last, "bias jumped")

    listed = ok(cli(db, "notes", os.path.dirname(run), "--json"))["notes"]
    assert [n["id"] for n in listed] == [on_diff["id"], on_var["id"], on_run["id"], on_ckpt["id"]]  # newest first
    assert all(LISTED_KEYS <= set(n) for n in listed)
    assert not any(n["retracted"] or n["checkpoint_changed"] or n["checkpoint_missing"] for n in listed)
    assert [n["id"] for n in ok(cli(db, "notes", run, "--verdict", "ship", "--json"))["notes"]] == [on_ckpt["id"]]
    assert [n["author"] for n in ok(cli(db, "notes", "--author", "bo", "--json"))["notes"]] == ["bo", "bo"]
    text = cli(db, "notes", run)
    assert text.returncode == 0 and "[ship]" in text.stdout and "Best **so far**" in text.stdout
    assert snapshot(run) == before  # nothing written inside the checkpoint folder


def test_supersede_and_retract_keep_history(db, run):
    last = _prefixes(run)[-1]
    old = ok(cli(db, "note", last, "--verdict", "candidate", "--text", "maybe", "--author", "ana", "--json"))
    new = ok(cli(db, "note", last, "--verdict", "ship", "--text", "yes", "--author", "ana", "--supersedes",
                 str(old["id"]), "--json"))
    assert new["supersedes"] == old["id"]
    assert [n["id"] for n in ok(cli(db, "notes", run, "--json"))["notes"]] == [new["id"]]
    every = ok(cli(db, "notes", run, "--all", "--json"))["notes"]
    assert {n["id"]: n["superseded_by"] for n in every} == {new["id"]: None, old["id"]: new["id"]}
    assert "already replaced" in refused(cli(db, "note", last, "--text", "again", "--author", "ana",
                                             "--supersedes", str(old["id"])))
    gone = ok(cli(db, "retract", str(new["id"]), "--author", "bo", "--json"))
    assert gone["retracted"] is True
    assert ok(cli(db, "notes", run, "--json"))["notes"][0]["retracted"] is True  # kept, marked


def test_rewritten_and_deleted_checkpoints_are_flagged(db, run):
    prefixes = _prefixes(run)
    ok(cli(db, "note", prefixes[-1], "--verdict", "ship", "--text", "ship this", "--author", "ana", "--json"))
    ok(cli(db, "note", prefixes[-2], "--verdict", "candidate", "--text", "backup", "--author", "ana", "--json"))
    # Rewrite the latest checkpoint in place (TensorFlow's own SaveV2 to the same prefix), delete the one before.
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefixes[-1])
    values = {name: tf.Variable(reader.get_tensor(name) + 1 if reader.get_tensor(name).dtype.kind == "f"
                                else reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}
    tf.raw_ops.SaveV2(prefix=prefixes[-1], tensor_names=list(values), shape_and_slices=[""] * len(values),
                      tensors=list(values.values()))
    for name in os.listdir(run):
        if name.startswith(os.path.basename(prefixes[-2]) + "."):
            os.remove(os.path.join(run, name))
    listed = {n["checkpoint"]: n for n in ok(cli(db, "notes", run, "--json"))["notes"]}
    assert listed[prefixes[-1]]["checkpoint_changed"] and not listed[prefixes[-1]]["checkpoint_missing"]
    assert listed[prefixes[-2]]["checkpoint_missing"]  # still listed on the run
    assert "checkpoint deleted" in cli(db, "notes", run).stdout


def test_concurrent_cli_writers_lose_nothing(db, run):
    last = _prefixes(run)[-1]
    env = {k: v for k, v in os.environ.items() if k != "CKPTLIB_DB"}
    procs = [subprocess.Popen([sys.executable, "-m", "ckptlib", "note", last, "--text", f"writer {i}", "--author",
                               f"w{i}", "--db", db, "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [rc for _, _, rc in results] == [0] * 6, [err for _, err, _ in results]
    ids = {json.loads(out)["id"] for out, _, _ in results}
    listed = ok(cli(db, "notes", run, "--json"))["notes"]
    assert {n["id"] for n in listed} == ids and len(ids) == 6
    assert sorted(n["text"] for n in listed) == [f"writer {i}" for i in range(6)]


def test_bad_input_is_one_line_and_exit_2(db, run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "not a run" in refused(cli(db, "note", str(empty), "--text", "x", "--author", "a"))
    assert "does not exist" in refused(cli(db, "note", str(tmp_path / "nowhere"), "--text", "x", "--author", "a"))
    assert "invalid choice" in refused(cli(db, "note", run, "--verdict", "great", "--text", "x"))
    assert "has no variable 'nope'" in refused(cli(db, "note", run, "--var", "nope", "--text", "x", "--author", "a"))
    assert "text or a verdict" in refused(cli(db, "note", run, "--text", "  ", "--author", "a"))
    assert "no note 999" in refused(cli(db, "retract", "999", "--author", "a"))
    inside = f"sqlite:///{os.path.join(run, 'notes.db')}"
    assert "inside the run folder" in refused(cli(inside, "note", run, "--text", "x", "--author", "a"))
    assert not os.path.exists(os.path.join(run, "notes.db"))


def test_an_unreachable_database_names_itself_without_its_password(run):
    line = refused(cli("postgresql+psycopg://reviewer:s3cret@127.0.0.1:1/review", "notes", run))
    assert "127.0.0.1" in line and "s3cret" not in line
    assert "not a database URL" in refused(cli("not a url", "notes"))


def test_report_command_writes_markdown_and_html_outside_the_run(run, tmp_path):
    db = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    last = _prefixes(run)[-1]
    ok(cli(db, "note", last, "--verdict", "ship", "--text", "Ship step six", "--author", "ana", "--json"))
    accuracy = tmp_path / "accuracy.json"
    accuracy.write_text(json.dumps({"run": run, "points": [
        {"step": 5, "prefix": _prefixes(run)[-2], "accuracy": 0.91, "num_examples": 100},
        {"step": 6, "prefix": last, "accuracy": 0.93, "num_examples": 100}]}))
    before = snapshot(run)
    md = ok(cli(db, "report", run, "--out", str(tmp_path / "review.md"), "--accuracy", str(accuracy), "--json"))
    assert (md["format"], md["output"]) == ("md", str(tmp_path / "review.md"))
    text = (tmp_path / "review.md").read_text()
    assert md["bytes"] == len(text.encode()) and "Ship step six" in text and "ship" in text and "93" in text
    html = ok(cli(db, "report", run, "--out", str(tmp_path / "review.html"), "--json"))
    assert html["format"] == "html" and html["bytes"] > 100_000  # plotly.js inlined: it opens offline
    assert "inside" in refused(cli(db, "report", run, "--out", os.path.join(run, "review.md")))
    assert "accuracy file" in refused(cli(db, "report", run, "--out", str(tmp_path / "r2.md"), "--accuracy",
                                          str(tmp_path / "review.md")))
    assert snapshot(run) == before
