"""The top of the pipeline: the run report and `Backfill`, which requires everything."""

from __future__ import annotations

import logging

import luigi

from pipeline import config
from pipeline.checks import format_counts
from pipeline.provenance import read_counts
from pipeline.report import write_report
from pipeline.targets import REPORT_HTML, REPORT_JSON
from pipeline.tasks.base import BackfillTask, walk_steps
from pipeline.tasks.catalog_import import ImportFileMeta
from pipeline.tasks.ingest import GrobidRetry
from pipeline.tasks.prepare import CountMissingSha256, IngestRequestSample
from pipeline.tasks.run_identity import InRun, tell_scheduler
from pipeline.tasks.settings_gate import PreflightMixin

log = logging.getLogger("luigi-interface")


class BackfillReport(BackfillTask):
    """The run report: `report.html` (charts embedded) and `report.json` in the work directory.

    Why: after days of running, one page must say where every entity went:
    each step's in/out/rejects by reason, the ingest status histogram per shard
    and overall with the failures charted apart, GROBID's outcomes and the
    messages each sink stored, the duplicates analysis, the import's counters,
    the run's total and per-step times, and whether the hand-offs between steps
    add up. Every figure is read from the steps' sidecars (see
    `pipeline/report/`). Charts are written as SVG text: about 0.1 s.
    """

    target_name = REPORT_JSON
    jsonl = False

    def requires(self):
        steps = [IngestRequestSample(), ImportFileMeta()]
        if config.backfill().file_hashes:
            steps.append(CountMissingSha256())
        if config.grobid().host:
            steps.append(GrobidRetry())
        return steps

    def extra_outputs(self):
        return [str(self.workdir / REPORT_HTML)]

    def work(self):
        report = write_report(self.workdir, self.output().path, self.extra_outputs()[0],
                              targets=[t.output().path for t in walk_steps(self) if t is not self])
        bad = [c["check"] for c in report["consistency"] if not c["ok"]]
        if bad:
            log.error("run report: hand-offs that do not add up: %s", "; ".join(bad))
        for why in report["outcome"]["why"]:
            log.warning("partial run: %s", why)
        log.info("run report: %s", self.extra_outputs()[0])
        self.finish({"steps": len(report["steps"]), "hand_offs_ok": not bad,
                     "partial": report["outcome"]["partial"]})


class Backfill(PreflightMixin, InRun, luigi.WrapperTask):
    """The whole pipeline, up to and including the catalog import, and its run report."""

    def requires(self):
        return [BackfillReport()]

    def run(self):
        imported = read_counts(ImportFileMeta().output().path)
        partial = "PARTIAL (see the report's outcome); " if read_counts(
            BackfillReport().output().path).get("partial") else ""
        tell_scheduler(self, f"done: {partial}import {format_counts(imported)}; report "
                             f"{BackfillReport().extra_outputs()[0]}", 100.0)
