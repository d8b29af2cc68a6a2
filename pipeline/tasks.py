"""The pipeline's Luigi tasks: thin wiring from input targets to plain functions.

Run everything with `luigi --module pipeline.tasks Backfill --local-scheduler`,
or any single step by its task name. Each task's docstring says what it does,
why it exists, what it reads, and its size on the real run (521,553 entities
lacking sha256). Targets and their names are docs/targets.md; every target gets a
`.meta.json` provenance sidecar (see `pipeline/base.py`).
"""

from __future__ import annotations

import logging
import os

import luigi

from pipeline import config
from pipeline.base import BackfillTask, InRun, PreflightMixin, tell_scheduler
from pipeline.catalog import is_api_url
from pipeline.checks import StepFailed, format_counts
from pipeline.importer import import_file_meta, import_records, record_finished, sample_file_meta
from pipeline.ingest.run import check_sample_gate, ingest_file, summarise
from pipeline.jsonio import write_json
from pipeline.postprocess.retry import retry_grobid
from pipeline.provenance import read_counts
from pipeline.report import write_report
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.file_hashes import check_export_count
from pipeline.steps.ingest_request import build_requests
from pipeline.steps.merge import merge_results
from pipeline.steps.sample import draw_sample
from pipeline.steps.uniq import uniq_file_meta
from pipeline.targets import IMPORT_JOURNAL, PREFIX
from pipeline.tasks_preconditions import CatalogWritable, ingest_preconditions, run_preconditions
from pipeline.wiring import (
    archive_clients,
    check_grobid,
    grobid_postprocessor,
    import_catalog,
    import_settings,
    ingest_settings,
    ingest_worker,
    open_sink,
    sink_files,
    sink_settings,
)

log = logging.getLogger("luigi-interface")

GROBID_RETRY_STEM = "grobid-retry"


