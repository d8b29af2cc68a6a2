"""The ingest steps: the warm-up sample (the QA gate), the shards, and the GROBID retry."""

from __future__ import annotations

import logging

import luigi

from pipeline import config
from pipeline.checks import StepFailed
from pipeline.ingest.retrypass import retry_transient
from pipeline.ingest.run import check_sample_gate, ingest_file, summarise
from pipeline.jsonio import write_json
from pipeline.postprocess.retry import count_failures, retry_grobid
from pipeline.provenance import read_counts, upstream_count
from pipeline.targets import GROBID_RETRY, INGEST_RETRY, INGEST_SAMPLE_RESULTS
from pipeline.tasks.base import BackfillTask
from pipeline.tasks.preconditions import ingest_preconditions
from pipeline.tasks.prepare import IngestRequests, IngestRequestSample
from pipeline.tasks.run_identity import InRun, tell_scheduler
from pipeline.tasks.settings_gate import PreflightMixin
from pipeline.wiring import (
    archive_clients,
    archive_note,
    check_grobid,
    grobid_postprocessor,
    ingest_processes,
    ingest_settings,
    ingest_worker,
    open_sink,
    sink_files,
    sink_settings,
)

log = logging.getLogger("luigi-interface")


GROBID_RETRY_STEM = "grobid-retry"


def archive_pass(task: BackfillTask, ingest, source, *, patient: bool = False):
    """Run `ingest(source, task's target, worker, concurrency, progress=...)` with an
    archive-only worker (no GROBID, text extraction or sinks) under the task's progress
    reports, and return its counts: what the warm-up sample and the retry pass share."""
    worker = ingest_worker(patient=patient)
    with task.progress(None, "requests") as p:
        p.add_note(archive_note(worker))
        return ingest(source, task.output().path, worker, config.ingest().concurrency, progress=p,
                      processes=ingest_processes(worker))


class IngestSampleResults(BackfillTask):
    """Ingest the warm-up sample first: the QA gate in front of the full run.

    Why: a wrong archive setting or a regression shows here within minutes,
    not after hours of shards; `IngestShard` refuses to start when the
    sample's success rate is below `[backfill] sample_min_success`. Writes
    plain JSON lines (one docs/data.md result per request, in sample order); the
    sidecar counts carry the status histogram. No GROBID, text extraction
    or sinks here (results say `grobid: disabled`): the sample's PDFs are in
    the shards, which do all of that. Real run: 1,000 requests.
    """

    target_name = INGEST_SAMPLE_RESULTS

    def requires(self):
        return IngestRequestSample()

    def settings(self):
        return ingest_settings()

    def work(self):
        counts = archive_pass(self, ingest_file, self.input().path)
        log.info("Worker: %r", counts)
        self.finish(summarise(counts))


class IngestShard(BackfillTask):
    """Ingest one round-robin shard of all requests (`shard` of `shards`, from 0).

    Why: the real run had 521k requests on 24 parallel workers; shards let
    them run (and fail, and rerun) independently. Each writes
    `ingest_results/shard-NNN-of-MMM.json.gz` (results in request order) and
    `shard-NNN-of-MMM.counts.json` beside it (the status Counter), and logs
    the runbook's `Worker: Counter({...})` line. Refuses to start when the
    sample QA gate failed. Real run: ~21.7k requests per shard.

    Every PDF also goes to GROBID (when `[grobid] host` is set; checked alive
    before the first request) and to text extraction; their outputs go to the
    shard's sink (Kafka topics, or `sinks/<topic>/shard-NNN-of-MMM.*` files),
    which is closed, every message acknowledged, before the shard's target is
    published: a failed delivery fails the shard and writes no target. The
    sidecar's counts carry `messages` per topic and the GROBID statuses and
    error codes published (`grobid`, `grobid_error_codes`: the run report's
    GROBID section, which cannot read a Kafka topic back). GROBID takes about a second
    of a GROBID core per PDF; text and thumbnail about 50 ms of one core here.
    """

    shard = luigi.IntParameter(description="this shard's number, 0..shards-1")
    shards = luigi.IntParameter(description="how many shards the requests are dealt into")

    @property
    def target_name(self) -> str:
        return f"ingest_results/shard-{self.shard:03d}-of-{self.shards:03d}.json.gz"

    def requires(self):
        return {"requests": IngestRequests(), "sample": IngestSampleResults(),
                "checks": ingest_preconditions()}

    def input_files(self):
        # the sample is a gate, not data: remaking it must not invalidate finished shards
        return [self.input()["requests"].path]

    def settings(self):
        return {**ingest_settings(), **sink_settings()}

    def counts_path(self) -> str:
        return self.output().path[: -len(".json.gz")] + ".counts.json"

    def sink_stem(self) -> str:
        return f"shard-{self.shard:03d}-of-{self.shards:03d}"

    def extra_outputs(self):
        return [self.counts_path(), *sink_files(self.sink_stem())]

    def work(self):
        if not 0 <= self.shard < self.shards:
            raise StepFailed(f"shard {self.shard} is not in 0..{self.shards - 1}")
        sample = self.input()["sample"].path
        check_sample_gate(read_counts(sample),
                          config.backfill().sample_min_success, sample)
        check_grobid()
        worker = ingest_worker(postprocess=True)
        with open_sink(self.sink_stem()) as sink, self.progress(None, "requests") as p:
            p.add_note(archive_note(worker))
            counts = ingest_file(self.input()["requests"].path, self.output().path,
                                 worker, config.ingest().concurrency,
                                 self.shard, self.shards, sink=sink, progress=p,
                                 processes=ingest_processes(worker))
        log.info("Worker: %r", counts)
        log.info("Messages: %r", sink.published)
        write_json(self.counts_path(), dict(counts))
        self.finish(summarise(counts) | {"messages": sink.published} | sink.grobid_counts())


