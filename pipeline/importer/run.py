"""Running one import: the input file checked, the locks held, a killed run settled, true totals.

Why apart from the editgroup loop (`importer.py`): this is what a task or the
CLI calls. It holds the one-importer locks (docs/delivery.md), lets
`FileMetaImporter` recover and run, then counts the edits of killed earlier
attempts of the same run as updates, so the counts target holds the run's
totals; `record_finished` closes the run in the journal once that target
is written.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.catalog.base import Catalog
from pipeline.catalog.factory import catalog_lock, is_api_url
from pipeline.checks import StepFailed
from pipeline.importer.importer import (
    DEFAULT_DESCRIPTION,
    FileMetaImporter,
    Recovery,
    check_counts,
)
from pipeline.importer.journal import FINISHED, ImportJournal
from pipeline.importer.records import check_file_meta, iter_file_meta
from pipeline.progress import Progress, counting
from pipeline.runlock import RunLock

log = logging.getLogger(__name__)


@dataclass
class ImportResult:
    counts: Counter
    editgroups: list[str]
    recovery: Recovery
    dry_run: bool
    catalog_id: str | None = None  # the identity of the catalog written to (Catalog.identity)

    def counters(self) -> dict[str, int]:
        """The counts target of docs/targets.md: a JSON object of the counters, nothing else."""
        return dict(self.counts)

    def report(self) -> dict[str, Any]:
        """The counters plus how the run went (for the provenance sidecar)."""
        return {**self.counters(), "editgroups": len(self.editgroups),
                "recovery": self.recovery.as_dict(), "dry_run": self.dry_run,
                "catalog_id": self.catalog_id}


def import_file_meta(path: str | os.PathLike, catalog: Catalog, *, journal_path: str | os.PathLike | None,
                     batch_size: int = 100, description: str = DEFAULT_DESCRIPTION,
                     dry_run: bool = False, progress: Progress | None = None) -> ImportResult:
    """Import a file_meta file into `catalog`: check it, settle a killed run's editgroups, run."""
    n_records = check_file_meta(path)
    result = import_records(counting(iter_file_meta(path), progress), catalog, journal_path=journal_path,
                            batch_size=batch_size, description=description, dry_run=dry_run)
    if result.counts["total"] != n_records:
        raise StepFailed(f"import of {os.fspath(path)}: read {result.counts['total']} of {n_records} records")
    log.info("import of %s%s: %r", os.fspath(path), " (dry run)" if dry_run else "", result.counts)
    return result


def import_records(records: Iterable[dict[str, Any]], catalog: Catalog, *,
                   journal_path: str | os.PathLike | None, batch_size: int = 100,
                   description: str = DEFAULT_DESCRIPTION, dry_run: bool = False) -> ImportResult:
    """Import file_meta records; a real run first settles editgroups its journal left open.

    A real run holds the catalog's lock (an embedded catalog) and the
    journal's lock for its whole length: a second importer fails at once with
    `LockHeld` instead of editing entities twice.
    """
    if dry_run:
        return _import(records, catalog, None, batch_size, description, dry_run)
    catalog.check_writable()
    locks = []
    if journal_path:
        locks.append(RunLock(f"{os.fspath(journal_path)}.lock", f"import journal {os.fspath(journal_path)}"))
    if not is_api_url(str(catalog.name)):
        locks.append(catalog_lock(catalog.name))
    for lock in locks:
        try:
            lock.acquire()
        except BaseException:
            for held in locks:
                held.release()
            raise
    try:
        journal = ImportJournal(journal_path) if journal_path else None
        return _import(records, catalog, journal, batch_size, description, dry_run)
    finally:
        for lock in reversed(locks):
            lock.release()


def _import(records: Iterable[dict[str, Any]], catalog: Catalog, journal: ImportJournal | None,
            batch_size: int, description: str, dry_run: bool) -> ImportResult:
    importer = FileMetaImporter(catalog, batch_size=batch_size, description=description,
                                dry_run=dry_run, journal=journal)
    importer.check_no_other_run()
    recovery = importer.recover()
    counts = importer.run(records)
    editgroups = importer.editgroups
    if journal is not None:
        counts = add_earlier_attempts(counts, journal, catalog.name, recovery)
        editgroups = journal.editgroups_since_finished(catalog.name)  # killed attempts' too
    return ImportResult(counts=counts, editgroups=editgroups, recovery=recovery,
                        dry_run=dry_run, catalog_id=catalog.identity())


def record_finished(journal_path: str | os.PathLike, catalog_name: str, counts: dict) -> None:
    """Close the import run in its journal, once its counts target is written: a later import
    starts a new run (a kill before this line resumes the same run and counts its edits)."""
    ImportJournal(journal_path).record(FINISHED, None, catalog_name, counts=dict(counts))


def add_earlier_attempts(counts: Counter, journal: ImportJournal, name: str,
                         recovery: Recovery) -> Counter:
    """The run's true totals: edits accepted by killed attempts and by recovery are updates.

    This attempt saw those entities already complete (`skip-existing-complete`),
    so each such edit moves from there to `update`: the counters then equal
    those of a run that was never killed.
    """
    earlier = journal.accepted_since_finished(name) - counts["update"]
    if earlier <= 0:
        return counts
    if earlier > counts["skip-existing-complete"]:
        log.warning("journal %s shows %d edits by earlier attempts, more than this run's %d "
                    "skip-existing-complete: counters left as this attempt saw them", journal.path,
                    earlier, counts["skip-existing-complete"])
        return counts
    counts["update"] += earlier
    counts["skip-existing-complete"] -= earlier
    recovery.earlier_edits = earlier
    log.info("import resumed: %d edits accepted by earlier attempts of this run are counted "
             "as updates", earlier)
    check_counts(counts)
    return counts


