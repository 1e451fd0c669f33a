"""The review store against real databases (an SQLite file, a throwaway PostgreSQL) and real checkpoints."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from conftest import copy_run, snapshot

from ckptlib import errors
from ckptlib.review import schema
from ckptlib.review.store import ReviewStore
from ckptlib.review.targets import resolve_target
from ckptlib.review.types import VERDICTS, Target

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty review database outside every run folder: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'review.sqlite3'}"
    return request.getfixturevalue("fresh_pg_url")


@pytest.fixture
def store(db_url):
    with contextlib.closing(ReviewStore(db_url)) as s:
        yield s


def save(run_dir: str, value, step: int = 1) -> str:
    """A real v1 Saver checkpoint of one variable `w` = value at RUN/model.ckpt-STEP (rewritten if there)."""
    import tensorflow as tf

    os.makedirs(run_dir, exist_ok=True)
    v1, graph = tf.compat.v1, tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        w = v1.get_variable("w", initializer=tf.constant(value, tf.float32))
        sess.run(w.initializer)
        saver = v1.train.Saver(max_to_keep=None, save_relative_paths=True)
        return saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step, write_meta_graph=False)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tfb):
    """A shared run of three real checkpoints; never modified by a test."""
    run = str(tmp_path_factory.mktemp("review_runs") / "exp1")
    return run, tfb.tiny_saver_run(run, num_saves=3)


@pytest.fixture
def own_run(real_run, tmp_path):
    """A copy of real_run for a test that may (wrongly) write into it."""
    run, prefixes = real_run
    copy = copy_run(run, tmp_path / "runs")
    return copy, [os.path.join(copy, os.path.basename(p)) for p in prefixes]


def add(store, run, text="n", author="ana", checkpoint=None, variable=None, checkpoint_b=None, **kw):
    return store.add_note(Target(run, checkpoint, variable, checkpoint_b), text, author=author, **kw)


def ids(notes):
    return [n.id for n in notes]


def test_add_and_list_newest_first(store):
    first = add(store, "/r/runs/a", "  Loss plateaus after 40k.  ", now=100.0)
    second = add(store, "/r/runs/a", "second", verdict="candidate", author="bo", now=300.0, url="http://x/?run=a")
    third = add(store, "/r/runs/a", "third", now=200.0)
    tie = add(store, "/r/runs/a", "same time as second", now=300.0)
    assert first.text == "Loss plateaus after 40k." and first.author == "ana" and first.created == 100.0
    assert first.target == Target(run="/r/runs/a") and first.target.kind == "run" and first.current
    assert (first.verdict, first.retracted, first.superseded_by, first.supersedes) == (None, False, None, None)
    assert second.verdict == "candidate" and second.url == "http://x/?run=a" and store.note(second.id) == second
    assert ids(store.notes(run="/r/runs/a")) == ids(store.notes()) == [tie.id, second.id, third.id, first.id]


def test_filters(store):
    c1, c2 = "/r/runs/a/model.ckpt-1", "/r/runs/a/model.ckpt-2"
    a = add(store, "/r/runs/a", checkpoint=c1, now=1)
    a_var = add(store, "/r/runs/a", "v", checkpoint=c1, variable="k", now=2)
    a_diff = add(store, "/r/runs/a", checkpoint=c1, checkpoint_b=c2, now=3)
    deep = add(store, "/r/runs/b/deep", verdict="ship", author="bo", now=4)
    root_itself = add(store, "/r/runs", now=5)
    sibling = add(store, "/r/runs2/c", verdict="ship", now=6)  # same name prefix, another folder
    underscore = add(store, "/r/a_b/x", now=7)
    wildcard = add(store, "/r/aXb/x", now=8)  # '_' in a root must not act as LIKE's wildcard
    percent = add(store, "/r/50%/x", now=9)
    assert ids(store.notes("/r/runs")) == ids(store.notes("/r/runs/")) == [root_itself.id, deep.id, a_diff.id,
                                                                           a_var.id, a.id]
    assert ids(store.notes("/r/runs/b")) == [deep.id] and ids(store.notes("/r/a_b")) == [underscore.id]
    assert ids(store.notes("/r/50%")) == [percent.id] and len(store.notes("/")) == 9
    assert wildcard.id in ids(store.notes("/r"))
    assert ids(store.notes(run="/r/runs")) == [root_itself.id]
    assert ids(store.notes(checkpoint=c1)) == [a_diff.id, a_var.id, a.id]
    assert ids(store.notes(checkpoint_b=c2)) == [a_diff.id] and ids(store.notes(variable="k")) == [a_var.id]
    assert ids(store.notes(verdict="ship")) == [sibling.id, deep.id]
    assert ids(store.notes("/r/runs", verdict="ship")) == [deep.id]
    assert ids(store.notes(author="bo")) == [deep.id] and store.notes(author="nobody") == ()
    with pytest.raises(errors.BadNote, match="great"):
        store.notes(verdict="great")


def test_under_is_case_sensitive(store):
    """Run folders are case-sensitive paths: '/r/Runs' is not '/r/runs' (SQLite's LIKE ignores ASCII case)."""
    lower = add(store, "/r/runs/exp", now=1)
    upper = add(store, "/r/Runs/exp", now=2)
    assert ids(store.notes("/r/runs")) == [lower.id]
    assert ids(store.notes("/r/Runs")) == [upper.id]


def test_supersede(store):
    target = Target(run="/r/runs/a", checkpoint="/r/runs/a/model.ckpt-1")
    old = store.add_note(target, "looks fine", verdict="candidate", author="ana", now=1)
    new = store.add_note(target, "actually broken", verdict="broken", author="bo", supersedes=old.id, now=2)
    assert new.supersedes == old.id and new.current
    assert ids(store.notes(run="/r/runs/a")) == [new.id]
    both = store.notes(run="/r/runs/a", include_superseded=True)
    assert ids(both) == [new.id, old.id] and both[1].superseded_by == new.id and not both[1].current
    assert store.note(old.id).superseded_by == new.id
    with pytest.raises(errors.BadNote, match="already replaced"):
        store.add_note(target, "a third opinion", author="cy", supersedes=old.id)
    with pytest.raises(errors.BadNote, match="another target"):
        store.add_note(Target(run="/r/runs/a"), "elsewhere", author="cy", supersedes=new.id)
    with pytest.raises(errors.BadNote, match="no note 999999"):
        store.add_note(target, "ghost", author="cy", supersedes=999999)
    assert len(store.notes(include_superseded=True)) == 2  # nothing was stored by the refused ones


def test_retract(store):
    note = add(store, "/r/runs/a", "wrong run", now=1)
    other = add(store, "/r/runs/a", "keep", now=2)
    gone = store.retract(note.id, author="bo")
    assert gone.retracted and not gone.current and gone.text == "wrong run"
    assert store.retract(note.id, author="cy").retracted  # twice: still one retraction, no error
    listed = store.notes(run="/r/runs/a")
    assert ids(listed) == [other.id, note.id] and [n.retracted for n in listed] == [False, True]
    with pytest.raises(errors.BadNote, match="no note"):
        store.retract(999999, author="bo")


def test_verdict_validation(store):
    for verdict in VERDICTS:
        assert add(store, "/r/runs/a", "", verdict=verdict).verdict == verdict  # a verdict alone is a note
    with pytest.raises(errors.BadNote, match="'great' is not one of candidate, ship, regressed, broken"):
        add(store, "/r/runs/a", "nice", verdict="great")
    with pytest.raises(errors.BadNote, match="text or a verdict"):
        add(store, "/r/runs/a", "   ")
    with pytest.raises(errors.BadNote, match="author"):
        add(store, "/r/runs/a", "who?", author=" ")
    with pytest.raises(errors.BadNote, match="at most"):
        add(store, "/r/runs/a", "x" * 100_001)
    assert len(store.notes()) == len(VERDICTS)


def test_verdicts_of_a_run(store):
    run, c1, c2, c3 = "/r/runs/a", "/r/runs/a/model.ckpt-1", "/r/runs/a/model.ckpt-2", "/r/runs/a/model.ckpt-3"
    add(store, run, checkpoint=c1, verdict="candidate", now=1)
    ship = add(store, run, checkpoint=c1, verdict="ship", now=2)
    broken = add(store, run, checkpoint=c2, verdict="broken", now=3)
    store.retract(add(store, run, checkpoint=c2, verdict="regressed", now=4).id, author="ana")
    replaced = add(store, run, checkpoint=c3, verdict="candidate", now=5)
    add(store, run, "no verdict after all", checkpoint=c3, supersedes=replaced.id, now=6)
    add(store, run, checkpoint=c1, variable="w", verdict="broken", now=7)  # a variable's, not the checkpoint's
    add(store, run, checkpoint=c1, checkpoint_b=c2, verdict="regressed", now=8)  # a diff's
    add(store, run, verdict="broken", now=9)  # the run's
    add(store, "/r/runs/b", checkpoint="/r/runs/b/model.ckpt-1", verdict="ship", now=10)
    assert store.verdicts(run) == {c1: ship, c2: broken}
    assert store.verdicts("/r/runs/none") == {}


def test_checkpoint_rewritten_after_the_note(store, tmp_path, tfb):
    run = str(tmp_path / "runs" / "exp")
    prefix = save(run, [1.0, 2.0])
    note = store.add_note(resolve_target(prefix), "w looks sane", author="ana")
    on_var = store.add_note(resolve_target(prefix, variable="w"), "w", author="ana")
    with open(prefix + ".index", "rb") as f:
        assert note.checkpoint_identity == hashlib.sha256(f.read()).hexdigest()
    assert not any(n.checkpoint_changed or n.checkpoint_missing for n in store.notes(run=run))
    assert save(run, [5.0, 6.0]) == prefix  # same prefix, other values: a rewritten checkpoint
    listed = {n.id: n for n in store.notes(run=run)}
    assert listed[note.id].checkpoint_changed and listed[on_var.id].checkpoint_changed
    assert not listed[note.id].checkpoint_missing and store.note(note.id).checkpoint_changed


def test_checkpoint_deleted_after_the_note(store, tmp_path, tfb):
    run = str(tmp_path / "runs" / "exp")
    keep, doomed = save(run, [1.0], step=1), save(run, [2.0], step=2)
    on_doomed = store.add_note(resolve_target(doomed), "best so far", verdict="candidate", author="ana")
    on_keep = store.add_note(resolve_target(keep), "baseline", author="ana")
    for path in glob.glob(doomed + ".*"):
        os.remove(path)
    listed = {n.id: n for n in store.notes(run=run)}  # still listed on the run
    assert set(listed) == {on_doomed.id, on_keep.id} and not listed[on_keep.id].checkpoint_missing
    assert listed[on_doomed.id].checkpoint_missing and not listed[on_doomed.id].checkpoint_changed
    assert ids(store.notes(str(tmp_path / "runs"))) == [on_keep.id, on_doomed.id]


WRITER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from ckptlib.errors import CkptError
from ckptlib.review.store import ReviewStore
from ckptlib.review.types import Target
url, run, worker, go = sys.argv[2:6]
count, replaces = int(sys.argv[6]), sys.argv[7]
store, deadline, done = ReviewStore(url), time.time() + 60, []
open(f"{go}.ready{worker}", "w").close()
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.001)
for i in range(count):
    try:
        done.append(store.add_note(Target(run), f"w{worker} n{i}", author="w" + worker,
                                   supersedes=int(replaces) if replaces else None).id)
    except CkptError as exc:
        done.append(type(exc).__name__)
