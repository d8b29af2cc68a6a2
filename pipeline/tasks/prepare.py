"""Steps before the ingest: select the entities lacking sha256, build requests, draw the sample,
and the runbook's count check against a database dump."""

from __future__ import annotations

import luigi

from pipeline import config
from pipeline.jsonio import write_json
from pipeline.provenance import read_counts, upstream_count
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.file_hashes import check_export_count
from pipeline.steps.ingest_request import build_requests
from pipeline.steps.sample import draw_sample
from pipeline.targets import (
    COUNT_CHECK,
    EXPORT,
    EXPORT_REJECTS,
    INGEST_REQUEST_REJECTS,
    INGEST_REQUEST_SAMPLE,
    INGEST_REQUESTS,
)
from pipeline.tasks.base import BackfillTask
from pipeline.tasks.preconditions import run_preconditions
from pipeline.tasks.run_identity import InRun


class InputFile(InRun, luigi.ExternalTask):
    """A file the pipeline reads but does not make (the export, a dump, an earlier batch)."""

    path = luigi.Parameter(description="an input file the run reads but does not make")

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.path)


class ExportMissingSha256(BackfillTask):
    """Select the export's file entities that lack sha256.

    Why: only these need the archive round trip; the runbook did it with
    `zcat | rg -v '"sha256":'`, which cannot see `"sha256": ""` and drops
    broken lines without a trace. Reads `[backfill] export` (gzip or plain).
    Writes the selected lines unchanged, plus a rejects file for lines that
    are not JSON objects. Real run: ~3.5M entities in, 521,553 out.
    """

    target_name = EXPORT

    def requires(self):
        # the first step waits for every precondition of the run: nothing works before them
        return {"export": InputFile(config.backfill().export), "checks": run_preconditions()}

    def settings(self):
        return {"export": config.backfill().export}

    def extra_outputs(self):
        return [str(self.workdir / EXPORT_REJECTS)]

    def work(self):
        with self.progress(None, "export lines") as p:
            counts = filter_missing_sha256(self.input()["export"].path, self.output().path,
                                           self.extra_outputs()[0], progress=p)
        self.finish(counts)


class IngestRequests(BackfillTask):
    """Turn each entity lacking sha256 into an ingest request (docs/data.md).

    Why: the ingest worker speaks requests, not entities; the first usable
    (non-wayback) URL becomes `base_url`. Entities that cannot be ingested
    (not a PDF, not active, no usable URL, no sha1) go to the rejects file
    with their reason. Real run: ~2k of 521,553 rejected.
    """

    target_name = INGEST_REQUESTS

    def requires(self):
        return ExportMissingSha256()

    def extra_outputs(self):
        return [str(self.workdir / INGEST_REQUEST_REJECTS)]

    def work(self):
        with self.progress(upstream_count(self.input().path), "entities") as p:
            counts = build_requests(self.input().path, self.output().path,
                                    self.extra_outputs()[0], progress=p)
        self.finish(counts)


class IngestRequestSample(BackfillTask):
    """Draw the reproducible warm-up sample (`[backfill] sample_size`, `sample_seed`).

    Why: the sample is ingested first as a QA gate before hours of full
    ingest; the same seed gives the same bytes, so sample runs can be
    compared across code versions. Real run: 1,000 requests.
    """

    target_name = INGEST_REQUEST_SAMPLE

    def requires(self):
        return IngestRequests()

    def settings(self):
        cfg = config.backfill()
        return {"sample_size": cfg.sample_size, "sample_seed": cfg.sample_seed}

    def work(self):
        s = self.settings()
        counts = draw_sample(self.input().path, self.output().path, s["sample_size"], s["sample_seed"])
        self.finish(counts)


class CountMissingSha256(BackfillTask):
    """The runbook's count check against a `file_hashes.tsv(.gz)` database dump.

    Why: the export and the database should agree on how many entities lack
    sha256; a difference means a stale export or a broken filter. The
    comparison is written as the target and a mismatch is logged as an error
    (not a failure: the operator decides). Runs only when
    `[backfill] file_hashes` is set.
    """

    target_name = COUNT_CHECK
    jsonl = False

    def requires(self):
        return {
            "file_hashes": InputFile(config.backfill().file_hashes),
            "export": ExportMissingSha256(),
        }

    def settings(self):
        return {"file_hashes": config.backfill().file_hashes}

    def work(self):
        export_counts = read_counts(self.input()["export"].path)
        result = check_export_count(self.input()["file_hashes"].path, export_counts["out"])
        write_json(self.output().path, result)
        self.finish(result)
