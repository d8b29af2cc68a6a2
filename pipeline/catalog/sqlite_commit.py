"""The embedded catalog's import path: several editgroups written whole in one transaction.

Why a module of its own: this is the one write the import makes per
`EDITGROUPS_PER_COMMIT` editgroups (`pipeline.importer.importer`), and how it
builds its rows is what made the import fast (one commit for many
editgroups, each entity's row written once at its last revision, the sha1
index left alone when an edit keeps the sha1), while the per-call API of
`pipeline.catalog.sqlite` stays as fatcat's calls are. The rows are those
`create_editgroup`, `update_file` and `accept_editgroup` would write, in that
order, so an ident edited by two of the editgroups gets the first one's
revision as its second edit's `prev_revision`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from pipeline.catalog.base import DUPLICATE_EDIT_MESSAGE, ConstraintViolation, NotFound
from pipeline.catalog.sqlite_schema import body_of, new_uuids, rows_in, sha1_of, timestamp, to_json

Groups = list[tuple[str, list[tuple[str, dict[str, Any]]]]]


def check_one_edit_per_ident(groups: Groups) -> None:
    """fatcat's `file_edit_editgroup_id_ident_id_key`: no editgroup edits one ident twice
    (refused before the transaction begins)."""
    for _, updates in groups:
        idents = [ident for ident, _ in updates]
        if len(set(idents)) != len(idents):
            raise ConstraintViolation(DUPLICATE_EDIT_MESSAGE)


def write_editgroups(db: sqlite3.Connection, description: str, extra: dict[str, Any] | None,
                     groups: Groups, keep: Callable[[str, str | None], bool] | None,
                     ) -> list[list[dict[str, Any]]]:
    """Write `groups` (editgroup_id, [(ident, entity), ...]), each created, given its edits
    and accepted, in the caller's transaction; return each one's edits.

    `keep(ident, prev_revision)` (the importer's revision check) is asked about each
    edit here, inside the transaction, so no other writer comes in between the check
    and the accept; an edit it refuses is not written (absent from the edits returned).
    An ident not in the catalog raises `NotFound` before any row is written. Each
    entity's row is updated once, at its last revision: the commit (and each randomly
    keyed page written again by the next one) was most of the import's SQLite time.
    """
    wanted = sorted({ident for _, updates in groups for ident, _ in updates})
    prev: dict[str, tuple[str | None, str | None]] = {  # ident -> (revision, sha1)
        ident: (rev, sha1) for ident, rev, sha1 in
        rows_in(db, "SELECT ident, revision, sha1 FROM file_ident", "ident", wanted)}
    first_sha1 = {ident: sha1 for ident, (_, sha1) in prev.items()}
    extra_json = to_json(extra) if extra is not None else None
    uuids = iter(new_uuids(2 * sum(len(updates) for _, updates in groups)))
    editgroups, revs, edits, current, changelog, out = [], [], [], [], [], []
    for editgroup_id, updates in groups:
        now = timestamp()
        editgroups.append((editgroup_id, description, extra_json, now))
        made = []
        for ident, entity in updates:
            if ident not in prev:
                raise NotFound(f"no such file found: {ident}")
            prev_rev = prev[ident][0]
            if keep is not None and not keep(ident, prev_rev):
                continue
            body = body_of(entity)
            text = to_json(body)
            rev_id, edit_id = next(uuids), next(uuids)
            sha1 = sha1_of(body)
            revs.append((rev_id, ident, text))
            edits.append((edit_id, editgroup_id, ident, rev_id, prev_rev))
            current.append((ident, rev_id, text, sha1))
            prev[ident] = (rev_id, sha1)
            made.append({"edit_id": edit_id, "ident": ident, "revision": rev_id,
                         "prev_revision": prev_rev, "editgroup_id": editgroup_id})
        changelog.append((editgroup_id, now))
        out.append(made)
    db.executemany(
        "INSERT INTO editgroup (editgroup_id, description, extra, created) VALUES (?, ?, ?, ?)",
        editgroups)
    db.executemany("INSERT INTO file_rev (rev_id, ident, body) VALUES (?, ?, ?)", revs)
    db.executemany(
        "INSERT INTO file_edit (edit_id, editgroup_id, ident, rev_id, prev_rev) "
        "VALUES (?, ?, ?, ?, ?)", edits)
    # each entity once, at its last revision; the sha1 column (indexed) only when the edits
    # changed it: an UPDATE naming an indexed column rewrites its index entry even when the
    # value stays the same
    final = {ident: (rev, text, sha1) for ident, rev, text, sha1 in current}
    rows = [(ident, *final[ident]) for ident in sorted(final)]
    db.executemany(
        "UPDATE file_ident SET revision = ?, body = ?, state = 'active', active = 1 WHERE ident = ?",
        [(rev, text, ident) for ident, rev, text, sha1 in rows if sha1 == first_sha1[ident]])
    db.executemany(
        "UPDATE file_ident SET revision = ?, body = ?, sha1 = ?, state = 'active', active = 1 "
        "WHERE ident = ?",
        [(rev, text, sha1, ident) for ident, rev, text, sha1 in rows if sha1 != first_sha1[ident]])
    db.executemany("INSERT INTO changelog (editgroup_id, timestamp) VALUES (?, ?)", changelog)
    return out