print(json.dumps(done))
"""


def run_writers(url, tmp_path, workers, count, run, replaces=None) -> list:
    """WRITER in `workers` processes started together (each imported and ready first); what each stored."""
    go = str(tmp_path / "go")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, REPO, url, run, str(w), go, str(count),
                               str(replaces or "")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    deadline = time.time() + 60
    while not all(os.path.exists(f"{go}.ready{w}") for w in range(workers)) and time.time() < deadline:
        time.sleep(0.01)
    open(go, "w").close()
    got = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        got.extend(json.loads(out))
    return got


def test_many_concurrent_writers(db_url, tmp_path):
    """8 processes add 25 notes each at once to a database none of them has created yet: none is lost."""
    workers, count, run = 8, 25, "/r/runs/busy"
    got = run_writers(db_url, tmp_path, workers, count, run)
    assert len(got) == workers * count == len(set(got)) and all(isinstance(i, int) for i in got)
    with contextlib.closing(ReviewStore(db_url)) as store:
        listed = store.notes(run=run)
    assert sorted(ids(listed)) == sorted(got)
    assert {n.text for n in listed} == {f"w{w} n{i}" for w in range(workers) for i in range(count)}


def test_concurrent_replacements_of_one_note(db_url, tmp_path):
    """Racing replacements of one note: one wins, each other one is told BadNote (not 'database unavailable')."""
    with contextlib.closing(ReviewStore(db_url)) as store:
        old = add(store, "/r/runs/busy", "old")
    got = run_writers(db_url, tmp_path, 8, 1, "/r/runs/busy", replaces=old.id)
    assert sum(isinstance(i, int) for i in got) == 1 and [i for i in got if isinstance(i, str)] == ["BadNote"] * 7, got


@contextlib.contextmanager
def raw(url):
    """A plain SQLAlchemy connection (one transaction) to the same database, to look behind the store."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def test_schema_created_on_first_use(db_url, tmp_path):
    with contextlib.closing(ReviewStore(db_url)) as store:
        assert not (tmp_path / "db").exists()  # opening a store writes nothing until it is used
        store.check()
    with raw(db_url) as conn:
        tables = set(sa.inspect(conn).get_table_names())
        rows = conn.execute(sa.select(schema.schema_version)).all()
    assert {"ckptlib_schema", "ckptlib_notes", "ckptlib_retractions"} <= tables
    assert [tuple(r) for r in rows] == [(1, schema.SCHEMA_VERSION)]


