"""The catalog import: fill the missing file fields of matching entities, exactly once.

- `importer`: the editgroup loop and its counters;
- `recovery`: the editgroups a killed run left open, settled before a run starts;
- `run`: one import as tasks and the CLI run it (input checked, locks, true totals);
- `records`: which file_meta records are wanted, and the checks of the input file;
- `entity`: what the import does to one entity (fill missing fields, clean URLs);
- `journal`: the append-only record of the editgroups an import opened and accepted.

The backends it writes to are `pipeline.catalog`; the rules are docs/delivery.md.
"""

from pipeline.importer.counters import new_counter
from pipeline.importer.importer import AGENT, DEFAULT_DESCRIPTION, FileMetaImporter
from pipeline.importer.records import sample_file_meta, want_reason
from pipeline.importer.run import (
    ImportResult,
    import_file_meta,
    import_records,
    import_source,
    record_finished,
    restore_finished_run,
)

__all__ = ["AGENT", "DEFAULT_DESCRIPTION", "FileMetaImporter", "ImportResult", "import_file_meta",
           "import_records", "import_source", "new_counter", "record_finished",
           "restore_finished_run", "sample_file_meta", "want_reason"]
