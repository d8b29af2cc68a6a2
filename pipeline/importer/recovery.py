"""Settling the editgroups a killed run left open, before a run starts.

Why apart from the editgroup loop (`importer.py`): recovery runs once, before
any stream starts, over what the journal shows open; it shares nothing with
the loop but the catalog and the journal. The rules (resume, note, abandon)
are in `pipeline.importer.importer`'s docstring and docs/delivery.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline.catalog.base import Catalog, editgroup_file_edits, editgroup_is_accepted
from pipeline.importer.journal import ABANDONED, ACCEPTED, ImportJournal
from pipeline.runlock import describe

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    """What the start of a run did with editgroups a killed run left open."""

    resumed: list[str] = field(default_factory=list)  # accepted now
    already_accepted: list[str] = field(default_factory=list)
    abandoned: dict[str, str] = field(default_factory=dict)  # editgroup -> reason
    resumed_edits: int = 0
    live_left_alone: list[str] = field(default_factory=list)  # open in a running import
    earlier_edits: int = 0  # accepted by earlier attempts of this run (recovery's included)

    def as_dict(self) -> dict[str, Any]:
        return {"resumed": self.resumed, "already_accepted": self.already_accepted,
                "abandoned": self.abandoned, "resumed_edits": self.resumed_edits,
                "live_left_alone": self.live_left_alone, "earlier_edits": self.earlier_edits}


def recover(catalog: Catalog, journal: ImportJournal | None) -> Recovery:
    """Settle every editgroup the journal shows open in `catalog` (no journal: nothing to do)."""
    rec = Recovery()
    if journal is None:
        return rec
    name = catalog.name
    for eg_id, owner in journal.open_editgroup_owners(name).items():
        if journal.owner_is_live_other(owner):
            # another import is running (a lock on another host, or none): its open
            # editgroup is its own, being filled right now; never accept or abandon it
            log.warning("editgroup %s is open in a live import (%s): left alone", eg_id,
                        describe(owner))
            rec.live_left_alone.append(eg_id)
            continue
        eg = catalog.get_editgroup(eg_id)
        if eg is None:
            _abandon(journal, name, rec, eg_id, "not-found")
            continue
        edits = editgroup_file_edits(eg)
        if editgroup_is_accepted(eg):
            journal.record(ACCEPTED, eg_id, name, edits=len(edits), recovered=True)
            rec.already_accepted.append(eg_id)
            continue
        if not edits:
            _abandon(journal, name, rec, eg_id, "empty")
            continue
        changed = [e["ident"] for e in edits if not _unchanged_since(catalog, e)]
        if changed:
            # emptied first: an open editgroup with our edits in it would stop every other
            # run (`check_no_other_run`), and nothing is left in it to accept by mistake
            for edit in edits:
                catalog.delete_edit(eg_id, edit["edit_id"])
            _abandon(journal, name, rec, eg_id, f"stale: {len(changed)} entities changed since the edit")
            continue
        catalog.accept_editgroup(eg_id)
        journal.record(ACCEPTED, eg_id, name, edits=len(edits), recovered=True)
        rec.resumed.append(eg_id)
        rec.resumed_edits += len(edits)
        log.info("resumed editgroup %s left open by a killed run: accepted its %d edits",
                 eg_id, len(edits))
    return rec


def _unchanged_since(catalog: Catalog, edit: dict[str, Any]) -> bool:
    current = catalog.get_file(edit["ident"])
    return current is not None and current.get("revision") == edit.get("prev_revision")


def _abandon(journal: ImportJournal, name: str, rec: Recovery, eg_id: str, reason: str) -> None:
    journal.record(ABANDONED, eg_id, name, reason=reason)
    rec.abandoned[eg_id] = reason
    log.warning("abandoned editgroup %s left open by a killed run (%s); never accept it",
                eg_id, reason)