def test_newer_schema_is_refused(db_url):
    with contextlib.closing(ReviewStore(db_url)) as first:
        add(first, "/r/runs/a", "written by this release")
    newer = schema.SCHEMA_VERSION + 1
    with raw(db_url) as conn:
        conn.execute(schema.schema_version.update().values(version=newer))
    with contextlib.closing(ReviewStore(db_url)) as later:
        for attempt in (later.check, later.notes, lambda: add(later, "/r/runs/a", "x")):
            with pytest.raises(errors.ReviewUnavailable, match=f"version {newer}, written by a newer ckptlib"):
                attempt()
    with raw(db_url) as conn:  # left as it was: neither downgraded nor written to
        assert conn.execute(sa.select(schema.schema_version.c.version)).scalar_one() == newer
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.notes)).scalar_one() == 1


@pytest.mark.parametrize("where", ["nothing listening", "no such database"])
def test_unreachable_database_hides_the_password(request, where):
    url = "postgresql+psycopg://user:s3cret@127.0.0.1:1/x"
    if where == "no such database":
        url = sa.make_url(request.getfixturevalue("postgres_url")).set(password="s3cret", database="no_such_db")
        url = url.render_as_string(hide_password=False)
    store = ReviewStore(url)
    for attempt in (store.check, store.notes, lambda: add(store, "/r/runs/a", "x")):
        with pytest.raises(errors.ReviewUnavailable) as caught:
            attempt()
        message = str(caught.value)
        assert "s3cret" not in message and "\n" not in message and "***" in message, message
    assert "s3cret" not in store.display_url and caught.value.__cause__ is None


