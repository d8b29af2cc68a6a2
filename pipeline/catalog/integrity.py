"""The embedded catalog is checked before it is published or reused, and knows its seed.

Why: with a full disk the seed load failed, yet an unreadable catalog ended up
at its final path and every later run failed on "database disk image is
malformed", even after space was freed. And a catalog seeded from one export
was silently reused by a run over another: everything came out
`skip-no-match` and the run exited 0. So a freshly built catalog is fully
written back (WAL checkpointed, rollback journal mode), integrity-checked and
fsynced before its rename; an existing one is checked (`PRAGMA quick_check`)
before use and refused with a clear error when damaged; and the catalog
records the exports it was loaded from (path, size, mtime, sha256), which a
run compares with its own seed export.

A catalog also gets an identity when it is built (`catalog_id`, a random
UUID in the same table): an import records the identity of the catalog it
wrote to, so a catalog replaced at the same path (moved away and loaded
again, or restored from elsewhere) is seen as another catalog and its import
is redone instead of being reported complete.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from typing import Any

from pipeline.catalog.base import CatalogError
from pipeline.provenance import file_identity

log = logging.getLogger(__name__)

META_TABLE = "CREATE TABLE IF NOT EXISTS catalog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def export_identity(export: str | os.PathLike) -> dict[str, Any]:
    return {**file_identity(export), "path": os.path.abspath(export)}


def record_seed(db: sqlite3.Connection, export: str | os.PathLike) -> None:
    """Note in the catalog that `export` was loaded into it (inside the caller's transaction)."""
    db.execute(META_TABLE)
    seeds = recorded_seeds(db)
    seeds.append(export_identity(export))
    db.execute("INSERT OR REPLACE INTO catalog_meta (key, value) VALUES ('seeds', ?)",
               (json.dumps(seeds, sort_keys=True),))


def record_identity(db: sqlite3.Connection) -> str:
    """Give a catalog being built its identity (kept when it already has one); return it."""
    db.execute(META_TABLE)
    db.execute("INSERT OR IGNORE INTO catalog_meta (key, value) VALUES ('catalog_id', ?)",
               (str(uuid.uuid4()),))
    return db.execute("SELECT value FROM catalog_meta WHERE key = 'catalog_id'").fetchone()[0]


def recorded_identity(db: sqlite3.Connection) -> str | None:
    """The identity of the catalog behind `db`; None for one built before identities existed."""
    try:
        row = db.execute("SELECT value FROM catalog_meta WHERE key = 'catalog_id'").fetchone()
    except sqlite3.OperationalError:  # no catalog_meta table at all
        return None
    return row[0] if row else None


def catalog_identity(path: str | os.PathLike) -> str | None:
    """The identity of the catalog file now at `path` (None: none recorded, or no catalog).

    Read as an immutable file: a task's completeness check must not leave `-wal`/`-shm`
    files behind (a rerun writes nothing), and the identity is written once, when the
    catalog is built, into the main file (`seal`), never into a WAL.
    """
    if not os.path.exists(path):
        return None
    try:
        db = sqlite3.connect(f"file:{os.fspath(path)}?mode=ro&immutable=1", uri=True)
        try:
            return recorded_identity(db)
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None


def recorded_seeds(db: sqlite3.Connection) -> list[dict[str, Any]]:
    try:
        row = db.execute("SELECT value FROM catalog_meta WHERE key = 'seeds'").fetchone()
    except sqlite3.OperationalError:  # a catalog made before seeds were recorded
        return []
    return json.loads(row[0]) if row else []


def seal(db: sqlite3.Connection, path: str | os.PathLike) -> None:
    """Make a freshly built catalog file complete on its own and check it, before its rename.

    The WAL is checkpointed into the main file and the journal mode set back
    to a rollback journal, so closing cannot leave data behind in a `-wal`
    file (a checkpoint failing on a full disk at close is silent); then the
    whole file is integrity-checked.
    """
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise CatalogError(f"{path}: could not write the catalog back (checkpoint busy)")
    mode = db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    if mode.lower() != "delete":
        raise CatalogError(f"{path}: could not leave WAL mode (journal mode {mode})")
    problems = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise CatalogError(f"{path}: the catalog just built fails its integrity check "
                           f"({'; '.join(problems[:3])}); it is not published")


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_catalog_file(path: str | os.PathLike, seed: str | os.PathLike | None = None) -> None:
    """Refuse an existing embedded catalog that is damaged, or was seeded from another export."""
    path = os.fspath(path)
    advice = (f"move it away and rerun (it is loaded again from {seed})" if seed
              else "move it away and load it again (`catalog load EXPORT`)")
    cut = header_problem(path)
    try:
        if cut:  # garbage or cut short: SQLite may read what is left without complaint
            raise sqlite3.DatabaseError(cut)
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
            seeds = recorded_seeds(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
        seeds = []
    if problems != ["ok"]:
        raise CatalogError(f"embedded catalog {path} is damaged ({'; '.join(problems[:3])}); "
                           f"it is never reused: {advice}")
    if seed:
        check_seed(path, seeds, seed)


def check_seed(path: str, seeds: list[dict[str, Any]], seed: str | os.PathLike) -> None:
    """The run's seed export must be one the catalog was loaded from."""
    if not seeds:
        log.warning("embedded catalog %s does not record the export it was loaded from; "
                    "cannot check it matches %s", path, seed)
        return
    st = os.stat(seed)
    here = os.path.abspath(seed)
    for s in seeds:  # same file, untouched: no need to read it
        if (s.get("path"), s.get("size"), s.get("mtime_ns")) == (here, st.st_size, st.st_mtime_ns):
            return
    digest = export_identity(seed)["sha256"]
    if any(s.get("sha256") == digest for s in seeds):
        return
    loaded = ", ".join(f"{s.get('path')} ({s.get('size')} bytes, sha256 {str(s.get('sha256'))[:12]}…)"
                       for s in seeds)
    raise CatalogError(
        f"embedded catalog {path} was loaded from {loaded}, not from this run's export {seed} "
        f"(sha256 {digest[:12]}…): its entities would not match (all skip-no-match). Give this "
        "run its own catalog (--backfill-catalog), or move the old one away to load it again")


SQLITE_MAGIC = b"SQLite format 3\x00"


def header_problem(path: str | os.PathLike) -> str | None:
    """Why `path` is plainly not a whole SQLite database, from its 100-byte header: cheap
    enough for every completeness check (a no-op rerun), unlike `check_catalog_file`.

    Catches garbage (no SQLite magic) and a file cut short (smaller than the page
    count its header records). A file whose header holds is not proven sound:
    the import's own open runs `PRAGMA quick_check` before any use.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
        size = os.path.getsize(path)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "not a SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return "not a SQLite database (bad page size)"
    pages = int.from_bytes(header[28:32], "big")
    # the header's page count is valid when its change counter matches version-valid-for; a
    # WAL beside the file may hold pages not yet written back: then only the magic is checked
    wal = os.path.exists(f"{os.fspath(path)}-wal")
    if header[24:28] == header[92:96] and not wal and size < pages * page_size:
        return f"cut short ({size} bytes, its header records {pages} pages of {page_size})"
    return None
