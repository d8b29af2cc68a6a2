"""The pipeline's Luigi tasks: thin wiring from input targets to plain functions.

Run everything with `luigi --module pipeline.tasks Backfill --local-scheduler`,
or any single step by its task name. Each task's docstring says what it does,
why it exists, what it reads, and its size on the real run (521,553 entities
lacking sha256). Targets and their names are docs/targets.md; every target gets a
`.meta.json` provenance sidecar (see `pipeline/tasks/base.py`).

One module per stage: `prepare` (export filter, requests, sample, count
check), `ingest` (sample QA gate, shards, the retry pass, GROBID retry), `file_meta` (merge,
uniq), `catalog_import`, `run` (report, `Backfill`), and `preconditions`.
Importing this package registers every task with Luigi.
"""

from pipeline.tasks.catalog_import import ImportFileMeta, ImportFileMetaSample, ImportTask
from pipeline.tasks.file_meta import MergeFileMeta, UniqFileMeta
from pipeline.tasks.ingest import (
    GrobidRetry,
    IngestResults,
    IngestRetry,
    IngestSampleResults,
    IngestShard,
)
from pipeline.tasks.preconditions import (
    ArchiveReachable,
    BrokerReachable,
    CatalogWritable,
    GrobidAlive,
    Precondition,
)
from pipeline.tasks.prepare import (
    CountMissingSha256,
    ExportMissingSha256,
    IngestRequests,
    IngestRequestSample,
    InputFile,
)
from pipeline.tasks.run import Backfill, BackfillReport

__all__ = [
    "ArchiveReachable", "Backfill", "BackfillReport", "BrokerReachable", "CatalogWritable",
    "CountMissingSha256", "ExportMissingSha256", "GrobidAlive", "GrobidRetry", "ImportFileMeta",
    "ImportFileMetaSample", "ImportTask", "IngestRequestSample", "IngestRequests", "IngestResults",
    "IngestRetry", "IngestSampleResults", "IngestShard", "InputFile", "MergeFileMeta", "Precondition",
    "UniqFileMeta",
]