@pytest.mark.parametrize("how", ["chmod", "uri"])
def test_read_only_sqlite(tmp_path, monkeypatch, how):
    folder, path = tmp_path / "db", tmp_path / "db" / "review.sqlite3"
    with contextlib.closing(ReviewStore(f"sqlite:///{path}")) as writer:
        kept = add(writer, "/r/runs/a", "kept")
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("running as root: file modes do not stop root from writing (the 'uri' case covers it)")
        os.chmod(path, 0o444)
        os.chmod(folder, 0o555)
    url = f"sqlite:///{path}" if how == "chmod" else f"sqlite:///file:{path}?mode=ro&uri=true"
    monkeypatch.chdir(tmp_path)
    before = snapshot(folder)["review.sqlite3"]  # (SQLite may add its -wal/-shm beside it: not a write)
    store = ReviewStore(url)
    try:
        with pytest.raises(errors.ReviewUnavailable, match="read-?only") as caught:
            add(store, "/r/runs/a", "refused")
        assert "\n" not in str(caught.value) and snapshot(folder)["review.sqlite3"] == before
        assert ids(store.notes(run="/r/runs/a")) == [kept.id]  # still readable: e.g. a published copy
    finally:
        store.close()
        os.chmod(folder, 0o755)
        os.chmod(path, 0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]  # 'file:' is URI syntax, not a folder to create


