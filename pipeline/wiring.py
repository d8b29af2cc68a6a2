"""The one place that builds the pipeline's workers and clients from configuration.

Why: tasks stay thin and plain classes never read configuration; everything
configurable (the archive, the worker's knobs, the catalog) is turned into
objects here, so a test or a script can build the same objects with other
values without Luigi.
"""

from __future__ import annotations

import logging
import os

from pipeline import config
from pipeline.archive.factory import open_archive
from pipeline.archive.local import LocalContentClient
from pipeline.catalog import open_catalog
from pipeline.catalog.base import Catalog
from pipeline.checks import StepFailed
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.worker import IngestWorker
from pipeline.postprocess.grobid import GrobidClient, GrobidPostProcessor
from pipeline.preconditions import PreconditionFailed, grobid_alive
from pipeline.sinks.base import Sink
from pipeline.sinks.files import FileSink, sink_paths
from pipeline.sinks.kafka import KafkaSink
from pipeline.targets import IMPORT_JOURNAL

log = logging.getLogger(__name__)

# which local index files were verified sorted (by path, size, mtime), kept in the work directory
INDEX_CHECK_CACHE = "archive_index_order.json"


class _Patient:
    """`[ingest]` as the retry pass sees it: `retry_pass_retries` retries per call."""

    def __init__(self, section):
        self._section = section
        self.retries = section.retry_pass_retries

    def __getattr__(self, name):
        return getattr(self._section, name)


def archive_clients(patient: bool = False):
    """(CdxClient, ContentClient) of `[backfill] archive` (and `[ingest] warc_base`); `patient`:
    with the retry pass's retries (`[ingest] retry_pass_retries`)."""
    ingest = config.ingest()
    cfg = config.backfill()
    return open_archive(cfg.archive, _Patient(ingest) if patient else ingest,
                        warc_base=ingest.warc_base or None,
                        index_check_cache=f"{cfg.workdir}/{INDEX_CHECK_CACHE}")


def archive_note(worker: IngestWorker):
    """What the worker's archive is waiting for, for the progress message ("archive
    unavailable since HH:MM, next try in N s" while its circuit breaker is open)."""
    breaker = getattr(getattr(worker.cdx, "retry", None), "breaker", None)
    return breaker.note if breaker is not None else (lambda: None)


def ingest_worker(postprocess: bool = False, patient: bool = False) -> IngestWorker:
    """The ingest worker: archive clients from `[backfill] archive` (and `[ingest] warc_base`),
    knobs from `[ingest]`; with `postprocess`, GROBID (`[grobid] host`) and text extraction
    (`[pdftext] enabled`) run on every PDF (the shards; the warm-up sample does without)."""
    cdx, content = archive_clients(patient)
    steps = postprocessors() if postprocess else []
    return IngestWorker(cdx, content, IngestSettings.from_config(config.ingest()), postprocessors=steps)


def ingest_processes(worker: IngestWorker) -> bool:
    """Whether a shard's requests run in forked processes rather than threads (`run_shard`).

    Why: the local archive never waits, so an ingest thread only waits for the GIL (four
    threads ran a shard slower than one); processes put every CPU to work instead. An
    HTTP archive or GROBID does wait, on the network, and keeps `[ingest] concurrency`
    threads in flight.
    """
    return isinstance(worker.content, LocalContentClient) and not any(
        isinstance(step, GrobidPostProcessor) for step in worker.postprocessors)


def grobid_postprocessor() -> GrobidPostProcessor | None:
    """GROBID from `[grobid]`; None when no host is configured."""
    cfg = config.grobid()
    if not cfg.host:
        return None
    return GrobidPostProcessor(GrobidClient(cfg.host, timeout=cfg.timeout), cfg.concurrency)


def postprocessors() -> list:
    steps: list = []
    grobid = grobid_postprocessor()
    if grobid is not None:
        steps.append(grobid)
    if config.pdftext().enabled:
        # imported here: PDFium's bindings are ~15 ms of every step's start-up otherwise,
        # and a run with text extraction off never needs them
        from pipeline.postprocess.pdftext import PdfTextPostProcessor

        steps.append(PdfTextPostProcessor())
    return steps


def check_grobid(required: bool = False) -> None:
    """Fail at once, before any request, when GROBID is configured but not alive.

    The answer is the `GrobidAlive` precondition's (`preconditions.grobid_alive`: one probe
    per run, one message), so a step run by hand checks too without a second probe in a run.
    `required`: fail too when no GROBID is configured (GrobidRetry has nothing to send to).
    """
    host = config.grobid().host
    if not host:
        if required:
            raise StepFailed("no GROBID configured: set [grobid] host (--grobid-host URL)")
        return
    ok, problem = grobid_alive(host)
    if problem is not None:
        raise PreconditionFailed(f"GrobidAlive: {problem}; no request of this step was ingested")
    log.info("%s", ok)


def open_sink(stem: str) -> Sink:
    """The sink of one shard (`stem`: shard-NNN-of-MMM): Kafka when `[kafka] hosts` is set,
    else files under `<workdir>/sinks/<topic>/<stem>.*`. A Kafka broker that is down or lacks a
    topic fails here, before any request."""
    cfg = config.kafka()
    if cfg.hosts:
        return KafkaSink(cfg.hosts, cfg.env, message_max_bytes=cfg.message_max_bytes,
                         message_timeout_ms=int(cfg.delivery_timeout * 1000))
    return FileSink(config.backfill().workdir, cfg.env, stem)


def sink_files(stem: str) -> list[str]:
    """The files a shard's file sink writes (none when Kafka is configured)."""
    cfg = config.kafka()
    if cfg.hosts:
        return []
    return [str(p) for p in sink_paths(config.backfill().workdir, cfg.env, stem).values()]


def sink_settings() -> dict:
    """What changes a shard's post-processing and where it goes: GROBID on/off, text on/off,
    Kafka or files, and the topics' env (not the hosts: a moved broker is the same sink)."""
    return {
        "grobid": bool(config.grobid().host),
        "pdf_text": bool(config.pdftext().enabled),
        "sink": "kafka" if config.kafka().hosts else "files",
        "kafka_env": config.kafka().env,
    }


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
    return open_named_catalog(catalog_spec(), seed=config.backfill().catalog_seed_path())


def open_named_catalog(spec: str, seed: str | None = None) -> Catalog:
    """The catalog `spec` names (the task above, and the CLI with its `--catalog`), loaded
    from `seed` first when it is an embedded catalog that does not exist yet."""
    catalog, _ = open_catalog(spec, seed=seed)  # a load is logged where it happens
    return catalog


def catalog_spec() -> str:
    """`[backfill] catalog`: the embedded catalog's path (default <workdir>/catalog.sqlite)
    or a fatcat API URL."""
    return config.backfill().catalog_path()


def import_journal_path() -> str:
    """The import journal of this work directory (the import task and `catalog import`)."""
    return os.path.join(os.path.abspath(config.backfill().workdir), IMPORT_JOURNAL)


def import_options() -> dict:
    """The editgroup shape of the import: `[importer] batch_size` and `description`, and its
    parallel streams (`[importer] streams`)."""
    cfg = config.importer()
    return {"batch_size": cfg.batch_size, "description": cfg.description, "streams": cfg.streams}


def import_settings() -> dict:
    """What changes the import's outcome: which catalog, and the editgroup description."""
    return {"catalog": config.backfill().catalog_path(), "description": config.importer().description}
