"""Running one import: the input file checked, the locks held, a killed run settled, true totals.

Why apart from the editgroup loop (`importer.py`): this is what a task or the
CLI calls. It holds the one-importer locks (docs/delivery.md), lets
`pipeline.importer.recovery` settle a killed run and `FileMetaImporter` run, then counts the edits of killed earlier
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
from pipeline.checks import StepFailed
from pipeline.importer.counters import check_counts
from pipeline.importer.importer import BATCH_SIZE, DEFAULT_DESCRIPTION, FileMetaImporter
from pipeline.importer.journal import FINISHED, ImportJournal
from pipeline.importer.records import check_file_meta, iter_file_meta
from pipeline.importer.recovery import Recovery, recover
from pipeline.importer.streams import run_streams
from pipeline.progress import Progress, counting
from pipeline.provenance import current_digest
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
                     batch_size: int = BATCH_SIZE, description: str = DEFAULT_DESCRIPTION,
                     dry_run: bool = False, progress: Progress | None = None,
                     streams: int = 1) -> ImportResult:
    """Import a file_meta file into `catalog`: check it, settle a killed run's editgroups, run."""
    n_records = check_file_meta(path)
    result = import_records(counting(iter_file_meta(path), progress), catalog, journal_path=journal_path,
                            batch_size=batch_size, description=description, dry_run=dry_run,
                            streams=streams)
    if result.counts["total"] != n_records:
        raise StepFailed(f"import of {os.fspath(path)}: read {result.counts['total']} of {n_records} records")
    log.info("import of %s%s: %r", os.fspath(path), " (dry run)" if dry_run else "", result.counts)
    return result


def import_records(records: Iterable[dict[str, Any]], catalog: Catalog, *,
                   journal_path: str | os.PathLike | None, batch_size: int = BATCH_SIZE,
                   description: str = DEFAULT_DESCRIPTION, dry_run: bool = False,
                   streams: int = 1) -> ImportResult:
    """Import file_meta records; a real run first settles editgroups its journal left open.

    A real run holds the catalog's lock (an embedded catalog) and the
    journal's lock for its whole length: a second importer fails at once with
    `LockHeld` instead of editing entities twice. `streams` > 1 splits a real
    run into parallel editgroup writers (`pipeline.importer.streams`; the fatcat
    API only, the embedded catalog runs one).
    """
    if streams < 1:
        raise ValueError(f"import streams must be 1 or more, got {streams}")
    if dry_run:
        return _import(records, catalog, None, batch_size, description, dry_run, 1)
    catalog.check_access()  # a rejected token or an API that does not answer: now, not later
    locks = []
    if journal_path:
        locks.append(RunLock(f"{os.fspath(journal_path)}.lock", f"import journal {os.fspath(journal_path)}"))
    lock_path = catalog.lock_path()  # the embedded catalog's; an API has none
    if lock_path is not None:
        locks.append(RunLock(lock_path, f"catalog {catalog.name}"))
    for lock in locks:
        try:
            lock.acquire()
        except BaseException:
            for held in locks:
                held.release()
            raise
    try:
        journal = ImportJournal(journal_path) if journal_path else None
        return _import(records, catalog, journal, batch_size, description, dry_run, streams)
    finally:
        for lock in reversed(locks):
            lock.release()


def _import(records: Iterable[dict[str, Any]], catalog: Catalog, journal: ImportJournal | None,
            batch_size: int, description: str, dry_run: bool, streams: int) -> ImportResult:
    importer = FileMetaImporter(catalog, batch_size=batch_size, description=description,
                                dry_run=dry_run, journal=journal)
    importer.check_no_other_run()
    # every stream's editgroups of a killed attempt, before any starts (a dry run writes nothing)
    recovery = recover(catalog, None if dry_run else journal)
    if streams > 1 and not catalog.parallel_streams:
        log.info("the embedded catalog is imported in one stream ([importer] streams=%d is for "
                 "the fatcat API)", streams)
        streams = 1
    if streams > 1:
        counts, editgroups = run_streams(records, catalog, journal, streams, batch_size=batch_size,
                                         description=description)
    else:
        counts, editgroups = importer.run(records), importer.editgroups
    if journal is not None:
        counts = add_earlier_attempts(counts, journal, catalog.name, recovery)
        editgroups = journal.editgroups_since_finished(catalog.name)  # killed attempts' too
    return ImportResult(counts=counts, editgroups=editgroups, recovery=recovery,
                        dry_run=dry_run, catalog_id=catalog.identity())


def record_finished(journal_path: str | os.PathLike, catalog_name: str, counts: dict,
                    source: dict[str, Any] | None = None) -> None:
    """Close the import run in its journal, once its counts target is written: a later import
    starts a new run (a kill before this line resumes the same run and counts its edits).
    `source` (see `import_source`) names the input, so a rerun over the same input can
    restore these counts (`restore_finished_run`)."""
    fields: dict[str, Any] = {"counts": dict(counts)}
    if source is not None:
        fields["source"] = source
    ImportJournal(journal_path).record(FINISHED, None, catalog_name, **fields)


def import_source(path: str | os.PathLike) -> dict[str, Any]:
    """The input of an import as the journal's FINISHED event records it: path and sha256
    (from the producing step's sidecar when it describes the file as it is)."""
    path = os.path.abspath(path)
    return {"path": path, "sha256": current_digest(path)}


def restore_finished_run(result: ImportResult, journal_path: str | os.PathLike, catalog_name: str,
                         source: dict[str, Any]) -> ImportResult:
    """The true counts of an import run that already finished over this exact input.

    Why: a run killed after its journal recorded FINISHED but before its step's
    sidecar was written (or whose sidecar or counts target was removed or
    damaged) is run again, and that attempt finds every entity already complete:
    it would report `update: 0`. When the journal's last FINISHED event of this
    catalog is over the same input (sha256), nothing was accepted since, this
    attempt edited nothing, and its counters are consistent with the recorded
    ones (same total and same skips, and the recorded updates are now complete
    entities), the recorded counts are the run's counts and are restored.
    """
    journal = ImportJournal(journal_path)
    last = next((e for e in reversed(journal.events())
                 if e.get("catalog") == catalog_name and e["event"] == FINISHED), None)
    counts = result.counts
    if last is None or (last.get("source") or {}).get("sha256") != source["sha256"]:
        return result
    if counts["update"] or journal.accepted_since_finished(catalog_name):
        return result
    recorded = Counter({k: v for k, v in (last.get("counts") or {}).items() if isinstance(v, int)})
    moved = ("update", "skip-existing-complete")
    same_rest = all(recorded[k] == counts[k] for k in set(recorded) | set(counts) if k not in moved)
    if not same_rest or recorded["update"] + recorded["skip-existing-complete"] \
            != counts["skip-existing-complete"]:
        log.warning("journal %s: the finished run over %s counted %r, which this rerun's %r does "
                    "not fit; counters left as this attempt saw them", journal.path, source["path"],
                    dict(recorded), dict(counts))
        return result
    check_counts(recorded)
    log.info("import of %s already finished (journal %s): its counts restored (%d updates)",
             source["path"], journal.path, recorded["update"])
    result.recovery.earlier_edits = recorded["update"]
    result.counts = recorded
    return result


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


