"""The embedded catalog: fatcat's editing model in one SQLite file.

Why: the pipeline must be runnable end to end without a fatcat server, and
its import must behave as it would against fatcat: edits are new revisions
collected in editgroups, an entity changes only when its editgroup is
accepted, an accepted editgroup cannot be edited again, and one editgroup
holds at most one edit per ident (fatcat's `file_edit_editgroup_id_ident_id_key`).

Tables (`pipeline.catalog.sqlite_schema`):
- `file_ident`: one row per entity: ident, state, current revision (NULL when
  the export had none), sha1 (indexed for lookup) and the entity's current
  body (every export key except ident, revision and state);
- `file_rev`: revisions created by edits (body as above);
- `editgroup`, `changelog` (an editgroup is accepted iff it has a changelog
  row, as in fatcat), `file_edit` (UNIQUE (editgroup_id, ident)).

Each API call is one transaction, so a process killed at any point leaves
the catalog as it was after the last completed call. The importer's own path
is `commit_editgroups`: several editgroups, each created, given its edits and
accepted, all in one transaction, so a killed import leaves whole accepted
editgroups or nothing (the transaction is the journal), and
`lookup_sha1_many`: one query per batch of records instead of one per record.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.catalog.base import (
    DUPLICATE_EDIT_MESSAGE,
    BadRequest,
    Catalog,
    ConstraintViolation,
    EditgroupAlreadyAccepted,
    NotFound,
    new_fatcat_id,
)
from pipeline.catalog.integrity import recorded_identity
from pipeline.catalog.sqlite_commit import check_one_edit_per_ident, write_editgroups
from pipeline.catalog.sqlite_schema import (
    INDEXES,
    SCHEMA,
    body_of,
    from_json,
    lock_path_of,
    new_uuids,
    rows_in,
    sha1_of,
    timestamp,
    to_json,
)

PAGE_SIZE = 16384  # bytes per page of a catalog file this class creates


class SqliteCatalog(Catalog):
    """An embedded catalog in one SQLite file (created on first open)."""

    atomic_editgroups = True  # `commit_editgroups`: one SQLite transaction
    # one writer at a time (SQLite), and its lookups are already one query per batch
    parallel_streams = False

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = os.path.abspath(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (see _tx); the
        # connection may be handed to another thread (the test stand-in server
        # serialises calls with its own lock).
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # a new catalog's pages are 16 KiB (SQLite's default is 4): an entity row is about
        # 0.5 KB and grows when filled, and an import rewrites rows all over the table, so
        # bigger pages mean fewer page splits and WAL frames per edit (bench/: the import
        # ~6% faster). Only a file being created takes it; an existing catalog keeps its own.
        self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a killed process (what resuming relies on) without
        # an fsync per call; a power cut may lose the last commits, never consistency, and
        # a lost edit is simply redone by the next run (its entity is still incomplete).
        self.db.execute("PRAGMA synchronous=NORMAL")
        # an import touches random pages (its entities' rows, keyed by ident): a 32 MiB page
        # cache and a checkpoint every 10,000 pages of WAL (160 MB at 16 KiB pages) instead of
        # 1,000 write each hot page back fewer times
        self.db.execute("PRAGMA cache_size=-32768")
        self.db.execute("PRAGMA wal_autocheckpoint=10000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA + INDEXES)

    def close(self) -> None:
        self.db.close()

    def lock_path(self) -> str | None:
        """`<catalog>.lock`, held by an import and while the catalog is loaded from its seed."""
        return lock_path_of(self.name)

    def identity(self) -> str | None:
        """The `catalog_id` given when the file was built (`pipeline.catalog.integrity`)."""
        return recorded_identity(self.db)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def _no_foreign_key_checks(self) -> Iterator[None]:
        """SQLite's foreign key checks off for one transaction of `commit_editgroups`, whose
        rows meet them by construction: each edit names an editgroup and a revision written
        just before it in the same transaction and an ident found in the catalog first (else
        `NotFound`, nothing written). Its three lookups per edit were 5% of the import's time;
        every other call keeps the checks (`PRAGMA foreign_keys` only changes outside a
        transaction, hence around it)."""
        self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    # -- reading ------------------------------------------------------------
    @staticmethod
    def _entity(row: tuple) -> dict[str, Any]:
        ident, state, revision, body = row
        entity = from_json(body)
        entity["ident"] = ident
        if state is not None:
            entity["state"] = state
        if revision is not None:
            entity["revision"] = revision
        return entity

    def lookup_sha1(self, sha1: str) -> dict[str, Any] | None:
        """The active entity with this sha1 and the lowest ident (docs/delivery.md)."""
        row = self.db.execute(
            "SELECT ident, state, revision, body FROM file_ident "
            "WHERE sha1 = ? AND active = 1 ORDER BY ident LIMIT 1",
            (sha1.lower(),),
        ).fetchone()
        return self._entity(row) if row else None

    def lookup_sha1_many(self, sha1s: Iterable[str]) -> dict[str, dict[str, Any]]:
        """`lookup_sha1` for many sha1s at once: {lower-case sha1: entity}, absent when none.

        Same rule (the active entity with the lowest ident), one query per
        `LOOKUP_CHUNK` sha1s (`rows_in`): per-record queries were most of the import's CPU.
        """
        out: dict[str, dict[str, Any]] = {}
        rows = rows_in(self.db, "SELECT sha1, ident, state, revision, body FROM file_ident",
                       "sha1", sorted({s.lower() for s in sha1s}), "AND active = 1 ORDER BY sha1, ident")
        for sha1, *rest in rows:
            if sha1 not in out:  # the lowest ident of this sha1
                out[sha1] = self._entity(rest)
        return out

    def get_file(self, ident: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT ident, state, revision, body FROM file_ident WHERE ident = ?", (ident,)
        ).fetchone()
        return self._entity(row) if row else None

    def iter_entities(self) -> Iterator[dict[str, Any]]:
        """Every entity in export shape, sorted by ident."""
        cur = self.db.execute("SELECT ident, state, revision, body FROM file_ident ORDER BY ident")
        for row in cur:
            yield self._entity(row)

    def count_entities(self) -> int:
        return self.db.execute("SELECT count(*) FROM file_ident").fetchone()[0]

    def get_editgroup(self, editgroup_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT e.editgroup_id, e.description, e.extra, e.created, c.idx "
            "FROM editgroup e LEFT JOIN changelog c USING (editgroup_id) WHERE e.editgroup_id = ?",
            (editgroup_id,),
        ).fetchone()
        if row is None:
            return None
        eg: dict[str, Any] = {
            "editgroup_id": row[0],
            "description": row[1],
            "extra": json.loads(row[2]) if row[2] is not None else None,
            "created": row[3],
        }
        if row[4] is not None:
            eg["changelog_index"] = row[4]
        eg["edits"] = {"files": self._edits(editgroup_id)}
        return eg

    def _edits(self, editgroup_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT edit_id, ident, rev_id, prev_rev FROM file_edit WHERE editgroup_id = ? "
            "ORDER BY rowid",
            (editgroup_id,),
        ).fetchall()
        return [
            {"edit_id": r[0], "ident": r[1], "revision": r[2], "prev_revision": r[3],
             "editgroup_id": editgroup_id}
            for r in rows
        ]

    def edits_of(self, ident: str, accepted_only: bool = True) -> list[dict[str, Any]]:
        """Every edit of one entity (accepted ones only by default): for audits and tests."""
        sql = (
            "SELECT f.edit_id, f.editgroup_id, f.rev_id, f.prev_rev, c.idx FROM file_edit f "
            "LEFT JOIN changelog c USING (editgroup_id) WHERE f.ident = ?"
        )
        if accepted_only:
            sql += " AND c.idx IS NOT NULL"
        rows = self.db.execute(sql + " ORDER BY f.rowid", (ident,)).fetchall()
        return [
            {"edit_id": r[0], "editgroup_id": r[1], "revision": r[2], "prev_revision": r[3],
             "changelog_index": r[4], "ident": ident}
            for r in rows
        ]

    def editgroups(self) -> list[dict[str, Any]]:
        """Every editgroup with its edit count and changelog index, in creation order."""
        rows = self.db.execute(
            "SELECT e.editgroup_id, c.idx, (SELECT count(*) FROM file_edit f "
            "WHERE f.editgroup_id = e.editgroup_id) FROM editgroup e "
            "LEFT JOIN changelog c USING (editgroup_id) ORDER BY e.rowid"
        ).fetchall()
        return [{"editgroup_id": r[0], "changelog_index": r[1], "edit_count": r[2]} for r in rows]

    # -- editing ------------------------------------------------------------
    def _require_open(self, db: sqlite3.Connection, editgroup_id: str) -> None:
        if db.execute("SELECT 1 FROM editgroup WHERE editgroup_id = ?", (editgroup_id,)).fetchone() is None:
            raise NotFound(f"no such editgroup found: {editgroup_id}")
        if db.execute("SELECT 1 FROM changelog WHERE editgroup_id = ?", (editgroup_id,)).fetchone():
            raise EditgroupAlreadyAccepted(
                "attempted to accept or mutate an editgroup which was already accepted: "
                f"{editgroup_id}"
            )

    def create_editgroup(self, description: str, extra: dict[str, Any]) -> str:
        editgroup_id = new_fatcat_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO editgroup (editgroup_id, description, extra, created) VALUES (?, ?, ?, ?)",
                (editgroup_id, description, to_json(extra) if extra is not None else None, timestamp()),
            )
        return editgroup_id

    def update_file(self, editgroup_id: str, ident: str, entity: dict[str, Any]) -> dict[str, Any]:
        body = body_of(entity)
        rev_id, edit_id = new_uuids(2)
        with self._tx() as db:
            self._require_open(db, editgroup_id)
            row = db.execute("SELECT revision FROM file_ident WHERE ident = ?", (ident,)).fetchone()
            if row is None:
                raise NotFound(f"no such file found: {ident}")
            db.execute("INSERT INTO file_rev (rev_id, ident, body) VALUES (?, ?, ?)",
                       (rev_id, ident, to_json(body)))
            try:
                db.execute(
                    "INSERT INTO file_edit (edit_id, editgroup_id, ident, rev_id, prev_rev) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (edit_id, editgroup_id, ident, rev_id, row[0]),
                )
            except sqlite3.IntegrityError as e:
                raise ConstraintViolation(DUPLICATE_EDIT_MESSAGE) from e
        return {"edit_id": edit_id, "ident": ident, "revision": rev_id, "prev_revision": row[0],
                "editgroup_id": editgroup_id}

    def delete_edit(self, editgroup_id: str, edit_id: str) -> None:
        with self._tx() as db:
            row = db.execute("SELECT editgroup_id, rev_id FROM file_edit WHERE edit_id = ?",
                             (edit_id,)).fetchone()
            if row is None:
                raise NotFound(f"no such file edit found: {edit_id}")
            if row[0] != editgroup_id:
                raise BadRequest("editgroup_id parameter didn't match that of the edit")
            self._require_open(db, editgroup_id)
            db.execute("DELETE FROM file_edit WHERE edit_id = ?", (edit_id,))
            db.execute("DELETE FROM file_rev WHERE rev_id = ?", (row[1],))

    def open_editgroups(self, agent: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT e.editgroup_id FROM editgroup e LEFT JOIN changelog c USING (editgroup_id) "
            "WHERE c.idx IS NULL AND json_extract(e.extra, '$.agent') = ? ORDER BY e.rowid",
            (agent,)).fetchall()
        return [self.get_editgroup(r[0]) for r in rows]

    def accept_editgroup(self, editgroup_id: str) -> None:
        with self._tx() as db:
            self._require_open(db, editgroup_id)
            edits = db.execute(
                "SELECT f.ident, f.rev_id, r.body FROM file_edit f JOIN file_rev r USING (rev_id) "
                "WHERE f.editgroup_id = ?",
                (editgroup_id,),
            ).fetchall()
            for ident, rev_id, body in edits:
                db.execute(
                    "UPDATE file_ident SET revision = ?, body = ?, sha1 = ?, state = 'active', "
                    "active = 1 WHERE ident = ?",
                    (rev_id, body, sha1_of(from_json(body)), ident),
                )
            db.execute("INSERT INTO changelog (editgroup_id, timestamp) VALUES (?, ?)",
                       (editgroup_id, timestamp()))

    def commit_editgroup(self, editgroup_id: str, description: str, extra: dict[str, Any] | None,
                         updates: list[tuple[str, dict[str, Any]]],
                         keep: Callable[[str, str | None], bool] | None = None) -> list[dict[str, Any]]:
        """Create editgroup `editgroup_id`, put one edit per (ident, entity) in, accept it:
        one transaction, so it happens whole or not at all; return the edits.

        Why: the embedded catalog needs no open editgroup between calls; a
        kill leaves nothing to resume. `commit_editgroups` with one editgroup.
        """
        return self.commit_editgroups(description, extra, [(editgroup_id, updates)], keep)[0]

    def commit_editgroups(self, description: str, extra: dict[str, Any] | None,
                          groups: list[tuple[str, list[tuple[str, dict[str, Any]]]]],
                          keep: Callable[[str, str | None], bool] | None = None,
                          ) -> list[list[dict[str, Any]]]:
        """Several editgroups (editgroup_id, [(ident, entity), ...]), each created, given its
        edits and accepted, in order, all in ONE transaction: a kill leaves all of them
        accepted or none; return each one's edits (`pipeline.catalog.sqlite_commit`, where
        `keep`, the importer's revision check, is asked inside the transaction)."""
        check_one_edit_per_ident(groups)
        with self._no_foreign_key_checks(), self._tx() as db:
            return write_editgroups(db, description, extra, groups, keep)

    # -- loading (pipeline.catalog.export) -----------------------------------
    def insert_rows(self, rows: list[tuple]) -> None:
        """Insert `file_ident` rows as they are, in the caller's transaction (export loading)."""
        self.db.executemany(
            "INSERT INTO file_ident (ident, state, active, revision, sha1, body) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
