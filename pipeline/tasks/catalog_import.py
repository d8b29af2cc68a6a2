"""The catalog import (docs/delivery.md): a dry run over the sample, then the real import."""

from __future__ import annotations

import logging
import os

from pipeline import config
from pipeline.catalog import is_api_url
from pipeline.catalog.integrity import catalog_identity, header_problem
from pipeline.importer import (
    import_file_meta,
    import_records,
    import_source,
    record_finished,
    restore_finished_run,
    sample_file_meta,
)
from pipeline.jsonio import read_json, write_json
from pipeline.provenance import meta_path, upstream_count
from pipeline.targets import IMPORT_COUNTS, IMPORT_JOURNAL, IMPORT_SAMPLE_COUNTS
from pipeline.tasks.base import BackfillTask
from pipeline.tasks.file_meta import UniqFileMeta
from pipeline.tasks.ingest import IngestSampleResults
from pipeline.tasks.preconditions import CatalogWritable
from pipeline.wiring import (
    import_catalog,
    import_settings,
)

log = logging.getLogger("luigi-interface")


class ImportTask(BackfillTask):
    """Base of the two import steps: an embedded catalog that was removed, or replaced by
    another catalog at the same path, makes them stale.

    Why the identity: the counts target says what was done to one catalog; when
    the file at the path is another catalog (another run built its own over
    it, or it was moved away and loaded again) those edits are not in it, and
    a rerun that said "Did not run any tasks" would leave it unfilled.
    """

    jsonl = False

    def settings(self):
        return import_settings()

    def complete(self) -> bool:
        """Also: an embedded catalog must still be there and look like a whole SQLite file.

        Why: the catalog is a side effect, not a file this step owns (other runs and
        `catalog load` write it too), so its size and mtime are not recorded; a
        removed, truncated or garbage catalog makes the import run again, and the
        catalog's open then refuses a damaged one with one line (never reused).
        """
        spec = config.backfill().catalog_path()
        if not super().complete():
            return False
        if is_api_url(spec):
            return True
        if not os.path.exists(spec) or header_problem(spec) is not None:
            return False
        try:
            recorded = (read_json(meta_path(self.output().path)).get("counts") or {}).get("catalog_id")
        except (OSError, ValueError):
            return False
        return recorded == catalog_identity(spec)


class ImportFileMetaSample(ImportTask):
    """QA dry run of the import over the sample's file_meta: counters only, no write.

    Why: the runbook imported `head -n100` first and read the Counter line
    before the full run; this does the same without touching the catalog,
    so an unexpected share of `skip-no-match` or `skip-existing-complete`
    shows before any editgroup exists. Reads the sample ingest results
    (the merge step's rule picks their file_meta); writes the counters as a
    JSON object. Real run: ~1,000 results, seconds.
    """

    target_name = IMPORT_SAMPLE_COUNTS

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

    target_name = IMPORT_COUNTS

    def requires(self):
        return {"file_meta": UniqFileMeta(), "sample": ImportFileMetaSample(),
                "checks": [CatalogWritable()]}

    def input_files(self):
        # the sample dry run is a QA step, not data: remaking it must not redo the import
        return [self.input()["file_meta"].path]

    def work(self):
        file_meta = self.input()["file_meta"].path
        journal = self.workdir / IMPORT_JOURNAL
        source = import_source(file_meta)
        with import_catalog() as catalog, self.progress(upstream_count(file_meta),
                                                        "records") as p:
            result = import_file_meta(file_meta, catalog, journal_path=journal,
                                      batch_size=config.importer().batch_size,
                                      description=config.importer().description, progress=p,
                                      streams=config.importer().streams)
        # a run over this input that already finished (killed before its sidecar, or its
        # sidecar or counts target removed or damaged): its counts, not this attempt's skips
        result = restore_finished_run(result, journal, catalog.name, source)
        log.info("ImportFileMeta: %r", result.counts)
        write_json(self.output().path, result.counters())
        # the counts target holds the run's totals: only now does the journal close this run
        record_finished(journal, catalog.name, result.counters(), source=source)
        self.finish(result.report())
