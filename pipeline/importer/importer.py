"""The catalog import of docs/delivery.md: fill the missing file-level fields of matching entities.

What one record goes through (a file_meta line):
1. `want`: the five fields present and non-empty, a size of 0 counting as
   missing as in fatcat's importer (else `skip-missing-field`)
   and well-formed (else `skip-malformed-field`: lower-case hex of the right
   length, a positive integer size, a text mimetype); both add to `skip`;
2. lookup by sha1: none -> `skip-no-match`; an entity the import cannot edit
   (`pipeline.importer.entity.entity_problem`: no string ident, a malformed URL
   list; only an API catalog can hold one) -> `skip-bad-entity`, logged;
3. the entity already has md5, sha256, size and mimetype -> `skip-existing-complete`;
4. otherwise only its missing fields are filled (never overwritten), its URLs
   cleaned (`pipeline.importer.entity`), and the edit put in the open
   editgroup -> `update`.
Counters always hold total, skip, insert, update, exists; they add up:
total = skip + update + insert + exists + skip-no-match + skip-existing-complete
+ skip-bad-entity.

Editgroups hold at most `batch_size` (100) edits, carry the description and
`extra` {agent, version}, and are accepted as soon as they are full, then at
the end. One ident is never edited twice in one editgroup: while an editgroup
is open the importer remembers what each of its entities becomes, and a later
record that looks up the same entity sees that result (for a wanted record,
a complete entity: `skip-existing-complete`). So two file_meta lines with the
same sha1 give one `update` and one `skip-existing-complete`, exactly as if
the first edit had already been accepted, without cutting the editgroup short.
The dry run (the sample QA import) does the same bookkeeping with no writes.

Exactly once, across kills. The catalog's own state is the truth: an entity
filled by an accepted editgroup comes back as `skip-existing-complete` on any
later run. What needs care is an editgroup that was created and given edits
but not accepted when the process died. fatcat has no call to delete an
editgroup, and accepting it later is allowed (its edits stay valid as long as
their entities did not change). So the import keeps a journal
(`pipeline.importer.journal`) of the editgroups it creates and accepts, and a
run first settles every editgroup the journal left open
(`pipeline.importer.recovery`):
- already accepted (killed after the accept, before the journal line): noted;
- holds edits whose entities are still at the edit's `prev_revision`: accepted
  now (resumed), so those entities are filled exactly once (fatcat's accept
  itself does not compare `prev_revision`, so the importer checks it first);
- empty, unknown, or with an entity changed since: abandoned, left unaccepted
  (it must never be accepted by hand) and noted; its entities are redone
  normally by this run.
An editgroup created but killed before its `created` line is written has no
edits (edits are only made after that line is fsynced) and stays empty.
The embedded catalog needs none of that: it declares `atomic_editgroups`
(`pipeline.catalog.base.Catalog`) and writes `EDITGROUPS_PER_COMMIT` full
editgroups at a time, each whole (create, edits, accept), all in one SQLite
transaction (`commit_editgroups`), so a kill leaves each editgroup accepted
or absent, never open, and the rerun redoes exactly the absent ones. Its
journal lines (every `created` before, every `accepted` after the
transaction) are still written, for the run's true totals, but not fsynced:
the fsyncs were most of the import's wall time, and a killed process's
lines are in the page cache anyway. A full editgroup waiting for its commit
is seen by later records as the open one is (`_uncommitted`). Lookups are
prefetched `LOOKUP_BATCH` records at a time (`lookup_sha1_many`: the embedded
catalog's one query, the API's few calls at once, ahead of the writes),
overlaid with what the editgroups accepted since then made each entity (the revision checks below catch another
writer's edit made since). Several importers of one run, one per stream,
share a `claim` so that no two of them edit one entity (`streams.py`).
One import at a time per catalog and journal: a real run holds `flock`s on
`<catalog>.lock` (embedded) and `<journal>.lock` (`pipeline.runlock`), so a
second importer fails at once (`LockHeld`) instead of taking the first one's
open editgroup for a killed run's; and recovery leaves alone any editgroup
whose journal owner is a live process. The fatcat API has no such lock, and
two runs from two work directories hold two different journal locks, so the
importer also checks, in one place for every catalog (`_unchanged`), that
each entity is still at the revision it looked up: when an edit is made
(fatcat returns the edit's `prev_revision`), just before its editgroup is
accepted (the embedded catalog: inside that editgroup's transaction); an
edit that fails is deleted and counted `skip-concurrent-edit`. And a run
refuses to start while another run's editgroups hold edits
(`check_no_other_run`). After a resume, the counters are the
run's true totals (`add_earlier_attempts`). The
runbook's `file_edit_editgroup_id_ident_id_key` ConstraintViolation was one
editgroup editing one ident twice (duplicate sha1s in one importer's input):
the pending-edit bookkeeping above rules that out even on unsorted input.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from pipeline import __version__
from pipeline.catalog.base import (
    Catalog,
    editgroup_file_edits,
    new_fatcat_id,
)
from pipeline.importer.counters import CONCURRENT, check_counts, new_counter
from pipeline.importer.entity import apply_file_meta, entity_problem, is_complete
from pipeline.importer.gcpause import no_cycle_collection
from pipeline.importer.journal import ABANDONED, ACCEPTED, OPEN, ImportJournal
from pipeline.importer.records import want_reason
from pipeline.runlock import LockHeld

log = logging.getLogger(__name__)

AGENT = "filemeta-backfill.FileMetaImporter"
# The editgroup description of docs/delivery.md; `[importer] description` defaults to it.
# records per batched lookup (embedded catalog): one query instead of one per record
LOOKUP_BATCH = 500
BATCH_SIZE = 100  # edits per editgroup (fatcat's most)
# editgroups per transaction of an atomic catalog (`commit_editgroups`): a commit rewrites
# every page of the randomly keyed indexes it touched, so fewer, larger commits write each
# hot page once instead of once per editgroup; a kill loses at most these (redone on rerun)
EDITGROUPS_PER_COMMIT = 20
DEFAULT_DESCRIPTION = "backfill of full file-level metadata for early-imported papers"


class FileMetaImporter:
    """Fill missing file fields in a catalog from file_meta records, in editgroups."""

    def __init__(self, catalog: Catalog, *, batch_size: int = BATCH_SIZE,
                 description: str = DEFAULT_DESCRIPTION, dry_run: bool = False,
                 journal: ImportJournal | None = None,
                 claim: Callable[[str], bool] | None = None):
        if not 1 <= batch_size <= 100:
            raise ValueError(f"batch_size must be 1..100 (fatcat editgroup size), got {batch_size}")
        self.catalog = catalog
        self.batch_size = batch_size
        self.description = description
        self.extra = {"agent": AGENT, "version": __version__}
        self.dry_run = dry_run
        self.journal = journal
        # one stream of several (`pipeline.importer.streams`): False when a sibling stream
        # already edits this ident (two sha1s of one entity in two streams)
        self.claim = claim
        self.counts = new_counter()
        self.editgroups: list[str] = []  # accepted by this run, in order
        self._editgroup_id: str | None = None
        self._pending: dict[str, dict[str, Any]] = {}  # ident -> entity as the open editgroup makes it
        self._looked_up: dict[str, str | None] = {}  # ident -> its revision when looked up (pending)
        self._edits: dict[str, dict[str, Any]] = {}  # ident -> its edit in the open editgroup (API)
        self._dry_filled: set[str] = set()
        # what the catalog declares (`Catalog.atomic_editgroups`): one transaction per
        # editgroup (the embedded catalog), else edits call by call, settled by the journal
        self.atomic = catalog.atomic_editgroups
        # atomic: full editgroups set aside, (editgroup_id, ident -> entity, ident -> revision
        # looked up), committed EDITGROUPS_PER_COMMIT at a time; `_uncommitted` is what their
        # entities become, seen by later records as `_pending` is
        self._closed: list[tuple[str, dict[str, dict[str, Any]], dict[str, str | None]]] = []
        self._uncommitted: dict[str, dict[str, Any]] = {}
        self._prefetched: dict[str, dict[str, Any]] | None = None
        self._accepted_since_prefetch: dict[str, dict[str, Any]] = {}

    # -- one record ---------------------------------------------------------
    def push(self, row: dict[str, Any]) -> str:
        """Import one file_meta record; return the counter it landed in."""
        return self._push(row, want_reason(row))

    def _push(self, row: dict[str, Any], reason: str | None) -> str:
        """`push` with the record's `want_reason` already known (`run_batch` finds it once,
        for the batch's lookups, not again per record)."""
        self.counts["total"] += 1
        if reason is not None:
            self.counts["skip"] += 1
            return self._count(reason)
        entity = self._lookup(row["sha1hex"])
        if entity is None:
            return self._count("skip-no-match")
        problem = entity_problem(entity)
        if problem is not None:
            # one odd entity is one skipped record, never a failed run
            log.warning("file entity %r (sha1 %s) skipped: %s", entity.get("ident"),
                        row["sha1hex"], problem)
            return self._count("skip-bad-entity")
        ident = entity["ident"]
        if ident in self._dry_filled:
            return self._count("skip-existing-complete")
        pending = self._pending.get(ident)
        if pending is None:
            pending = self._uncommitted.get(ident)
        if pending is not None:
            # an editgroup not yet accepted already edits this entity: judge by what it
            # will become
            if is_complete(pending):
                return self._count("skip-existing-complete")
            # (not reached with wanted records) never two edits of one ident in one editgroup
            self.flush()
            entity = self.catalog.get_file(ident) or entity
        if is_complete(entity):
            return self._count("skip-existing-complete")
        if self.claim is not None and not self.claim(ident):
            # a sibling stream's edit fills it: what one stream does with its own pending edit
            return self._count("skip-existing-complete")
        updated = apply_file_meta(entity, row)
        if self.dry_run:
            self._dry_filled.add(ident)
        else:
            self._looked_up[ident] = entity.get("revision")
            if not self.atomic:
                eg_id = self._open_editgroup()
                edit = self.catalog.update_file(eg_id, ident, updated)
                if not self._unchanged(ident, edit.get("prev_revision")):
                    self.catalog.delete_edit(eg_id, edit["edit_id"])
                    del self._looked_up[ident]
                    return self._count(CONCURRENT)
                self._edits[ident] = edit
            self._pending[ident] = updated
            if len(self._pending) >= self.batch_size:
                if self.atomic:
                    self._set_aside()
                else:
                    self.flush()
        return self._count("update")

    # -- another writer -------------------------------------------------------
    def _unchanged(self, ident: str, revision: str | None,
                   looked_up: dict[str, str | None] | None = None) -> bool:
        """Whether `revision` (the catalog's, at an edit or just before an accept) is still the
        one this run looked up (in `looked_up`, by default the open editgroup's): the one
        check, whatever the catalog, that an edit is not made over another run's. fatcat
        checks nothing (its accept takes any edit), so without it two runs importing the
        same records would both edit every entity."""
        expected = (self._looked_up if looked_up is None else looked_up)[ident]
        if revision == expected:
            return True
        log.warning("file %s was changed by another writer since this run looked it up "
                    "(revision %s, now %s): edit dropped (%s)", ident, expected, revision, CONCURRENT)
        return False

    def _dropped(self, idents: list[str]) -> None:
        """Pending edits dropped at accept time: counted as CONCURRENT instead of updates."""
        for ident in idents:
            self._pending.pop(ident, None)
            self._looked_up.pop(ident, None)
            self._edits.pop(ident, None)
        self._count_dropped(len(idents))

    def _count_dropped(self, n: int) -> None:
        if not n:
            return  # no CONCURRENT key in the counters of a run that met no other writer
        self.counts["update"] -= n
        self.counts[CONCURRENT] += n

    def _recheck_before_accept(self, eg_id: str) -> None:
        """Just before an accept, drop the edits whose entity another run changed since it
        was looked up: accepting them would overwrite that run's edit (the window left is
        the time between this check and the accept; docs/delivery.md)."""
        stale = []
        idents = list(self._pending)
        now = self.catalog.get_file_many(idents)  # the API: a few calls at once
        for ident in idents:
            current = now[ident]
            if current is None or not self._unchanged(ident, current.get("revision")):
                stale.append(ident)
        for ident in stale:
            self.catalog.delete_edit(eg_id, self._edits[ident]["edit_id"])
        self._dropped(stale)

    def check_no_other_run(self) -> None:
        """Refuse to start while another run of this importer has editgroups open for this
        editor with edits in them (its own journal does not list them): both would edit the
        same entities. Editgroups of this run's journal are its own (recovery settles them);
        empty ones hold nothing to accept twice."""
        if self.dry_run:
            return
        ours = self.journal.editgroup_ids(self.catalog.name) if self.journal is not None else set()
        others = [eg for eg in self.catalog.open_editgroups(AGENT)
                  if eg["editgroup_id"] not in ours and editgroup_file_edits(eg)]
        if others:
            named = ", ".join(f"{eg['editgroup_id']} ({len(editgroup_file_edits(eg))} edits, created "
                              f"{eg.get('created', '?')})" for eg in others[:10])
            raise LockHeld(
                f"catalog {self.catalog.name}: another run of this importer has editgroups open "
                f"with edits: {named}. Wait for it to finish (a killed run: rerun it in its own "
                "work directory, which settles them); two runs at once would edit entities twice")

    def _lookup(self, sha1: str) -> dict[str, Any] | None:
        """The entity of `sha1` as the catalog has it now: from the batch's prefetched
        lookups (`run_batch`), overlaid with what editgroups accepted since then made it
        (a `push` outside a batch looks it up alone)."""
        if self._prefetched is None:
            return self.catalog.lookup_sha1(sha1)
        entity = self._prefetched.get(sha1.lower())
        if entity is not None:
            return self._accepted_since_prefetch.get(entity["ident"], entity)
        return None

    def _prefetch(self, sha1s: Iterable[str]) -> None:
        """Look up the sha1s of a batch's wanted records in one go (`lookup_sha1_many`:
        the embedded catalog's one query, the API's few lookups at once, ahead of the
        batch's writes; a catalog with no batched lookup of its own, one call each)."""
        self._prefetched = self.catalog.lookup_sha1_many(sha1s)
        self._accepted_since_prefetch = {}

    def _count(self, key: str) -> str:
        self.counts[key] += 1
        return key

    def _open_editgroup(self) -> str:
        if self._editgroup_id is None:
            eg_id = self.catalog.create_editgroup(self.description, self.extra)
            if self.journal is not None:
                self.journal.record(OPEN, eg_id, self.catalog.name)
            self._editgroup_id = eg_id
        return self._editgroup_id

    def flush(self) -> None:
        """Accept the open editgroup (if any; atomic: and every one set aside), then note it
        in the journal."""
        if self.atomic:
            self._set_aside()
            self._commit_set_aside()
            return
        if self._editgroup_id is None:
            return
        eg_id = self._editgroup_id
        self._recheck_before_accept(eg_id)
        n = len(self._pending)
        if n:
            self.catalog.accept_editgroup(eg_id)
            if self.journal is not None:
                self.journal.record(ACCEPTED, eg_id, self.catalog.name, edits=n)
            self.editgroups.append(eg_id)
            if self._prefetched is not None:  # what each entity is now, at its new revision
                self._accepted_since_prefetch.update(
                    {ident: {**entity, "revision": self._edits[ident].get("revision")}
                     for ident, entity in self._pending.items()})
        elif self.journal is not None:  # every edit dropped: nothing to accept, ever
            self.journal.record(ABANDONED, eg_id, self.catalog.name, reason="empty")
        self._editgroup_id = None
        self._pending, self._looked_up, self._edits = {}, {}, {}

    def _set_aside(self) -> None:
        """Close the open editgroup (atomic catalog): it gets its id and waits, with the
        ones before it, for one commit of EDITGROUPS_PER_COMMIT editgroups."""
        if self._pending:
            self._closed.append((new_fatcat_id(), self._pending, self._looked_up))
            self._uncommitted.update(self._pending)
            self._pending, self._looked_up = {}, {}
        if len(self._closed) >= EDITGROUPS_PER_COMMIT:
            self._commit_set_aside()

    def _commit_set_aside(self) -> None:
        """Write the editgroups set aside, each whole (create, edits, accept), all in one
        transaction of the embedded catalog (`commit_editgroups`).

        The journal gets every one's `created` line before the transaction and
        its `accepted` line after, not fsynced: a kill leaves each editgroup
        of the batch accepted in the catalog (recovery notes the ones whose
        `accepted` line is missing, so the run's totals stay true) or absent
        (recovery abandons it as `not-found`; its entities are still
        incomplete and the rerun fills them).
        """
        if not self._closed:
            return
        groups, name = self._closed, self.catalog.name
        looked_up: dict[str, str | None] = {}
        for _, _, group_looked_up in groups:
            looked_up.update(group_looked_up)
        if self.journal is not None:
            self.journal.record_each(OPEN, [(eg_id, {}) for eg_id, _, _ in groups], name, sync=False)
        made = self.catalog.commit_editgroups(
            self.description, self.extra, [(eg_id, list(pending.items())) for eg_id, pending, _ in groups],
            keep=lambda ident, revision: self._unchanged(ident, revision, looked_up))
        accepted = []
        for (eg_id, pending, _), edits in zip(groups, made, strict=True):
            kept = {e["ident"]: e for e in edits}
            self._count_dropped(len(pending) - len(kept))
            accepted.append((eg_id, {"edits": len(kept)}))
            self.editgroups.append(eg_id)
            if self._prefetched is not None:  # what each entity is now, at its new revision
                self._accepted_since_prefetch.update(
                    {ident: {**pending[ident], "revision": edit["revision"]}
                     for ident, edit in kept.items()})
        if self.journal is not None:
            self.journal.record_each(ACCEPTED, accepted, name, sync=False)
        self._closed, self._uncommitted = [], {}

    def finish(self) -> Counter:
        self.flush()
        check_counts(self.counts)
        return self.counts

    def run(self, rows: Iterable[dict[str, Any]]) -> Counter:
        it = iter(rows)
        with no_cycle_collection():
            while batch := list(islice(it, LOOKUP_BATCH)):
                self.run_batch(batch)
            return self.finish()

    def run_batch(self, batch: list[dict[str, Any]]) -> None:
        """Push up to `LOOKUP_BATCH` records, their lookups made first in one go."""
        reasons = [want_reason(row) for row in batch]
        self._prefetch(row["sha1hex"] for row, reason in zip(batch, reasons, strict=True)
                       if reason is None)
        for row, reason in zip(batch, reasons, strict=True):
            self._push(row, reason)
