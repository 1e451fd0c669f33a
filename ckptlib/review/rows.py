"""Reading notes back: the query with each note's replacement and retraction, and rows turned into Notes."""

from __future__ import annotations

import sqlalchemy as sa

from ckptlib.formats.identity import checkpoint_identity
from ckptlib.review import schema
from ckptlib.review.types import Note, Target


def select_notes() -> sa.Select:
    n, r = schema.notes, schema.retractions
    newer = sa.alias(schema.notes, "newer")
    superseded_by = sa.select(sa.func.min(newer.c.id)).where(newer.c.supersedes == n.c.id).scalar_subquery()
    retracted = sa.exists().where(r.c.note_id == n.c.id)
    return sa.select(n, superseded_by.label("superseded_by"), retracted.label("retracted"))


def target_of(row) -> Target:
    return Target(run=row["run"], checkpoint=row["checkpoint"], variable=row["variable"],
                  checkpoint_b=row["checkpoint_b"])


class NoteRows:
    """Rows → Notes, hashing each checkpoint's index once per listing."""

    def __init__(self):
        self._identities: dict[str, str | None] = {}

    def _identity(self, prefix: str) -> str | None:
        if prefix not in self._identities:
            self._identities[prefix] = checkpoint_identity(prefix)
        return self._identities[prefix]

    def note(self, row) -> Note:
        changed = missing = False
        for prefix, stored in ((row["checkpoint"], row["checkpoint_identity"]),
                               (row["checkpoint_b"], row["checkpoint_b_identity"])):
            if prefix:
                now = self._identity(prefix)
                missing |= now is None
                changed |= now is not None and stored is not None and now != stored
        return Note(id=row["id"], target=target_of(row), verdict=row["verdict"], text=row["text"],
                    author=row["author"], created=row["created"], url=row["url"], supersedes=row["supersedes"],
                    superseded_by=row.get("superseded_by"), retracted=bool(row.get("retracted", False)),
                    checkpoint_identity=row["checkpoint_identity"], checkpoint_changed=changed,
                    checkpoint_missing=missing)
