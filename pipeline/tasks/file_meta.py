"""After the ingest: merge the shards' results into file_meta records, then one per sha1."""

from __future__ import annotations

from pipeline import config
from pipeline.ingest.retrypass import latest_results
from pipeline.provenance import upstream_count
from pipeline.steps.merge import merge_results
from pipeline.steps.uniq import uniq_file_meta
from pipeline.targets import FILE_META, FILE_META_DUPES, FILE_META_REJECTS, FILE_META_UNIQ
from pipeline.tasks.base import BackfillTask
from pipeline.tasks.ingest import IngestResults, IngestRetry
from pipeline.tasks.prepare import IngestRequests, InputFile


class MergeFileMeta(BackfillTask):
    """Merge every shard's results (and `[backfill] extra_results`) into file_meta records.

    Why: only a result whose fetched sha1 equals the requested sha1 says
    anything true about the catalog's file; everything else is written to
    the rejects file with its reason. Extra result files are earlier batches
    (the runbook's batch1). A request the retry pass (`IngestRetry`) ingested
    again is merged with that newer result, in its shard's place. Real run:
    ~386k records kept.
    """

    target_name = FILE_META

    def requires(self):
        extras = [InputFile(p) for p in config.backfill().extra_results]
        return {"shards": IngestResults(), "retry": IngestRetry(), "extra": extras}

    def settings(self):
        return {"extra_results": list(config.backfill().extra_results)}

    def extra_outputs(self):
        return [str(self.workdir / FILE_META_REJECTS)]

    def work(self):
        paths = [t.path for t in self.input()["shards"]] + [t.path for t in self.input()["extra"]]
        latest = latest_results(self.input()["retry"].path)
        shard_totals = [upstream_count(t.path, "in") for t in self.input()["shards"]]
        total = None if self.input()["extra"] or None in shard_totals else sum(shard_totals)
        with self.progress(total, "results") as p:
            counts = merge_results(paths, self.output().path, self.extra_outputs()[0], progress=p,
                                   latest=latest)
        self.finish(counts)


class UniqFileMeta(BackfillTask):
    """Keep one file_meta record per sha1hex and report where duplicates came from.

    Why: the catalog import must see each file once; the report separates
    duplicates caused by entities sharing a sha1 from results merged twice.
    Real run: 86,520 duplicate lines.
    """

    target_name = FILE_META_UNIQ

    def requires(self):
        return {"merged": MergeFileMeta(), "requests": IngestRequests()}

    def extra_outputs(self):
        return [str(self.workdir / FILE_META_DUPES)]

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
