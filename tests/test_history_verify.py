"""`history --verify`: every tensor's crc32c read and checked, so a flipped byte in a data shard shows on History."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import copy_run, snapshot

from ckptlib.runs.history import load_history
from ckptlib.runs.verify import verify_history

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flip_a_byte_of_the_latest(run: str) -> str:
    latest = load_history(run).latest
    shard = latest.prefix + ".data-00000-of-00001"
    with open(shard, "r+b") as handle:
        handle.seek(os.path.getsize(shard) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    return latest.prefix


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ckptlib", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_a_flipped_byte_is_found_only_by_verify(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    damaged = _flip_a_byte_of_the_latest(run)
    plain = load_history(run)
    assert plain.latest.prefix == damaged and {e.checksums for e in plain.checkpoints} == {"unverified"}
    checked = verify_history(plain)
    by_prefix = {e.prefix: e for e in checked.checkpoints}
    assert by_prefix[damaged].status == "damaged" and "crc32c" in by_prefix[damaged].problem
    assert by_prefix[damaged].has_problem
    assert {e.checksums for e in checked.checkpoints if e.prefix != damaged and e.complete} == {"ok"}
    assert checked.latest.prefix != damaged and checked.latest.step < by_prefix[damaged].step


def test_cli_history_verify(saver_rel, tmp_path):
    run = copy_run(saver_rel[0], tmp_path)
    damaged = _flip_a_byte_of_the_latest(run)
    before = snapshot(run)
    unverified = cli("history", run)
    assert unverified.returncode == 0 and "checksums unverified" in unverified.stdout
    proc = cli("history", run, "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {c["prefix"]: c for c in json.loads(proc.stdout)["checkpoints"]}
    assert (rows[damaged]["status"], rows[damaged]["checksums"]) == ("damaged", "damaged")
    assert "crc32c" in rows[damaged]["problem"]
    assert all(r["checksums"] == "ok" for p, r in rows.items() if p != damaged and r["complete"])
    assert "damaged" in cli("history", run, "--verify").stdout
    assert snapshot(run) == before  # verifying only reads


def test_kept_on_purpose_is_not_a_problem(manager_preserved):
    history = load_history(manager_preserved[0] if isinstance(manager_preserved, tuple) else manager_preserved)
    preserved = [e for e in history.checkpoints if e.status == "preserved"]
    assert preserved and not any(e.has_problem for e in preserved)


def test_history_page_verifies_on_request_and_counts_only_real_problems(saver_rel, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    run = copy_run(saver_rel[0], tmp_path / "root", "run")
    damaged = _flip_a_byte_of_the_latest(run)
    monkeypatch.setenv("CKPTLIB_ROOT", str(tmp_path / "root"))
    at = AppTest.from_file(os.path.join(REPO, "dashboard.py"), default_timeout=60)
    at.query_params["run"] = "run"
    at.switch_page("pages/history.py")
    at.run()
    assert not at.exception
    assert any("Checksums unverified" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert "damaged" not in set(table["status"])
    at.toggle(key="verify").set_value(True).run()
    assert not at.exception and at.query_params["verify"] in ("1", ["1"])
    table = at.dataframe[0].value
    row = table[table["checkpoint"] == os.path.basename(damaged)].iloc[0]
    assert row["status"] == "damaged"
    assert any("damaged" in w.value for w in at.warning)
    assert any(e.value.startswith("Checksums verified: 1 of ") and os.path.basename(damaged) in e.value
               for e in at.error)  # the check says what it found, not only the table
    assert row["crc32c"] == "damaged" and set(table["crc32c"]) <= {"ok", "damaged", "—"}
    problems = next(m for m in at.metric if m.label == "With problems")
    assert int(problems.value) == sum(1 for s in table["status"] if s in ("missing", "incomplete", "damaged", "orphan"))


def test_a_verified_healthy_run_says_so(saver_rel, tmp_path, monkeypatch):
    from page_links import open_page

    copy_run(saver_rel[0], tmp_path / "root", "run")
    monkeypatch.setenv("CKPTLIB_ROOT", str(tmp_path / "root"))
    at = open_page("history", str(tmp_path / "root"), {"run": "run", "verify": "1"})
    assert not at.exception and not at.error
    complete = sum(1 for e in load_history(str(tmp_path / "root" / "run")).checkpoints if e.complete)
    assert [s.value for s in at.success] == [f"Checksums verified: every tensor of the {complete} complete "
                                             "checkpoint(s) matches its stored crc32c."]
    assert set(at.dataframe[0].value["crc32c"]) == {"ok"}
