"""The one place that builds the pipeline's workers and clients from configuration.

Why: tasks stay thin and plain classes never read configuration; everything
configurable (the archive, the worker's knobs, the catalog) is turned into
objects here, so a test or a script can build the same objects with other
values without Luigi.
"""

from __future__ import annotations

import logging

from pipeline import config
from pipeline.archive.factory import open_archive
from pipeline.catalog import open_catalog
from pipeline.catalog.base import Catalog
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker

log = logging.getLogger("luigi-interface")


def ingest_worker() -> IngestWorker:
    """The ingest worker: archive clients from `[backfill] archive` (and `[ingest] warc_base`),
    knobs from `[ingest]`. GROBID and text extraction are not wired yet (results say
    `grobid: disabled`)."""
    ingest = config.ingest()
    if config.grobid().host:
        log.warning("[grobid] host is set, but the GROBID sink is not built yet: results say disabled")
    cdx, content = open_archive(config.backfill().archive, ingest, warc_base=ingest.warc_base or None)
    return IngestWorker(cdx, content, IngestSettings.from_config(ingest))


def ingest_settings() -> dict:
    """What changes an ingest result: the archive and the worker's knobs."""
    ingest = config.ingest()
    return {
        "archive": config.backfill().archive,
        "warc_base": ingest.warc_base,
        **IngestSettings.from_config(ingest).as_dict(),
    }


def import_catalog() -> Catalog:
    """The catalog the import writes to: `[backfill] catalog` (a path: the embedded catalog,
    loaded from `[backfill] catalog_seed` when it does not exist yet; a URL: the fatcat API)."""
    cfg = config.backfill()
    catalog, report = open_catalog(cfg.catalog_path(), seed=cfg.catalog_seed_path())
    if report is not None:
        log.info("catalog %s loaded from %s: %s", report.catalog, report.export, report.as_dict())
    return catalog


def import_settings() -> dict:
    """What changes the import's outcome: which catalog, and the editgroup description."""
    return {"catalog": config.backfill().catalog_path(), "description": config.importer().description}