def test_sqlite_inside_the_run_is_refused(own_run, monkeypatch):
    run, prefixes = own_run
    before = snapshot(run)
    for url in (f"sqlite:///{run}/review.sqlite3", f"sqlite:///{run}/sub/review.sqlite3",
                f"sqlite:///file:{run}/review.sqlite3?uri=true"):  # SQLite's URI syntax for the same file
        with pytest.raises(errors.UnsafeDestination, match="inside the run folder"):
            ReviewStore(url).add_note(resolve_target(prefixes[-1]), "x", author="ana")
    monkeypatch.chdir(run)
    with pytest.raises(errors.UnsafeDestination):
        ReviewStore("sqlite:///review.sqlite3").add_note(resolve_target(run), "x", author="ana")
    assert snapshot(run) == before
    with contextlib.closing(ReviewStore(f"sqlite:///{run}-notes/review.sqlite3")) as beside:  # a sibling folder
        assert beside.add_note(resolve_target(run), "fine here", author="ana").run == run


def test_sqlite_inside_the_run_through_a_symlink_is_refused(own_run, tmp_path):
    run, prefixes = own_run
    link = tmp_path / "link"
    link.symlink_to(os.path.dirname(run))
    before = snapshot(run)
    with pytest.raises(errors.UnsafeDestination):
        ReviewStore(f"sqlite:///{link / os.path.basename(run) / 'review.sqlite3'}").add_note(
            resolve_target(prefixes[-1]), "x", author="ana")
    assert snapshot(run) == before


def test_reading_with_sqlite_inside_the_run_writes_nothing_there(own_run):
    """Listing a run's notes with --db inside that run must not create the database there."""
    run, _ = own_run
    before = snapshot(run)
    with contextlib.closing(ReviewStore(f"sqlite:///{run}/review.sqlite3")) as store, \
            contextlib.suppress(errors.UnsafeDestination):  # refusing is fine; writing there is not
        store.notes(run=run)
    assert snapshot(run) == before


def test_checkpoint_folder_is_byte_identical_after_notes(store, real_run):
    run, prefixes = real_run
    before = snapshot(run)
    targets = [resolve_target(run), resolve_target(prefixes[-1]), resolve_target(prefixes[-1], variable="w"),
               resolve_target(prefixes[0], checkpoint_b=prefixes[-1])]
    made = [store.add_note(t, f"on {t.kind}", verdict="candidate" if t.kind == "checkpoint" else None,
                           author="ana") for t in targets]
    store.add_note(targets[1], "replaced", verdict="ship", author="bo", supersedes=made[1].id)
    store.retract(made[0].id, author="bo")
    listed = store.notes(run=run, include_superseded=True)
    assert len(listed) == 5 and not any(n.checkpoint_changed or n.checkpoint_missing for n in listed)
    assert store.verdicts(run)[prefixes[-1]].verdict == "ship"
    assert snapshot(run) == before
