"""Loading an export into the embedded catalog, and dumping the catalog as one.

Why apart from `pipeline.catalog.sqlite`: the catalog's editing model is one
responsibility, turning an export (docs/data.md, plain or gzip JSON lines) into a
fresh catalog file, with its rejects and counts, is another.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.catalog.base import ENTITY_STATES, IDENT_RE, CatalogError
from pipeline.catalog.integrity import fsync_file, record_identity, record_seed, seal
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.catalog.sqlite_schema import body_of, sha1_of, to_json
from pipeline.entity_urls import BAD_URLS, url_list_problem
from pipeline.jsonio import AtomicWriter, dumps, iter_lines, reject_bad_line, reject_text
from pipeline.jsonline import BadLine, parse_object
from pipeline.pausepoint import pause_point
from pipeline.tempnames import temp_name


@dataclass
class LoadReport:
    """What `load_export` did: entities loaded, lines rejected and why."""

    export: str
    catalog: str
    lines: int = 0
    loaded: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    rejects_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"export": self.export, "catalog": self.catalog, "lines": self.lines,
                "loaded": self.loaded, "rejected": self.rejected, "reasons": dict(self.reasons),
                "rejects": self.rejects_path}


def check_entity(obj: dict[str, Any]) -> str | None:
    """Why an export object cannot be a catalog entity, or None when it can."""
    ident = obj.get("ident")
    if not isinstance(ident, str) or not IDENT_RE.match(ident):
        return "bad-ident"
    state = obj.get("state")
    if state is not None and state not in ENTITY_STATES:
        return "bad-state"
    revision = obj.get("revision")
    if revision is not None and not isinstance(revision, str):
        return "bad-revision"
    if url_list_problem(obj.get("urls")) is not None:
        return BAD_URLS
    return None


def load_export(catalog_path: str | os.PathLike, export: str | os.PathLike,
                rejects_path: str | os.PathLike | None = None, batch: int = 5000) -> LoadReport:
    """Load an export (plain or gzip JSON lines) into the catalog at `catalog_path`.

    A new catalog is built under a temporary name and published only when
    complete, so a killed load never leaves a half-filled catalog that a
    later run would take for a finished one; publishing never replaces a
    catalog that appeared at the path meanwhile (another run's, maybe being
    edited: replacing it would lose its edits), it fails instead. Loading into an existing catalog
    happens in one transaction. Lines that are not JSON objects or not valid
    entities (bad ident or state, a malformed URL list, a number beyond a
    double's range, an ident already loaded) are counted, written to
    `rejects_path` (the rejects shape of docs/data.md) and never stop the load.
    """
    catalog_path = Path(catalog_path)
    report = LoadReport(export=os.fspath(export), catalog=os.fspath(catalog_path))
    fresh = not catalog_path.exists()
    build_path = Path(temp_name(catalog_path)) if fresh else catalog_path
    if fresh:
        _remove_build(build_path)
    rejects = AtomicWriter(rejects_path) if rejects_path else None
    try:
        cat = SqliteCatalog(build_path)  # a new file's schema pages can already fill the disk
    except sqlite3.Error as exc:
        if fresh:
            _remove_build(build_path)
        raise _load_failed(export, catalog_path, exc) from exc
    ok = False
    try:
        if rejects:
            rejects.__enter__()
        seen_before = {r[0] for r in cat.db.execute("SELECT ident FROM file_ident")} if not fresh else set()
        seen: set[str] = set()
        pending: list[tuple] = []
        cat.db.execute("BEGIN IMMEDIATE")
        try:
            for n, line in iter_lines(export):
                report.lines += 1
                obj = parse_object(n, line)
                if isinstance(obj, BadLine):
                    report.rejected += 1
                    report.reasons[obj.reason] += 1
                    if rejects:
                        rejects.write_obj(reject_bad_line(obj, os.fspath(export)))
                    continue
                reason = check_entity(obj)
                if reason is None:
                    body = body_of(obj)
                    try:
                        body_json = to_json(body)
                    except ValueError:  # a number beyond a double's range: `1e999` parses as inf
                        reason = "bad-number"
                if reason is None and (obj["ident"] in seen or obj["ident"] in seen_before):
                    reason = "duplicate-ident"
                if reason is not None:
                    report.rejected += 1
                    report.reasons[reason] += 1
                    if rejects:  # the line's own text: a parsed `1e999` has no JSON to write
                        rejects.write_line(reject_text(reason, n, os.fspath(export), line))
                    continue
                seen.add(obj["ident"])
                state = obj.get("state")
                pending.append((obj["ident"], state, 1 if state in (None, "active") else 0,
                                obj.get("revision"), sha1_of(body), body_json))
                if len(pending) >= batch:
                    cat.insert_rows(pending)
                    report.loaded += len(pending)
                    pending = []
            cat.insert_rows(pending)
            report.loaded += len(pending)
            record_seed(cat.db, export)
            if fresh:
                record_identity(cat.db)
            cat.db.execute("COMMIT")
        except BaseException:
            if cat.db.in_transaction:  # SQLite already rolled back after a disk-full error
                cat.db.execute("ROLLBACK")
            raise
        if report.lines != report.loaded + report.rejected:  # a bug, never an input
            raise CatalogError(f"load of {export}: {report.lines} lines != loaded + rejected")
        if fresh:
            seal(cat.db, catalog_path)
        if rejects:
            rejects.commit()
            report.rejects_path = os.fspath(rejects_path)
        ok = True
    except sqlite3.Error as exc:
        raise _load_failed(export, catalog_path, exc) from exc
    finally:
        cat.close()
        if rejects:
            rejects.__exit__(None, None, None)
        if fresh:
            try:
                if ok:
                    fsync_file(build_path)
                    pause_point("catalog-publish")
                    publish_new(build_path, catalog_path)
            finally:
                _remove_build(build_path)
    return report


def _remove_build(build_path: Path) -> None:
    """A catalog being built under a temporary name, and its WAL files: gone."""
    for leftover in (build_path, Path(f"{build_path}-wal"), Path(f"{build_path}-shm")):
        leftover.unlink(missing_ok=True)


def _load_failed(export, catalog_path, exc: sqlite3.Error) -> CatalogError:
    return CatalogError(f"loading {export} into {catalog_path} failed: {exc} (is the disk "
                        "full?); no catalog was published")


def publish_new(built: Path, final: Path) -> None:
    """Put the built catalog at `final` only if nothing is there: a hard link fails when the
    name exists, where a rename would silently replace it. (A file system without hard
    links gets a rename after a check; the caller's catalog lock covers that window.)"""
    try:
        os.link(built, final)
    except FileExistsError:
        raise CatalogError(f"embedded catalog {final} appeared while {built.name} was being "
                           "loaded (another run loaded it): this load is not published over it, "
                           "rerun to use that catalog") from None
    except OSError:
        if final.exists():
            raise CatalogError(f"embedded catalog {final} appeared while it was being loaded; "
                               "this load is not published over it, rerun to use it") from None
        os.replace(built, final)


def dump(catalog: SqliteCatalog, out) -> int:
    """Write every entity as export-format JSON lines sorted by ident; return the count."""
    n = 0
    for entity in catalog.iter_entities():
        out.write(dumps(entity) + "\n")
        n += 1
    return n
