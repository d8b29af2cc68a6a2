"""How the embedded catalog stores entities: its tables, and an entity as a row.

Why apart from `pipeline.catalog.sqlite` (the catalog's calls): the export
loader (`pipeline.catalog.export`) writes the same rows in bulk, and the
factory needs the lock file's name without opening a catalog; both share
these few rules instead of reaching into the catalog class.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from pipeline.catalog.base import CATALOG_KEYS
from pipeline.provenance import utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS file_ident (
    ident TEXT PRIMARY KEY,
    state TEXT,
    active INTEGER NOT NULL,
    revision TEXT,
    sha1 TEXT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_rev (
    rev_id TEXT PRIMARY KEY,
    ident TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS editgroup (
    editgroup_id TEXT PRIMARY KEY,
    description TEXT,
    extra TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changelog (
    idx INTEGER PRIMARY KEY AUTOINCREMENT,
    editgroup_id TEXT NOT NULL UNIQUE REFERENCES editgroup(editgroup_id),
    timestamp TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_edit (
    edit_id TEXT PRIMARY KEY,
    editgroup_id TEXT NOT NULL REFERENCES editgroup(editgroup_id),
    ident TEXT NOT NULL REFERENCES file_ident(ident),
    rev_id TEXT NOT NULL REFERENCES file_rev(rev_id),
    prev_rev TEXT,
    CONSTRAINT file_edit_editgroup_id_ident_id_key UNIQUE (editgroup_id, ident)
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS file_ident_sha1 ON file_ident (sha1, ident);
CREATE INDEX IF NOT EXISTS file_edit_ident ON file_edit (ident);
"""


# one encoder for every body: `json.dumps` with options builds a new one per call
_BODY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False)


def to_json(obj: Any) -> str:
    """An entity body as stored. NaN and infinities raise `ValueError` (the export loader
    rejects such an entity as `bad-number`): stored, they would be the bare words
    `NaN`/`Infinity`, which no JSON reader takes back."""
    return _BODY_ENCODER.encode(obj)


_BODY_DECODER = msgspec.json.Decoder()


def from_json(text: str) -> Any:
    """A stored body read back, exactly as `json.loads` reads it. msgspec reads it about
    three times faster and takes every body `to_json` wrote; what it refuses (a lone
    surrogate escape, a number beyond a double's range: only in a file written by other
    means) `json.loads` reads instead. Why: reading the bodies of looked-up entities was
    a tenth of the import's Python time."""
    try:
        return _BODY_DECODER.decode(text)
    except msgspec.MsgspecError:
        return json.loads(text)


def body_of(entity: dict[str, Any]) -> dict[str, Any]:
    """The entity without the keys the catalog keeps in columns of their own (a copy and
    a few pops: twice as fast as filtering every key, and it runs once per edit)."""
    body = dict(entity)
    for key in CATALOG_KEYS:
        body.pop(key, None)
    return body


def sha1_of(body: dict[str, Any]) -> str | None:
    sha1 = body.get("sha1")
    return sha1.lower() if isinstance(sha1, str) and sha1 else None  # looked up lower-case


def lock_path_of(path: str | os.PathLike) -> str:
    """The lock file of the embedded catalog at `path` (`<catalog>.lock`)."""
    return f"{os.fspath(path)}.lock"


def timestamp() -> str:
    """An editgroup's `created` and its changelog entry's time, as stored."""
    return utc_now(micro=True)


# keys per `IN (...)` query (SQLite allows 999 parameters at least)
LOOKUP_CHUNK = 500


def rows_in(db: sqlite3.Connection, select: str, column: str, keys: Sequence[str],
            rest: str = "") -> Iterator[tuple]:
    """The rows of `select` whose `column` is one of `keys`, `LOOKUP_CHUNK` keys per query
    (`rest`, e.g. more conditions and an ORDER BY, applies within each query). Why: one
    query per batch of records instead of one per record was most of the lookups' time."""
    for i in range(0, len(keys), LOOKUP_CHUNK):
        part = keys[i:i + LOOKUP_CHUNK]
        yield from db.execute(f"{select} WHERE {column} IN ({','.join('?' * len(part))}) {rest}",
                              part)


# the RFC 9562 variant's hex digit (10xx) for each random hex digit: two random bits kept
_VARIANT_DIGIT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_uuids(n: int) -> list[str]:
    """`n` new time-ordered UUIDs (RFC 9562 version 7), in ascending order: the clock's
    milliseconds in the first 48 bits, then 74 random bits from one read of the OS's
    random source, formatted by slicing one hex string.

    Why time-ordered: these are the embedded catalog's revision and edit ids, the keys
    of its `file_rev` and `file_edit` indexes. A random (version 4) key lands on a
    random page of an index that grows to hundreds of thousands of entries, so every
    commit wrote about one index page per edit for each of the two; a key that only
    grows is appended to the last few pages. That halved the import's SQLite time
    (bench/: 324k updates, 27 -> 18 s). Ids stay unique: two ids of one millisecond
    differ in 74 random bits. The order is kept within a call and, between calls, as
    far as the clock goes forward; an id's order matters to no reader, only to where
    SQLite writes it.
    """
    if n <= 0:
        return []
    ts = f"{time.time_ns() // 1_000_000:012x}"[-12:]
    head, mid = ts[:8], ts[8:]
    h = os.urandom(10 * n).hex()
    return sorted(f"{head}-{mid}-7{h[i:i + 3]}-{_VARIANT_DIGIT[h[i + 3]]}{h[i + 4:i + 7]}-"
                  f"{h[i + 7:i + 19]}" for i in range(0, 20 * n, 20))
