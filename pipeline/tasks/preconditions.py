"""Precondition tasks: the archive, the catalog, GROBID and the broker, checked before any work.

Why: a missing token or a down service must stop a run in seconds, before
the export is filtered or a shard ingested, with a message that says what is
wrong and how to fix it (see `pipeline/preconditions.py` for the checks).

How they fit Luigi: a precondition is complete when no step that needs it
is left to run (a finished run checks nothing, so a rerun stays a no-op),
or when its check passes now (checked while the scheduler asks, and again
before each step that needs it runs, so a service lost mid-run stops the
next step). When the check fails the task is scheduled, and its `run()`
raises the check's message: the task fails (exit code `task_failed`) and
nothing that requires it runs. `ExportMissingSha256`, the first step,
requires every precondition of the run; `IngestShard` and `ImportFileMeta`
require their own, so rerunning one of them alone checks what it needs.
"""

from __future__ import annotations

import logging
import time

import luigi

from pipeline import config, preconditions
from pipeline.base import InRun, tell_scheduler

log = logging.getLogger("luigi-interface")

# A check passed or failed this recently is not repeated (each shard asks before it runs).
CACHE_SECONDS = 30.0
_cache: dict[tuple, tuple[float, str | None, str | None]] = {}


def cached_check(key: tuple, check) -> tuple[str | None, str | None]:
    """(what was checked, None) or (None, what is wrong), from a check at most 30 s old."""
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1], hit[2]
    try:
        ok, problem = check(), None
    except preconditions.PreconditionFailed as e:
        ok, problem = None, str(e)
    except Exception as e:  # a check that breaks must still stop the run, saying how
        log.exception("precondition check %s raised", key[0])
        ok, problem = None, f"the check itself failed ({type(e).__name__}: {e})"
    _cache[key] = (now, ok, problem)
    return ok, problem


class Precondition(InRun, luigi.Task):
    """Base of the checks: complete when not needed or when the check passes now."""

    def needed_by(self) -> list[luigi.Task]:
        """The steps that need this service; when all are complete, nothing is checked."""
        raise NotImplementedError

    def key(self) -> tuple:
        raise NotImplementedError

    def check(self) -> str:
        raise NotImplementedError

    def output(self):
        return []  # nothing on disk: the answer is the service's, now

    def result(self) -> tuple[str | None, str | None]:
        return cached_check((type(self).__name__, *self.key()), self.check)

    def complete(self) -> bool:
        if all(step.complete() for step in self.needed_by()):
            return True
        ok, _ = self.result()
        return ok is not None

    def run(self):
        ok, problem = self.result()
        if problem is not None:
            raise preconditions.PreconditionFailed(f"{self.task_family}: {problem}")
        tell_scheduler(self, f"done: {ok}", 100.0)


def _ingest_steps() -> list[luigi.Task]:
    from pipeline.tasks.ingest import IngestSampleResults, IngestShard

    n = config.backfill().shards
    return [IngestSampleResults(), *(IngestShard(shard=i, shards=n) for i in range(max(n, 0)))]


class ArchiveReachable(Precondition):
    """The web archive answers one CDX lookup and serves one capture (`[backfill] archive`)."""

    def needed_by(self):
        return _ingest_steps()

    def key(self):
        ingest = config.ingest()
        return (config.backfill().archive, ingest.cdx_dialect, ingest.warc_base,
                config.backfill().export)

    def check(self):
        return preconditions.check_archive(config.backfill().archive, config.ingest(),
                                           config.backfill().export)


class CatalogWritable(Precondition):
    """The import can write to the catalog: token set (fatcat API) or file writable (SQLite)."""

    def needed_by(self):
        from pipeline.tasks.catalog_import import ImportFileMeta

        return [ImportFileMeta()]

    def key(self):
        return (config.backfill().catalog_path(),)

    def check(self):
        return preconditions.check_catalog(config.backfill().catalog_path())


class GrobidAlive(Precondition):
    """GROBID answers `/api/isalive` (only when `[grobid] host` is set)."""

    def needed_by(self):
        return _ingest_steps()

    def key(self):
        return (config.grobid().host,)

    def check(self):
        return preconditions.check_grobid(config.grobid().host)


class BrokerReachable(Precondition):
    """The Kafka brokers answer with the run's topics (only when `[kafka] hosts` is set)."""

    def needed_by(self):
        return _ingest_steps()

    def key(self):
        return (config.kafka().hosts, config.kafka().env)

    def check(self):
        return preconditions.check_broker(config.kafka().hosts, config.kafka().env)


def ingest_preconditions() -> list[Precondition]:
    """What an ingest step needs: the archive, and GROBID and the broker when configured."""
    checks: list[Precondition] = [ArchiveReachable()]
    if config.grobid().host:
        checks.append(GrobidAlive())
    if config.kafka().hosts:
        checks.append(BrokerReachable())
    return checks


def run_preconditions() -> list[Precondition]:
    """Everything the whole run needs (required by its first step)."""
    return [*ingest_preconditions(), CatalogWritable()]
