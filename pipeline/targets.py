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

# The import's journal of editgroups (under the work directory).
IMPORT_JOURNAL = f"{PREFIX}.import.journal.json"

# The retry pass's results (IngestRetry): one line per request ingested again.
INGEST_RETRY = f"{PREFIX}.ingest_retry.json.gz"