class IngestResults(PreflightMixin, InRun, luigi.WrapperTask):
    """Every ingest shard (`[backfill] shards` of them); its output is the list of shard files."""

    def requires(self):
        n = config.backfill().shards
        if n < 1:
            raise StepFailed(f"[backfill] shards must be >= 1, got {n}")
        return [IngestShard(shard=i, shards=n) for i in range(n)]

    def output(self):
        return [task.output() for task in self.requires()]

    def run(self):
        totals = [upstream_count(t.path, "in") or 0 for t in self.output()]
        tell_scheduler(self, f"done: {len(totals)} shards, {sum(totals):,} requests "
                             f"({', '.join(f'{n:,}' for n in totals)})", 100.0)


class IngestRetry(BackfillTask):
    """Ingest again, patiently, every request whose shard status is transient.

    Why: `cdx-error`, `wayback-error` and `error` say the archive (or our
    code) failed to answer, not what it holds: a 5xx burst, a 429 storm, an
    outage shorter than `[ingest] outage_seconds` that still cost a request its
    retries. After the shards, this asks again for just those requests, with
    `[ingest] retry_pass_retries` retries each (the other patience settings as
    the shards'), and writes `files_missing_sha256.ingest_retry.json.gz`: one
    line per retried request with its shard, line, previous and new status and
    new result. `MergeFileMeta` takes each request's latest result. Its counts
    carry the status histogram of all results before and after the pass (the
    report shows both). No GROBID or sinks here: a recovered PDF's GROBID call
    is GrobidRetry's business. To ask again later (the archive recovered
    further), delete its target: only what is still transient in the shards
    is asked for again, and everything after it reruns.
    """

    target_name = INGEST_RETRY

    def requires(self):
        return IngestResults()

    def settings(self):
        return ingest_settings()

    def work(self):
        counts = archive_pass(self, retry_transient, self.input_files(), patient=True)
        log.info("IngestRetry: %r", counts)
        self.finish(counts)


class GrobidRetry(BackfillTask):
    """Send the PDFs whose GROBID call failed in any shard to GROBID again.

    Why: GROBID fails in bursts (busy, restarted, timeouts) and a failure
    never fails an ingest; the runbook re-ran them by hand. Collects every
    success whose `grobid.status` is `error` or `error-timeout` (once per
    sha1hex), fetches its bytes from the archive again by its `cdx` row,
    checks the sha1, calls GROBID (alive-checked first) and publishes to the
    sinks (file sink: `sinks/<topic>/grobid-retry.json.gz`). Writes one line
    per PDF with the previous and new `grobid`; counts by new status. Runs in
    `Backfill` only when `[grobid] host` is set. A pass in which GROBID did not
    answer (no connection, timeouts, 502/503/504) publishes nothing and fails
    saying how many PDFs still have errors, so rerunning `Backfill` once GROBID
    is back retries them (it used to complete during the outage, with nothing
    left to retry). To retry GROBID's own refusals again later, delete its
    target. Real run: as many PDFs as GROBID failed, about a second each.
    """

    target_name = GROBID_RETRY

    def requires(self):
        return IngestResults()

    def settings(self):
        return sink_settings()

    def extra_outputs(self):
        return sink_files(GROBID_RETRY_STEM)

    def work(self):
        try:
            check_grobid(required=True)
        except StepFailed as e:
            if not config.grobid().host:
                raise
            waiting = count_failures(self.input_files())
            raise StepFailed(f"{waiting} PDFs still have GROBID errors; {e}") from e
        _, content = archive_clients()
        with open_sink(GROBID_RETRY_STEM) as sink:
            counts = retry_grobid(self.input_files(), self.output().path, content,
                                  grobid_postprocessor(), sink, config.ingest().max_body_bytes,
                                  config.grobid().concurrency)
        log.info("GrobidRetry: %r", counts)
        self.finish(counts)
