"""The review store: append-only notes and verdicts in SQLite (default) or PostgreSQL, through SQLAlchemy 2.

    >>> store = ReviewStore("sqlite:////tmp/review-example.sqlite3")
    >>> note = store.add_note(Target(run="/runs/exp1"), "Loss plateaus after 40k.", verdict=None, author="ana")
    >>> [n.text for n in store.notes(run="/runs/exp1")][:1]
    ['Loss plateaus after 40k.']
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.parse
from collections.abc import Iterator

import sqlalchemy as sa

from ckptlib import errors
from ckptlib.formats.identity import checkpoint_identity
from ckptlib.review import schema
from ckptlib.review.location import database_url
from ckptlib.review.rows import NoteRows, select_notes, target_of
from ckptlib.review.types import VERDICTS, Note, Target

MAX_TEXT = 100_000  # characters of Markdown in one note


class ReviewStore:
    """Notes on runs, checkpoints, diffs and variables. Every failure of the database is ReviewUnavailable."""

    def __init__(self, url: str | None = None):
        self.url = database_url(url)
        try:
            self._url = sa.make_url(self.url)
        except sa.exc.ArgumentError:
            raise errors.ReviewUnavailable(f"Review database '{self.url}': not a database URL "
                                           "(e.g. sqlite:///notes.db or postgresql+psycopg://host/db).") from None
        self._engine: sa.Engine | None = None
        self._ready = False

    @property
    def display_url(self) -> str:
        """The URL with any password hidden: safe for messages and banners."""
        return self._url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> str | None:
        """The database file of an SQLite URL (None for other databases or in-memory SQLite)."""
        database = self._url.database
        if self._url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
            return None
        if database.startswith("file:"):  # an SQLite URI (sqlite:///file:/path/db?mode=ro&uri=true)
            database = database[len("file:"):].split("?", 1)[0]
            if database in ("", ":memory:") or "mode=memory" in str(self._url):
                return None
        return os.path.abspath(os.path.expanduser(database))

    # --- connections -----------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """An SQLite file this process may not write (or a mode=ro URL): notes can be read, not added."""
        path = self.sqlite_path
        if path is None:
            return False
        if "mode=ro" in str(self._url):
            return True
        return os.path.exists(path) and not (os.access(path, os.W_OK) and os.access(os.path.dirname(path), os.W_OK))

    def _make_engine(self) -> sa.Engine:
        backend = self._url.get_backend_name()
        if backend == "sqlite":
            url = self._url
            if self.read_only and "mode=ro" not in str(self._url):
                # Read-only SQLite still needs the -shm file of a WAL database: where the folder is writable
                # mode=ro creates it; where it is not, only an immutable open can read (the -wal ignored).
                writable_folder = os.access(os.path.dirname(self.sqlite_path), os.W_OK)
                mode = "mode=ro" if writable_folder else "immutable=1"
                url = sa.make_url(f"sqlite:///file:{urllib.parse.quote(self.sqlite_path)}?{mode}&uri=true")
            elif self.sqlite_path and not self.read_only:
                os.makedirs(os.path.dirname(self.sqlite_path), exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA busy_timeout = 30000")
                cursor.execute("PRAGMA foreign_keys = ON")
                with contextlib.suppress(Exception):  # a read-only file keeps its journal mode
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.close()

            @sa.event.listens_for(engine, "begin")
            def _on_begin(conn):
                # Writers take the write lock at BEGIN, so concurrent writers queue (busy_timeout)
                # instead of failing when a read lock cannot be upgraded.
                write = conn.get_execution_options().get("ckptlib_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        connect_args = {"connect_timeout": 10} if backend == "postgresql" else {}
        return sa.create_engine(self._url, pool_pre_ping=True, connect_args=connect_args)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[sa.Connection]:
        if write and self.read_only:
            raise errors.ReviewUnavailable(f"Review database {self.display_url} is read-only: notes can be read, "
                                           "not added.")
        try:
            if self._engine is None:
                self._engine = self._make_engine()
            if not self._ready:
                with self._engine.connect().execution_options(ckptlib_write=write) as conn, conn.begin():
                    current = self._has_current_schema(conn)
                if not current:  # first use, or an older schema: create or migrate under the write lock
                    with self._engine.connect().execution_options(ckptlib_write=True) as conn, conn.begin():
                        if not self._has_current_schema(conn):
                            schema.ensure_schema(conn)
                self._ready = True
            with self._engine.connect().execution_options(ckptlib_write=write) as conn, conn.begin():
                yield conn
        except errors.CkptError:
            raise
        except sa.exc.IntegrityError:  # a concurrent writer got there first (see add_note and retract)
            raise _Conflict() from None
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise errors.ReviewUnavailable(f"Review database {self.display_url}: {_reason(exc)}.") from None
        except ModuleNotFoundError as exc:  # e.g. postgresql+psycopg without psycopg installed
            raise errors.ReviewUnavailable(f"Review database {self.display_url}: driver {exc.name} is not "
                                           "installed.") from None

    def _has_current_schema(self, conn: sa.Connection) -> bool:
        if not sa.inspect(conn).has_table(schema.schema_version.name):
            return False
        version = conn.execute(sa.select(schema.schema_version.c.version)).scalar()
        if version is not None and version > schema.SCHEMA_VERSION:
            raise errors.ReviewUnavailable(
                f"Review database {self.display_url}: its schema is version {version}, written by a newer "
                f"ckptlib (this one reads up to {schema.SCHEMA_VERSION}).")
        return version == schema.SCHEMA_VERSION

    def _not_created_yet(self) -> bool:
        """An SQLite file that does not exist yet: reading it finds no notes, and must not create it."""
        path = self.sqlite_path
        if path is None or os.path.exists(path):
            return False
        parent = os.path.dirname(path)  # a file where the folder should be: broken, not merely new
        return not os.path.exists(parent) or os.path.isdir(parent)

    def check(self) -> None:
        """Raise ReviewUnavailable (saying why) unless the database can be opened and read."""
        if self._not_created_yet():
            folder = os.path.dirname(self.sqlite_path)
            with contextlib.suppress(OSError):
                if any(name.endswith(".index") or name == "checkpoint" for name in os.listdir(folder)):
                    raise errors.ReviewUnavailable(
                        f"Review database {self.display_url} would be created in {folder}, a checkpoint folder; "
                        "ckptlib never writes there (choose another --db).")
        with self._transaction(write=False) as conn:
            conn.execute(sa.select(sa.func.count()).select_from(schema.notes))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # --- writing ---------------------------------------------------------------------------------
    def add_note(self, target: Target, text: str, *, verdict: str | None = None, author: str,
                 url: str | None = None, supersedes: int | None = None, now: float | None = None) -> Note:
        """Store a new note (never edits an old one); with `supersedes`, it replaces that note."""
        text = (text or "").strip()
        author = (author or "").strip()
        if verdict is not None and verdict not in VERDICTS:
            raise errors.BadNote(f"Verdict '{verdict}' is not one of {', '.join(VERDICTS)}.")
        if not text and verdict is None:
            raise errors.BadNote("A note needs a text or a verdict.")
        if len(text) > MAX_TEXT:
            raise errors.BadNote(f"The note is {len(text):,} characters long; at most {MAX_TEXT:,} are kept.")
        if not author:
            raise errors.BadNote("A note needs an author.")
        self._refuse_inside(target.run)
        row = {
            "run": target.run, "checkpoint": target.checkpoint, "checkpoint_b": target.checkpoint_b,
            "variable": target.variable, "verdict": verdict, "text": text, "author": author,
            "created": time.time() if now is None else now, "url": url, "supersedes": supersedes,
            "checkpoint_identity": checkpoint_identity(target.checkpoint) if target.checkpoint else None,
            "checkpoint_b_identity": checkpoint_identity(target.checkpoint_b) if target.checkpoint_b else None,
        }
        try:
            with self._transaction(write=True) as conn:
                if supersedes is not None:
                    self._check_supersedable(conn, supersedes, target)
                note_id = conn.execute(schema.notes.insert().values(**row).returning(schema.notes.c.id)).scalar_one()
        except _Conflict:  # the unique index on `supersedes`: another replacement committed first
            raise errors.BadNote(f"Note {supersedes} was already replaced by a note written at the same time.") from None
        return self.note(note_id)

    def retract(self, note_id: int, author: str, now: float | None = None) -> Note:
        """Mark a note retracted (it is kept, and shown as retracted)."""
        if not (author or "").strip():
            raise errors.BadNote("A retraction needs an author.")
        try:
            with self._transaction(write=True) as conn:
                self._fetch(conn, note_id)
                done = conn.execute(sa.select(schema.retractions.c.note_id)
                                    .where(schema.retractions.c.note_id == note_id)).first()
                if done is None:
                    conn.execute(schema.retractions.insert().values(
                        note_id=note_id, author=author, created=time.time() if now is None else now))
        except _Conflict:  # retracted by someone else at the same moment: retracted all the same
            pass
        return self.note(note_id)

    def _check_supersedable(self, conn: sa.Connection, note_id: int, target: Target) -> None:
        old = self._fetch(conn, note_id)
        if target_of(old) != target:
            raise errors.BadNote(f"Note {note_id} is about another target; a replacement keeps its target.")
        newer = conn.execute(sa.select(schema.notes.c.id).where(schema.notes.c.supersedes == note_id)).first()
        if newer is not None:
            raise errors.BadNote(f"Note {note_id} was already replaced by note {newer[0]}.")

    def _refuse_inside(self, run: str) -> None:
        db = self.sqlite_path
        if db and "://" not in run:
            db, run_dir = os.path.realpath(db), os.path.realpath(run)  # a symlink must not sneak it in
            if os.path.commonpath([db, run_dir]) == run_dir:
                raise errors.UnsafeDestination(f"Review database {db} lies inside the run folder {run_dir}; "
                                               "ckptlib never writes inside a checkpoint folder (use --db).")

    # --- reading ---------------------------------------------------------------------------------
    def note(self, note_id: int) -> Note:
        if self._not_created_yet():
            raise errors.BadNote(f"There is no note {note_id} in review database {self.display_url}.")
        with self._transaction(write=False) as conn:
            return NoteRows().note(self._fetch(conn, note_id, full=True))

    def notes(self, under: str | None = None, *, run: str | None = None, checkpoint: str | None = None,
              variable: str | None = None, checkpoint_b: str | None = None, verdict: str | None = None,
              author: str | None = None, include_superseded: bool = False) -> tuple[Note, ...]:
        """Notes newest first: under a root (every run below it), of one run, checkpoint, pair or variable.

        Replaced notes are left out unless `include_superseded`; retracted ones stay, marked.
        """
        if verdict is not None and verdict not in VERDICTS:
            raise errors.BadNote(f"Verdict '{verdict}' is not one of {', '.join(VERDICTS)}.")
        if self._not_created_yet():
            return ()
        n = schema.notes
        query = select_notes()
        if under is not None:
            root = under.rstrip("/") or "/"
            below = root if root.endswith("/") else root + "/"
            # substr, not LIKE: SQLite's LIKE ignores case, and run paths are case-sensitive.
            query = query.where(sa.or_(n.c.run == root, sa.func.substr(n.c.run, 1, len(below)) == below))
        for column, value in ((n.c.run, run), (n.c.checkpoint, checkpoint), (n.c.variable, variable),
                              (n.c.checkpoint_b, checkpoint_b), (n.c.verdict, verdict), (n.c.author, author)):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(n.c.created.desc(), n.c.id.desc())
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).mappings().all()
        made = NoteRows()
        found = tuple(made.note(row) for row in rows)
        return found if include_superseded else tuple(note for note in found if note.superseded_by is None)

    def verdicts(self, run: str) -> dict[str, Note]:
        """The newest standing verdict of each checkpoint of a run: {prefix: note}."""
        latest: dict[str, Note] = {}
        for note in self.notes(run=run):
            if note.verdict and note.current and note.checkpoint and note.target.checkpoint_b is None \
                    and note.variable is None and note.checkpoint not in latest:
                latest[note.checkpoint] = note
        return latest

    def _fetch(self, conn: sa.Connection, note_id: int, full: bool = False):
        query = select_notes() if full else sa.select(schema.notes)
        row = conn.execute(query.where(schema.notes.c.id == note_id)).mappings().first()
        if row is None:
            raise errors.BadNote(f"There is no note {note_id} in review database {self.display_url}.")
        return row


class _Conflict(errors.CkptError):
    """A write lost a race on a unique key; the caller turns it into the right answer."""


def _reason(exc: BaseException) -> str:
    """The driver's own first line (no SQL, no parameters, no traceback), for a one-line message."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    line = text[0] if text else type(orig).__name__
    return line.rstrip(".")
