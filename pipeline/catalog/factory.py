"""One place that turns the `[backfill] catalog` setting into a catalog backend.

An http(s) URL is a fatcat API; anything else is the path of an embedded
(SQLite) catalog, loaded from a seed export when it does not exist yet. The
import receives a `Catalog` and never branches on where the catalog lives
(the same shape as `pipeline.archive.factory`).
"""

from __future__ import annotations

import logging
import os

from pipeline.catalog.base import Catalog, CatalogError
from pipeline.catalog.export import LoadReport, load_export
from pipeline.catalog.integrity import check_catalog_file
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.catalog.sqlite_schema import lock_path_of
from pipeline.locations import is_http_url
from pipeline.runlock import RunLock

log = logging.getLogger(__name__)


def is_api_url(spec: str) -> bool:
    """An http(s) URL (scheme in any case) is the fatcat API; anything else a file path."""
    return is_http_url(spec)


def rejects_path_for(catalog_path: str | os.PathLike) -> str:
    """Where the lines an export load refused are written, beside the catalog."""
    return f"{os.fspath(catalog_path)}.rejects.json"


def catalog_lock(path: str | os.PathLike) -> RunLock:
    """The one lock of an embedded catalog (`<catalog>.lock`): held while it is loaded from its
    seed and for the whole of an import into it, so one process at a time writes it."""
    return RunLock(lock_path_of(path), f"catalog {os.fspath(path)}")


def open_catalog(spec: str, seed: str | os.PathLike | None = None) -> tuple[Catalog, LoadReport | None]:
    """The catalog named by `spec`, and the load report if it had to be seeded first.

    An embedded catalog that does not exist is loaded from `seed` (the
    `[backfill] catalog_seed` export); with no seed that is an error rather
    than an empty catalog that would silently match nothing.
    """
    if is_api_url(spec):
        # imported here: the API client brings requests and urllib3, ~50 ms of start-up that
        # an embedded catalog's import outside luigi (`python -m pipeline catalog import`,
        # the bench's step) never needs; luigi has loaded them already
        from pipeline.catalog.fatcat import FatcatCatalog
        return FatcatCatalog(spec), None
    report = None
    if not os.path.exists(spec):
        if not seed:
            raise CatalogError(f"embedded catalog {spec} does not exist and no seed export was given")
        report = seed_catalog(spec, seed)
    if report is None:
        check_catalog_file(spec, seed)  # damaged, or seeded from another export: refused
    return SqliteCatalog(spec), report


def seed_catalog(spec: str, seed: str | os.PathLike) -> LoadReport | None:
    """Load the missing catalog `spec` from `seed` under the catalog's lock; None when another
    run loaded it meanwhile.

    Why the lock: two runs that both found the catalog missing each built
    one, and the slower one renamed its catalog over the one the faster was
    already importing into, losing those edits. Now the second one fails at
    once (`LockHeld`, the first is loading or importing), or finds the
    catalog made when it gets the lock and uses it; and the load itself never
    publishes over an existing file (`publish_new`).
    """
    with catalog_lock(spec):
        if os.path.exists(spec):
            return None
        report = load_export(spec, seed, rejects_path=rejects_path_for(spec))
    log.info("catalog %s loaded from %s: %d entities, %d lines rejected (%s)", spec, seed,
             report.loaded, report.rejected, dict(report.reasons))
    return report