def upstream_count(path: str, key: str = "out") -> int | None:
    """A count the step that made `path` recorded in its sidecar (the next step's total)."""
    try:
        value = read_counts(path)[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None


class InputFile(InRun, luigi.ExternalTask):
    """A file the pipeline reads but does not make (the export, a dump, an earlier batch)."""

    path = luigi.Parameter()

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

    target_name = f"{PREFIX}.json.gz"

    def requires(self):
        # the first step waits for every precondition of the run: nothing works before them
        return {"export": InputFile(config.backfill().export), "checks": run_preconditions()}

    def settings(self):
        return {"export": config.backfill().export}

    def extra_outputs(self):
        return [str(self.workdir / f"{PREFIX}.rejects.json.gz")]

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

    target_name = f"{PREFIX}.ingest_request.json.gz"

    def requires(self):
        return ExportMissingSha256()

    def extra_outputs(self):
        return [str(self.workdir / f"{PREFIX}.ingest_request.rejects.json.gz")]

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

    target_name = f"{PREFIX}.ingest_request.sample.json"

    def requires(self):
        return IngestRequests()

    def settings(self):
        cfg = config.backfill()
        return {"sample_size": cfg.sample_size, "sample_seed": cfg.sample_seed}

    def work(self):
        s = self.settings()
        counts = draw_sample(self.input().path, self.output().path, s["sample_size"], s["sample_seed"])
        self.finish(counts)


# -- ingest (docs/data.md and docs/statuses.md and docs/targets.md) ------------------------------------------------

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

    target_name = f"{PREFIX}.ingest_results.sample.json"

    def requires(self):
        return IngestRequestSample()

    def settings(self):
        return ingest_settings()

    def work(self):
        with self.progress(None, "requests") as p:
            counts = ingest_file(self.input().path, self.output().path, ingest_worker(),
                                 config.ingest().concurrency, progress=p)
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
    sidecar's counts carry `messages` per topic. GROBID takes about a second
    of a GROBID core per PDF; text and thumbnail about 50 ms of one core here.
    """

    shard = luigi.IntParameter()
    shards = luigi.IntParameter()

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
        with open_sink(self.sink_stem()) as sink, self.progress(None, "requests") as p:
            counts = ingest_file(self.input()["requests"].path, self.output().path,
                                 ingest_worker(postprocess=True), config.ingest().concurrency,
                                 self.shard, self.shards, sink=sink, progress=p)
        log.info("Worker: %r", counts)
        log.info("Messages: %r", sink.published)
        write_json(self.counts_path(), dict(counts))
        self.finish(summarise(counts) | {"messages": sink.published})


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


class MergeFileMeta(BackfillTask):
    """Merge every shard's results (and `[backfill] extra_results`) into file_meta records.

    Why: only a result whose fetched sha1 equals the requested sha1 says
    anything true about the catalog's file; everything else is written to
    the rejects file with its reason. Extra result files are earlier batches
    (the runbook's batch1). Real run: ~386k records kept.
    """

    target_name = f"{PREFIX}.file_meta.json.gz"

    def requires(self):
        extras = [InputFile(p) for p in config.backfill().extra_results]
        return {"shards": IngestResults(), "extra": extras}

    def settings(self):
        return {"extra_results": list(config.backfill().extra_results)}

    def extra_outputs(self):
        return [str(self.workdir / f"{PREFIX}.file_meta.rejects.json.gz")]

    def work(self):
        paths = self.input_files()
        shard_totals = [upstream_count(t.path, "in") for t in self.input()["shards"]]
        total = None if self.input()["extra"] or None in shard_totals else sum(shard_totals)
        with self.progress(total, "results") as p:
            counts = merge_results(paths, self.output().path, self.extra_outputs()[0], progress=p)
        self.finish(counts)


class UniqFileMeta(BackfillTask):
    """Keep one file_meta record per sha1hex and report where duplicates came from.

    Why: the catalog import must see each file once; the report separates
    duplicates caused by entities sharing a sha1 from results merged twice.
    Real run: 86,520 duplicate lines.
    """

    target_name = f"{PREFIX}.file_meta.uniq.json.gz"

    def requires(self):
        return {"merged": MergeFileMeta(), "requests": IngestRequests()}

    def extra_outputs(self):
        return [str(self.workdir / f"{PREFIX}.file_meta.dupes.json")]

    def work(self):
        with self.progress(upstream_count(self.input()["merged"].path), "records") as p:
            counts = uniq_file_meta(
                self.input()["merged"].path,
                self.output().path,
                self.extra_outputs()[0],
                self.input()["requests"].path,
                progress=p,
            )
        self.finish(counts)


class CountMissingSha256(BackfillTask):
    """The runbook's count check against a `file_hashes.tsv(.gz)` database dump.

    Why: the export and the database should agree on how many entities lack
    sha256; a difference means a stale export or a broken filter. The
    comparison is written as the target and a mismatch is logged as an error
    (not a failure: the operator decides). Runs only when
    `[backfill] file_hashes` is set.
    """

    target_name = f"{PREFIX}.count_check.json"
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


# -- catalog import (docs/delivery.md) ---------------------------------------------------

class ImportTask(BackfillTask):
    """Base of the two import steps: an embedded catalog that was removed makes them stale."""

    jsonl = False

    def settings(self):
        return import_settings()

    def complete(self) -> bool:
        spec = config.backfill().catalog_path()
        return super().complete() and (is_api_url(spec) or os.path.exists(spec))


class ImportFileMetaSample(ImportTask):
    """QA dry run of the import over the sample's file_meta: counters only, no write.

    Why: the runbook imported `head -n100` first and read the Counter line
    before the full run; this does the same without touching the catalog,
    so an unexpected share of `skip-no-match` or `skip-existing-complete`
    shows before any editgroup exists. Reads the sample ingest results
    (the merge step's rule picks their file_meta); writes the counters as a
    JSON object. Real run: ~1,000 results, seconds.
    """

    target_name = f"{PREFIX}.import.sample.counts.json"

    def requires(self):
        return IngestSampleResults()

    def work(self):
        with import_catalog() as catalog:
            result = import_records(sample_file_meta(self.input().path), catalog, journal_path=None,
                                    batch_size=config.importer().batch_size, dry_run=True,
                                    description=config.importer().description)
        log.info("ImportFileMetaSample (dry run): %r", result.counts)
        write_json(self.output().path, result.counters())
        self.finish(result.report())


class ImportFileMeta(ImportTask):
    """Fill the missing file fields of matching catalog entities, in editgroups of 100.

    Why: the goal of the whole pipeline (docs/delivery.md). Only missing fields are
    filled; editgroups are accepted as they fill up; a killed run is resumed
    from `files_missing_sha256.import.journal.json` with no entity edited
    twice (see `pipeline/importer/`). The counts target is written only
    after the last editgroup is accepted, so its presence means the catalog
    holds every edit. Needs `FATCAT_API_AUTH_TOKEN` when `[backfill] catalog`
    is a fatcat URL. Real run: ~300k updates of ~386k records (runbook:
    ~700 records/s with 8 parallel importers against fatcat); the embedded
    catalog takes ~2k records/s (100k updates in ~55 s here).
    """

    target_name = f"{PREFIX}.import.counts.json"

    def requires(self):
        return {"file_meta": UniqFileMeta(), "sample": ImportFileMetaSample(),
                "checks": [CatalogWritable()]}

    def input_files(self):
        # the sample dry run is a QA step, not data: remaking it must not redo the import
        return [self.input()["file_meta"].path]

    def work(self):
        file_meta = self.input()["file_meta"].path
        with import_catalog() as catalog, self.progress(upstream_count(file_meta),
                                                        "records") as p:
            result = import_file_meta(file_meta, catalog,
                                      journal_path=self.workdir / IMPORT_JOURNAL,
                                      batch_size=config.importer().batch_size,
                                      description=config.importer().description, progress=p)
        log.info("ImportFileMeta: %r", result.counts)
        write_json(self.output().path, result.counters())
        # the counts target holds the run's totals: only now does the journal close this run
        record_finished(self.workdir / IMPORT_JOURNAL, catalog.name, result.counters())
        self.finish(result.report())


class GrobidRetry(BackfillTask):
    """Send the PDFs whose GROBID call failed in any shard to GROBID again.

    Why: GROBID fails in bursts (busy, restarted, timeouts) and a failure
    never fails an ingest; the runbook re-ran them by hand. Collects every
    success whose `grobid.status` is `error` or `error-timeout` (once per
    sha1hex), fetches its bytes from the archive again by its `cdx` row,
    checks the sha1, calls GROBID (alive-checked first) and publishes to the
    sinks (file sink: `sinks/<topic>/grobid-retry.json.gz`). Writes one line
    per PDF with the previous and new `grobid`; counts by new status. Runs in
    `Backfill` only when `[grobid] host` is set. To retry again later, delete
    its target. Real run: as many PDFs as GROBID failed, about a second each.
    """

    target_name = f"{PREFIX}.grobid_retry.json.gz"

    def requires(self):
        return IngestResults()

    def settings(self):
        return sink_settings()

    def extra_outputs(self):
        return sink_files(GROBID_RETRY_STEM)

    def work(self):
        check_grobid(required=True)
        _, content = archive_clients()
        with open_sink(GROBID_RETRY_STEM) as sink:
            counts = retry_grobid(self.input_files(), self.output().path, content,
                                  grobid_postprocessor(), sink, config.ingest().max_body_bytes,
                                  config.grobid().concurrency)
        log.info("GrobidRetry: %r", counts)
        self.finish(counts)


def step_targets(root: luigi.Task) -> list[str]:
    """The target of every step below `root` (each once), dependencies first."""
    seen: set[str] = set()
    targets: list[str] = []

    def visit(task: luigi.Task) -> None:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        for dep in luigi.task.flatten(task.requires()):
            visit(dep)
        if isinstance(task, BackfillTask):
            targets.append(task.output().path)

    for dep in luigi.task.flatten(root.requires()):
        visit(dep)
    return targets


class BackfillReport(BackfillTask):
    """The run report: `report.html` (charts embedded) and `report.json` in the work directory.

    Why: after days of running, one page must say where every entity went:
    each step's in/out/rejects by reason, the ingest status histogram per shard
    and overall, the duplicates analysis, the import's counters, each step's
    duration and rate, and whether the hand-offs between steps add up. Every
    figure is read from the steps' sidecars (see `pipeline/report/`). Seconds.
    """

    target_name = "report.json"
    jsonl = False

    def requires(self):
        steps = [IngestRequestSample(), ImportFileMeta()]
        if config.backfill().file_hashes:
            steps.append(CountMissingSha256())
        if config.grobid().host:
            steps.append(GrobidRetry())
        return steps

    def extra_outputs(self):
        return [str(self.workdir / "report.html")]

    def work(self):
        report = write_report(self.workdir, self.output().path, self.extra_outputs()[0],
                              targets=step_targets(self))
        bad = [c["check"] for c in report["consistency"] if not c["ok"]]
        if bad:
            log.error("run report: hand-offs that do not add up: %s", "; ".join(bad))
        log.info("run report: %s", self.extra_outputs()[0])
        self.finish({"steps": len(report["steps"]), "hand_offs_ok": not bad})


class Backfill(PreflightMixin, InRun, luigi.WrapperTask):
    """The whole pipeline, up to and including the catalog import, and its run report."""

    def requires(self):
        return [BackfillReport()]

    def run(self):
        imported = read_counts(ImportFileMeta().output().path)
        tell_scheduler(self, f"done: import {format_counts(imported)}; report "
                             f"{BackfillReport().extra_outputs()[0]}", 100.0)
