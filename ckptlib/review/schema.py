"""The review database's tables (SQLAlchemy Core), its schema version, and creating or migrating it on first use."""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 1
# version -> statements that bring a database at version-1 up to it (none yet: version 1 is the first).
MIGRATIONS: dict[int, tuple[str, ...]] = {}

metadata = sa.MetaData()

schema_version = sa.Table(
    "ckptlib_schema", metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1: one row
    sa.Column("version", sa.Integer, nullable=False),
)

# Append-only: a change is a new row that supersedes an older one; a retraction is a row of its own.
notes = sa.Table(
    "ckptlib_notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run", sa.Text, nullable=False),
    sa.Column("checkpoint", sa.Text),
    sa.Column("checkpoint_b", sa.Text),
    sa.Column("variable", sa.Text),
    sa.Column("verdict", sa.String(16)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("supersedes", sa.Integer, sa.ForeignKey("ckptlib_notes.id")),
    sa.Column("checkpoint_identity", sa.String(64)),
    sa.Column("checkpoint_b_identity", sa.String(64)),
    sa.CheckConstraint("verdict IS NULL OR verdict IN ('candidate', 'ship', 'regressed', 'broken')",
                       name="ckptlib_notes_verdict"),
    sa.Index("ckptlib_notes_run", "run"),
    sa.Index("ckptlib_notes_supersedes", "supersedes", unique=True),  # a note is replaced at most once
)

retractions = sa.Table(
    "ckptlib_retractions", metadata,
    sa.Column("note_id", sa.Integer, sa.ForeignKey("ckptlib_notes.id"), primary_key=True),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)


def ensure_schema(conn: sa.Connection) -> int:
    """Create the tables on first use, migrate an older schema; returns the version found before.

    Runs inside the caller's transaction. On PostgreSQL an advisory lock makes concurrent first uses
    wait for each other instead of racing on CREATE TABLE; SQLite's write lock does the same there.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7412093)"))  # any fixed number of our own
    inspector = sa.inspect(conn)
    if not inspector.has_table(schema_version.name):
        metadata.create_all(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION))
        return 0
    found = conn.execute(sa.select(schema_version.c.version).where(schema_version.c.id == 1)).scalar_one()
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS.get(version, ()):
            conn.execute(sa.text(statement))
    if found < SCHEMA_VERSION:
        conn.execute(schema_version.update().where(schema_version.c.id == 1).values(version=SCHEMA_VERSION))
    return found
