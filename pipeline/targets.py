"""Where things live: the names of the targets under the work directory, and default inputs.

Why one module: a target name is an interface (operators, later runs and
other tools find files by it; docs/targets.md lists them), so each is
written once, here, and the tasks, the CLI and the wiring read it from here.
The default inputs are the sample world that `make world` generates, so a
fresh clone runs `make demo` with no configuration.
"""

from __future__ import annotations

DEFAULT_WORKDIR = "data/work"
SAMPLE_WORLD = "data/world"
SAMPLE_EXPORT = f"{SAMPLE_WORLD}/file_export.json.gz"
SAMPLE_ARCHIVE = f"{SAMPLE_WORLD}/collection"

PREFIX = "files_missing_sha256"

# The steps' targets and companion files, under the work directory (docs/targets.md).
EXPORT = f"{PREFIX}.json.gz"
EXPORT_REJECTS = f"{PREFIX}.rejects.json.gz"
INGEST_REQUESTS = f"{PREFIX}.ingest_request.json.gz"
INGEST_REQUEST_REJECTS = f"{PREFIX}.ingest_request.rejects.json.gz"
INGEST_REQUEST_SAMPLE = f"{PREFIX}.ingest_request.sample.json"
INGEST_SAMPLE_RESULTS = f"{PREFIX}.ingest_results.sample.json"
GROBID_RETRY = f"{PREFIX}.grobid_retry.json.gz"
COUNT_CHECK = f"{PREFIX}.count_check.json"
FILE_META = f"{PREFIX}.file_meta.json.gz"
FILE_META_REJECTS = f"{PREFIX}.file_meta.rejects.json.gz"
FILE_META_UNIQ = f"{PREFIX}.file_meta.uniq.json.gz"
FILE_META_DUPES = f"{PREFIX}.file_meta.dupes.json"
IMPORT_SAMPLE_COUNTS = f"{PREFIX}.import.sample.counts.json"
IMPORT_COUNTS = f"{PREFIX}.import.counts.json"
# The import's journal of editgroups.
IMPORT_JOURNAL = f"{PREFIX}.import.journal.json"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"

# The retry pass's results (IngestRetry): one line per request ingested again.
INGEST_RETRY = f"{PREFIX}.ingest_retry.json.gz"
