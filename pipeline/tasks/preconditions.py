"""Precondition tasks: the archive, the catalog, GROBID and the broker, checked before any work.

Why: a missing token or a down service must stop a run in seconds, before
the export is filtered or a shard ingested, with a message that says what is
wrong and how to fix it (see `pipeline/preconditions.py` for the checks).

How they fit Luigi: the steps say what they need (`ExportMissingSha256`,
the first step, requires every precondition of the run; `IngestShard` and
`ImportFileMeta` require their own, so rerunning one of them alone checks
what it needs); a precondition knows nothing of the steps. A precondition
is complete when its check passed, and the check runs once per process (see
`preconditions.checked_once`): the scheduler's question probes the service,
the task's `run()` and any later asking reuse the answer. When the check
fails the task is scheduled, and its `run()` raises the check's message: the
task fails (exit code `task_failed`) and nothing that requires it runs.

A finished run checks nothing, so a rerun stays a no-op with a service down:
Luigi never asks a complete task for its requirements, and every step that
requires a check is complete.
"""

from __future__ import annotations

import luigi

from pipeline import config, preconditions
from pipeline.tasks.run_identity import InRun, tell_scheduler


class Precondition(InRun, luigi.Task):
    """Base of the checks: complete when the check passed (probed once per process)."""

    def key(self) -> tuple:
        raise NotImplementedError

    def check(self) -> str:
        raise NotImplementedError

    def output(self):
        return []  # nothing on disk: the answer is the service's, in this run

    def result(self) -> tuple[str | None, str | None]:
        return preconditions.checked_once((type(self).__name__, *self.key()), self.check)

    def complete(self) -> bool:
        ok, _ = self.result()
        return ok is not None

    def run(self):
        ok, problem = self.result()
        if problem is not None:
            raise preconditions.PreconditionFailed(f"{self.task_family}: {problem}")
        tell_scheduler(self, f"done: {ok}", 100.0)


class ArchiveReachable(Precondition):
    """The web archive answers one CDX lookup and serves one capture (`[backfill] archive`)."""

    def key(self):
        ingest = config.ingest()
        return (config.backfill().archive, ingest.cdx_dialect, ingest.warc_base,
                config.backfill().export)

    def check(self):
        return preconditions.check_archive(config.backfill().archive, config.ingest(),
                                           config.backfill().export)


class CatalogWritable(Precondition):
    """The import can write to the catalog: token set (fatcat API) or file writable (SQLite)."""

    def key(self):
        return (config.backfill().catalog_path(),)

    def check(self):
        return preconditions.check_catalog(config.backfill().catalog_path())


class GrobidAlive(Precondition):
    """GROBID answers `/api/isalive` (only when `[grobid] host` is set)."""

    def result(self):
        return preconditions.grobid_alive(config.grobid().host)  # the shards ask the same


class BrokerReachable(Precondition):
    """The Kafka brokers answer with the run's topics (only when `[kafka] hosts` is set)."""

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
